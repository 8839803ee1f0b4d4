//! The game channel over QUIC: the [`ConnectionHandler`] that authenticates a
//! connection (with [`auth::AuthService`]), creates and joins sessions and submits
//! commands on the [`GameHandle`], and a forwarder task per connection that streams
//! committed events and acknowledgements in order.
//!
//! It lives here, in the composition root, because it is the one place where the
//! transport (`quic`), the game and auth meet: `quic` stays a game-agnostic endpoint
//! over the `protocol` crate, and `game` knows no transport and no auth.

use std::sync::Arc;
use std::time::Duration;

use channel::{ClockReading, ConnectionContext, ConnectionHandler, HandlerFuture, Outbox};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use protocol::v2::{ClientMessage, ErrorCode, GameCommand, ServerMessage};
use protocol::{CloseCode, ConnState};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use uuid::Uuid;

use ::game::{CommandOutcome, GameConfig, GameError, GameHandle, LiveSession, Subscription};

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

/// Per-connection state; dropping it stops the forwarder.
struct Conn {
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
                        Ok(live) => attach(ctx, live, 0, self.game.config()),
                        Err(e) => error(ctx.outbox(), error_code(&e), public_message(&e)),
                    }
                }
                ClientMessage::JoinSession {
                    session_id,
                    last_seq,
                } => {
                    let user = user_of(ctx)?;
                    let from = last_seq.map(|s| s + 1).unwrap_or(0);
                    match self.game.join(user, session_id).await {
                        Ok(live) => attach(ctx, live, from, self.game.config()),
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
                    outbox.close(CloseCode::Unauthenticated);
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

/// Puts the connection in `live`, replaying committed events from `from`.
fn attach(
    ctx: &mut ConnectionContext,
    live: Arc<LiveSession>,
    from: u64,
    cfg: &GameConfig,
) -> Result<(), CloseCode> {
    let (send_wait, max_inflight) = (cfg.send_wait, cfg.max_inflight);
    let outbox = ctx.outbox().clone();
    let sub = live.subscribe(from);
    outbox.send(&ServerMessage::SessionJoined {
        session_id: live.id,
        scene: live.scene.clone(),
        next_seq: live.next_seq(),
        ended: live.ended(),
        snapshot: Default::default(),
    })?;
    let Some(c) = ctx.data_mut::<Conn>() else {
        return Err(CloseCode::InternalError);
    };
    // As many as there are permits, so `try_send` after a permit never fails.
    let (tx, rx) = mpsc::channel(max_inflight.max(1));
    let task = tokio::spawn(forward(outbox, sub, rx, send_wait));
    if let Some(old) = c.forwarder.replace(task) {
        old.abort();
    }
    c.session = Some(live);
    c.commands = Some(tx);
    ctx.set_state(ConnState::InSession);
    Ok(())
}

/// Streams committed events, and each command's answer after the events it caused.
/// Whatever is ready when it wakes (events, then answers) goes out as one write.
/// A send that finds no room in the connection's queue for `send_wait` closes the
/// connection as a slow consumer: the queue, not memory, absorbs a slow reader.
async fn forward(
    outbox: Outbox,
    mut sub: Subscription,
    mut commands: mpsc::Receiver<Inflight>,
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
            () = sub.changed() => {}
            cmd = commands.recv(), if commands_open => match cmd {
                Some((id, rx, permit)) => inflight.push(async move { (id, rx.await, permit) }),
                None => commands_open = false,
            },
            Some(done) = inflight.next(), if !inflight.is_empty() => answered.push(done),
        }
    }
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
