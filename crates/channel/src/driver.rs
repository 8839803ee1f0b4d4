//! One connection's protocol driver, whatever the transport: the handshake deadline
//! and the idle timeout, every message checked against the connection state machine
//! (`protocol::ConnState`), `Hello`/`Ping`/`Heartbeat` answered here and the rest
//! handed to the [`ConnectionHandler`](crate::ConnectionHandler), and the close flow
//! (the `Error` that says why, the queued frames flushed within a bound, then the
//! transport's close with the [`CloseCode`]).
//!
//! A transport gives [`Channel::drive`] a [`Connection`]: a [`Reader`] yielding decoded
//! client messages, the [`Outbox`] over its [`Link`](crate::Link), and its writer task
//! draining the [`OutboxReceiver`](crate::OutboxReceiver).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::v2::{ClientMessage, ErrorCode, ServerMessage};
use protocol::{CloseCode, ConnState, PROTOCOL_VERSION};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

use crate::handler::ConnectionContext;
use crate::outbox::Outbox;
use crate::shared::Channel;

/// How long a closing connection's writer gets to send its last frames (e.g. the
/// `Error` explaining the close) before the transport closes; transports waiting for
/// an acknowledgement use it too.
pub const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// How a connection ends, as a [`Reader`] or the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// We close with this code; the text goes into the `Error` message
    /// ([`CloseCode::Normal`]: the client ended its stream, nothing is said).
    Close(CloseCode, String),
    /// The peer closed or the connection failed: nothing more can be sent. The close
    /// code when known.
    Lost(Option<CloseCode>),
}

/// What a [`Reader`] yields.
#[derive(Debug)]
pub enum Read {
    /// One decoded client message.
    Message(ClientMessage),
    /// Traffic the transport handled itself (a QUIC time-sync datagram): it counts as
    /// activity for the idle timeout.
    Alive,
    /// The connection ends.
    End(End),
}

/// The receiving side of a transport: decoded client messages, one at a time.
pub trait Reader: Send {
    /// The next message or the end. `state` is the connection's state now (for
    /// transport-level traffic checked against it, such as datagrams). Must be
    /// cancel-safe: the driver drops it on a timeout, a stop or a close.
    fn next(&mut self, state: ConnState) -> impl Future<Output = Read> + Send + '_;
}

/// One admitted connection, ready to be driven.
#[derive(Debug)]
pub struct Connection<R> {
    /// From [`Channel::next_id`].
    pub id: u64,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Where client messages come from.
    pub reader: R,
    /// The outbox (from [`Outbox::new`]) whose receiver `writer` drains.
    pub outbox: Outbox,
    /// The transport's writer task.
    pub writer: JoinHandle<()>,
    /// When a valid `Hello` must have arrived (counted from the first packet).
    pub handshake_deadline: Instant,
}

impl Channel {
    /// Drives `conn` from its first message to its close; returns the close code when
    /// known. The handler's `on_close` has run when it returns.
    pub async fn drive<R: Reader>(&self, conn: Connection<R>) -> Option<CloseCode> {
        let Connection {
            id,
            remote,
            mut reader,
            outbox,
            writer,
            handshake_deadline,
        } = conn;
        let mut ctx = ConnectionContext {
            id,
            remote,
            client: String::new(),
            state: ConnState::Handshake,
            outbox,
            data: None,
        };
        let end = self
            .read_loop(&mut ctx, &mut reader, handshake_deadline)
            .await;
        drop(reader);
        let code = close(end, &ctx, writer).await;
        if ctx.state.is_handshaken() {
            self.handler().on_close(&ctx, code);
        }
        code
    }

    async fn read_loop<R: Reader>(
        &self,
        ctx: &mut ConnectionContext,
        reader: &mut R,
        handshake_deadline: Instant,
    ) -> End {
        let cfg = self.config();
        let link = std::sync::Arc::clone(ctx.outbox.link());
        let outbox = ctx.outbox.clone();
        let requested = outbox.close_requested();
        tokio::pin!(requested);
        let stop = self.stopped();
        tokio::pin!(stop);
        loop {
            let (deadline, timeout_code) = if ctx.state.is_handshaken() {
                (Instant::now() + cfg.idle_timeout, CloseCode::IdleTimeout)
            } else {
                (handshake_deadline, CloseCode::HandshakeTimeout)
            };
            let state = ctx.state;
            let read = tokio::select! {
                biased;
                () = &mut stop => return End::Close(CloseCode::ServerShutdown, String::new()),
                () = link.closed() => return End::Lost(link.close_code()),
                code = &mut requested => return End::Close(code, String::new()),
                r = timeout_at(deadline, reader.next(state)) => match r {
                    Err(_) => return End::Close(timeout_code, String::new()),
                    Ok(read) => read,
                },
            };
            match read {
                Read::Message(msg) => {
                    if let Err((code, detail)) = self.handle(ctx, msg).await {
                        return End::Close(code, detail);
                    }
                }
                Read::Alive => {}
                Read::End(end) => return end,
            }
        }
    }

    /// Handles one decoded message; the error is the close code and detail.
    async fn handle(
        &self,
        ctx: &mut ConnectionContext,
        msg: ClientMessage,
    ) -> Result<(), (CloseCode, String)> {
        let next = ctx.state.apply(&msg).map_err(|code| {
            let detail = match (&msg, code) {
                (
                    ClientMessage::Hello {
                        protocol_version, ..
                    },
                    CloseCode::VersionMismatch,
                ) => format!(
                    "server speaks protocol {PROTOCOL_VERSION}, client sent {protocol_version}"
                ),
                _ => format!("{} not allowed in state {:?}", msg.name(), ctx.state),
            };
            (code, detail)
        })?;
        let no_detail = |code| (code, String::new());
        match msg {
            ClientMessage::Hello {
                protocol_version,
                client,
            } => {
                tracing::debug!(protocol_version, client = %client, "hello");
                ctx.client = client;
                ctx.state = next;
                ctx.outbox
                    .send(&ServerMessage::Welcome {
                        protocol_version: PROTOCOL_VERSION,
                        server_version: self.config().server_version.clone(),
                        server_time_ms: now_ms(),
                    })
                    .map_err(no_detail)?;
                self.handler().on_open(ctx);
                Ok(())
            }
            ClientMessage::Ping { nonce, .. } => {
                ctx.state = next;
                ctx.outbox
                    .send(&ServerMessage::Pong {
                        nonce,
                        server_time_ms: now_ms(),
                        world_time_ms: self.handler().session_clock(ctx).map(|c| c.world_time_ms),
                    })
                    .map_err(no_detail)
            }
            ClientMessage::Heartbeat { .. } => {
                ctx.state = next;
                ctx.outbox
                    .send(&ServerMessage::Heartbeat {
                        server_time_ms: now_ms(),
                    })
                    .map_err(no_detail)
            }
            other @ (ClientMessage::Authenticate { .. }
            | ClientMessage::CreateSession { .. }
            | ClientMessage::JoinSession { .. }
            | ClientMessage::Command { .. }) => {
                ctx.state = next;
                let name = other.name();
                self.handler()
                    .on_message(ctx, other)
                    .await
                    .map_err(|code| (code, format!("{name} refused: {}", code.reason())))
            }
        }
    }
}

/// Ends the connection as the read loop ended it: when we close, the `Error` that
/// says why, the queued frames flushed (bounded), then the transport's close. The
/// close code, ours or the peer's.
async fn close(end: End, ctx: &ConnectionContext, writer: JoinHandle<()>) -> Option<CloseCode> {
    let outbox = &ctx.outbox;
    match end {
        End::Close(code, detail) => {
            if code == CloseCode::Normal {
                tracing::debug!("client finished its stream");
            } else {
                tracing::info!(code = %code, detail = %detail, "closing connection");
                let message = if detail.is_empty() {
                    code.reason().to_owned()
                } else {
                    detail
                };
                // Best effort: tell the client why before closing.
                let _ = outbox.send(&ServerMessage::Error {
                    code: ErrorCode::from(code),
                    message,
                });
            }
            outbox.finish(code);
            let _ = timeout(FLUSH_TIMEOUT * 2, writer).await;
            outbox.close(code);
            Some(code)
        }
        End::Lost(code) => {
            writer.abort();
            tracing::debug!(code = ?code, "connection closed");
            code
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
