//! The game channel, whatever the transport (QUIC, WebTransport, WebSocket): the
//! [`ConnectionHandler`] that authenticates a connection (with [`auth::AuthService`]),
//! creates and joins sessions (a snapshot, then resent and live events; a newer join
//! takes the session over) and submits commands on the [`GameHandle`], and a forwarder
//! task per connection that streams committed events and answers in order.
//!
//! It lives here, in the composition root, because it is the one place where the
//! connection driver (`channel`), the game and auth meet: the transports stay
//! game-agnostic over the `protocol` crate, and `game` knows no transport and no auth.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use channel::{ClockReading, ConnectionContext, ConnectionHandler, HandlerFuture, Outbox};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use protocol::v2::{ClientMessage, ErrorCode, GameCommand, ServerMessage};
use protocol::{CloseCode, ConnState};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use uuid::Uuid;

use ::game::{Attachment, CommandOutcome, GameError, GameHandle, LiveSession, Subscription};

/// The [`ConnectionHandler`] of the game channel.
pub struct GameConnectionHandler {
    game: GameHandle,
    auth: auth::AuthService,
}

impl std::fmt::Debug for GameConnectionHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GameConnectionHandler")
            .finish_non_exhaustive()
    }
}

impl GameConnectionHandler {
    pub fn new(game: GameHandle, auth: auth::AuthService) -> Self {
        GameConnectionHandler { game, auth }
    }
}

/// A command awaiting its answer; the permit is its place in the connection's
/// in-flight budget, given back once the answer is queued.
type Inflight = (u64, oneshot::Receiver<CommandOutcome>, OwnedSemaphorePermit);

/// Connection numbers for session take-over, unique across every transport this
/// handler serves.
static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// Per-connection state; dropping it stops the forwarder.
struct Conn {
    /// This connection's number (from [`CONNECTIONS`]).
    id: u64,
    user: Option<Uuid>,
    session: Option<Arc<LiveSession>>,
    commands: Option<mpsc::Sender<Inflight>>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
    /// [`GameConfig::max_inflight`] permits, shared across session switches.
    inflight: Arc<Semaphore>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(f) = self.forwarder.take() {
            f.abort();
        }
    }
}

fn error(outbox: &Outbox, code: ErrorCode, message: impl Into<String>) -> Result<(), CloseCode> {
    outbox.send(&ServerMessage::Error {
        code,
        message: message.into(),
    })
}

fn error_code(e: &GameError) -> ErrorCode {
    match e {
        GameError::NotFound => ErrorCode::SessionNotFound,
        GameError::Invalid(_) | GameError::Ended => ErrorCode::InvalidRequest,
        GameError::Busy => ErrorCode::Busy,
        GameError::ShuttingDown => ErrorCode::ServerShutdown,
        // The game protocol's refusal: nothing was created; the message says why.
        GameError::SessionLimit { .. } => ErrorCode::InvalidRequest,
        GameError::Store(_) | GameError::Corrupt(_) => ErrorCode::Internal,
    }
}

fn public_message(e: &GameError) -> String {
    match e {
        GameError::Store(_) | GameError::Corrupt(_) => {
            tracing::error!(error = %e, "game request failed");
            "internal error".into()
        }
        other => other.to_string(),
    }
}

impl ConnectionHandler for GameConnectionHandler {
    fn on_open(&self, conn: &mut ConnectionContext) {
        conn.set_data(Conn {
            id: CONNECTIONS.fetch_add(1, Ordering::Relaxed),
            user: None,
            session: None,
            commands: None,
            forwarder: None,
            inflight: Arc::new(Semaphore::new(self.game.config().max_inflight.max(1))),
        });
    }

    fn clock(&self) -> Option<ClockReading> {
        self.game.clock().map(|t| ClockReading {
            world_time_ms: t.world_time_ms,
            tick: t.tick,
        })
    }

    /// The time of the world the connection's session lives in.
    fn session_clock(&self, conn: &ConnectionContext) -> Option<ClockReading> {
        let session = conn
            .data::<Conn>()
            .and_then(|c| c.session.as_ref())
            .map(|s| s.id);
        let t = match session {
            Some(id) => self.game.session_clock(id),
            None => self.game.clock(),
        }?;
        Some(ClockReading {
            world_time_ms: t.world_time_ms,
            tick: t.tick,
        })
    }

    fn on_message<'a>(
        &'a self,
        ctx: &'a mut ConnectionContext,
        msg: ClientMessage,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            match msg {
                ClientMessage::Authenticate { token } => self.authenticate(ctx, &token).await,
                ClientMessage::CreateSession { scene, world } => {
                    let user = user_of(ctx)?;
                    match self.game.create_session(user, scene, world).await {
                        Ok(live) => self.attach(ctx, live, Join::Created).await,
                        Err(e) => error(ctx.outbox(), error_code(&e), public_message(&e)),
                    }
                }
                ClientMessage::JoinSession {
                    session_id,
                    last_seq,
                } => {
                    let user = user_of(ctx)?;
                    match self.game.join(user, session_id).await {
                        Ok(live) => self.attach(ctx, live, Join::Existing { last_seq }).await,
                        Err(e) => error(ctx.outbox(), error_code(&e), public_message(&e)),
                    }
                }
                ClientMessage::Command {
                    request_id,
                    command,
                } => self.command(ctx, request_id, command),
                // Hello, Ping and Heartbeat are answered by the endpoint.
                ClientMessage::Hello { .. }
                | ClientMessage::Ping { .. }
                | ClientMessage::Heartbeat { .. } => Err(CloseCode::ProtocolError),
            }
        })
    }
}

impl GameConnectionHandler {
    /// `Authenticate`: checks the token, and closes the connection as soon as the
    /// auth session ends (logout, revocation, a password change, the user disabled).
    async fn authenticate(
        &self,
        ctx: &mut ConnectionContext,
        token: &str,
    ) -> Result<(), CloseCode> {
        let p = match self.auth.authenticate(token).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "QUIC authentication refused");
                return Err(CloseCode::Unauthenticated);
            }
        };
        let user = p.user.id.0;
        if let Some(c) = ctx.data_mut::<Conn>() {
            c.user = Some(user);
        }
        let mut watch = self.auth.watch(&p);
        let outbox = ctx.outbox().clone();
        tokio::spawn(async move {
            tokio::select! {
                () = watch.ended() => {
                    tracing::info!(user_id = %user, "session ended; closing its QUIC connection");
                    outbox.request_close(CloseCode::Unauthenticated);
                }
                () = outbox.closed() => {}
            }
        });
        ctx.set_state(ConnState::Authenticated);
        ctx.outbox()
            .send(&ServerMessage::Authenticated { user_id: user })
    }

    /// `Command`: within the connection's in-flight budget, hands the command to the
    /// game; its forwarder sends the answer after the events it caused.
    fn command(
        &self,
        ctx: &mut ConnectionContext,
        request_id: u64,
        command: GameCommand,
    ) -> Result<(), CloseCode> {
        let outbox = ctx.outbox().clone();
        let Some(c) = ctx.data_mut::<Conn>() else {
            return Err(CloseCode::InternalError);
        };
        let (Some(session), Some(tx)) = (c.session.clone(), c.commands.clone()) else {
            return Err(CloseCode::ProtocolError);
        };
        let rejected = |code: &str, message: String| {
            outbox.send(&ServerMessage::Rejected {
                request_id,
                code: code.to_owned(),
                message,
            })
        };
        // The in-flight budget first: a refused command never reaches the tick.
        let Ok(permit) = Arc::clone(&c.inflight).try_acquire_owned() else {
            return rejected("busy", "too many commands in flight".into());
        };
        match self.game.command(&session, command) {
            Ok(rx) => match tx.try_send((request_id, rx, permit)) {
                Ok(()) => Ok(()),
                // Never expected: the channel holds as many as there are permits.
                Err(_) => rejected("busy", "too many commands in flight".into()),
            },
            Err(e) => rejected(e.code(), e.to_string()),
        }
    }
}

fn user_of(ctx: &mut ConnectionContext) -> Result<Uuid, CloseCode> {
    ctx.data::<Conn>()
        .and_then(|c| c.user)
        .ok_or(CloseCode::Unauthenticated)
}

/// How the connection came to a session.
enum Join {
    /// It created the session: nothing happened yet, every event follows.
    Created,
    /// It joins an existing one, having seen its events through `last_seq`.
    Existing { last_seq: Option<u64> },
}

impl GameConnectionHandler {
    /// Puts the connection in `live`: `SessionJoined` with the snapshot, then the
    /// retained events with `last_seq < seq < next_seq` (none without `last_seq`, or
    /// when it is older than the resend window: the snapshot covers them), then live
    /// events. The connection takes the session over from any other.
    async fn attach(
        &self,
        ctx: &mut ConnectionContext,
        live: Arc<LiveSession>,
        join: Join,
    ) -> Result<(), CloseCode> {
        let cfg = self.game.config();
        let (send_wait, max_inflight) = (cfg.send_wait, cfg.max_inflight);
        let outbox = ctx.outbox().clone();
        let Some(c) = ctx.data_mut::<Conn>() else {
            return Err(CloseCode::InternalError);
        };
        // The previous session's forwarder stops before this one's starts.
        if let Some(old) = c.forwarder.take() {
            old.abort();
        }
        c.session = None;
        c.commands = None;
        let connection = c.id;
        // Subscribed first: the session counts as attached (never unloaded) meanwhile.
        let mut sub = live.subscribe(0);
        let (joined, last_seq) = match join {
            Join::Created => (self.game.created_snapshot(), None),
            Join::Existing { last_seq } => match self.game.snapshot(&live).await {
                Ok(j) => (j, last_seq),
                Err(e) => return error(&outbox, error_code(&e), public_message(&e)),
            },
        };
        let from = match last_seq.and_then(|s| s.checked_add(1)) {
            Some(from) if from < joined.next_seq && live.retains(from) => from,
            Some(_) | None => joined.next_seq,
        };
        sub.seek(from);
        let attachment = live.take_over(connection);
        outbox.send(&ServerMessage::SessionJoined {
            session_id: live.id,
            scene: live.scene.clone(),
            next_seq: joined.next_seq,
            ended: joined.ended,
            snapshot: joined.snapshot,
        })?;
        let Some(c) = ctx.data_mut::<Conn>() else {
            return Err(CloseCode::InternalError);
        };
        // As many as there are permits, so `try_send` after a permit never fails.
        let (tx, rx) = mpsc::channel(max_inflight.max(1));
        let task = tokio::spawn(forward(outbox, sub, rx, attachment, send_wait));
        if let Some(old) = c.forwarder.replace(task) {
            old.abort();
        }
        c.session = Some(live);
        c.commands = Some(tx);
        ctx.set_state(ConnState::InSession);
        Ok(())
    }
}

/// Streams committed events, and each command's answer after the events it caused.
/// Whatever is ready when it wakes (events, then answers) goes out as one write.
/// A send that finds no room in the connection's queue for `send_wait` closes the
/// connection as a slow consumer: the queue, not memory, absorbs a slow reader.
async fn forward(
    outbox: Outbox,
    mut sub: Subscription,
    mut commands: mpsc::Receiver<Inflight>,
    mut attachment: Attachment,
    send_wait: Duration,
) {
    let mut inflight = FuturesUnordered::new();
    let mut commands_open = true;
    let mut answered = Vec::new();
    loop {
        // Answers first, then events: every answer collected here was released after
        // its events were published, so the events read below include them all.
        while let Some(Some(done)) = inflight.next().now_or_never() {
            answered.push(done);
        }
        let mut frames = Vec::new();
        if encode_events(&outbox, &mut sub, &mut frames).is_err() {
            return;
        }
        let mut permits = Vec::with_capacity(answered.len());
        for (request_id, outcome, permit) in answered.drain(..) {
            let msg = match outcome {
                Ok(CommandOutcome::Accepted { through_seq }) => ServerMessage::Ack {
                    request_id,
                    through_seq,
                },
                Ok(CommandOutcome::Rejected { code, message }) => ServerMessage::Rejected {
                    request_id,
                    code,
                    message,
                },
                Err(_) => ServerMessage::Rejected {
                    request_id,
                    code: "not_committed".into(),
                    message: "the command was not committed (server stopping)".into(),
                },
            };
            if let Err(e) = protocol::encode_frame(&msg, &mut frames) {
                tracing::error!(error = %e, "cannot encode a command answer");
                outbox.close(CloseCode::InternalError);
                return;
            }
            permits.push(permit);
        }
        if outbox.send_frames_wait(frames, send_wait).await.is_err() {
            return;
        }
        // The answers are queued: their commands no longer count as in flight.
        drop(permits);
        tokio::select! {
            () = attachment.superseded() => {
                taken_over(&outbox);
                return;
            }
            () = sub.changed() => {}
            cmd = commands.recv(), if commands_open => match cmd {
                Some((id, rx, permit)) => inflight.push(async move { (id, rx.await, permit) }),
                None => commands_open = false,
            },
            Some(done) = inflight.next(), if !inflight.is_empty() => answered.push(done),
        }
    }
}

/// Another connection joined the session: this one is told why, and closed.
fn taken_over(outbox: &Outbox) {
    tracing::info!("session taken over by a newer connection; closing the older one");
    // The driver's close flow: the `Error` saying why reaches the client before the close.
    outbox.request_close(CloseCode::SessionTakenOver);
}

/// Appends the committed events not yet sent, framed, to `frames`.
fn encode_events(
    outbox: &Outbox,
    sub: &mut Subscription,
    frames: &mut Vec<u8>,
) -> Result<(), CloseCode> {
    match sub.available() {
        Ok(evs) => {
            for e in evs {
                let framed = protocol::v2::EncodedEventRef {
                    seq: e.seq,
                    at_ms: e.at_ms,
                    event: e.encoded(),
                }
                .encode_frame(frames);
                if let Err(err) = framed {
                    tracing::error!(error = %err, seq = e.seq, "cannot encode a game event");
                    outbox.close(CloseCode::InternalError);
                    return Err(CloseCode::InternalError);
                }
            }
            Ok(())
        }
        Err(gap) => {
            tracing::info!(%gap, "client fell behind the resend window");
            outbox.close(CloseCode::SlowConsumer);
            Err(CloseCode::SlowConsumer)
        }
    }
}
