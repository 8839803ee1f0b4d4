//! One connection's protocol driver: the handshake deadline, the read loop (frames
//! and datagrams, checked against the connection state machine), the write loop
//! (coalescing queued frames) and the close with its reason.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol::v2::{ClientDatagram, ClientMessage, ErrorCode, ServerDatagram, ServerMessage};
use protocol::{
    CloseCode, ConnState, FrameDecoder, PROTOCOL_VERSION, decode_datagram, encode_datagram,
    verify_datagram,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout, timeout_at};

use crate::close_connection;
use crate::handler::{ConnectionContext, Outbox, Outgoing};
use crate::shared::{LiveGuard, Shared, now_ms, stopped};

/// How long a closing connection waits for its last frames (e.g. the
/// `Error` explaining the close) to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);
/// Read buffer size per connection.
const READ_BUF: usize = 16 * 1024;
/// Received datagrams quinn keeps per connection until they are read (the oldest
/// are dropped beyond it).
pub(crate) const DATAGRAM_RECEIVE_BUFFER: usize = 64 * 1024;

/// How a connection's read loop ended.
enum End {
    /// We close with this code; `detail` goes into the `Error` message.
    Close(CloseCode, String),
    /// The peer closed or the connection failed.
    Lost(quinn::ConnectionError),
}

/// Drives one connection from its first packet to its close.
pub(crate) async fn serve(
    incoming: quinn::Incoming,
    id: u64,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let cfg = &shared.cfg;
    let handshake_deadline = Instant::now() + cfg.handshake_timeout;
    let remote = incoming.remote_address();
    let Some(conn) = handshake(incoming, handshake_deadline, &stop).await else {
        return;
    };

    let live = shared.stats.live.fetch_add(1, Ordering::Relaxed) + 1;
    let _guard = LiveGuard(Arc::clone(&shared.stats.live));
    if live > cfg.max_connections {
        tracing::warn!(max = cfg.max_connections, "connection refused: server full");
        close_connection(&conn, CloseCode::ServerFull);
        return;
    }
    shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("connection established");

    let Some((send, recv)) = open_stream(&conn, handshake_deadline, &stop).await else {
        return;
    };
    let (tx, rx) = mpsc::channel(cfg.outbox_capacity);
    let writer = tokio::spawn(write_loop(send, rx));
    let mut ctx = ConnectionContext {
        id,
        remote,
        client: String::new(),
        state: ConnState::Handshake,
        outbox: Outbox {
            tx: tx.clone(),
            conn: conn.clone(),
        },
        data: None,
    };

    let end = read_loop(&mut ctx, recv, &conn, &shared, handshake_deadline, stop).await;
    let code = close(end, &ctx, &tx, writer, &conn).await;
    if ctx.state.is_handshaken() {
        shared.handler.on_close(&ctx, code);
    }
}

/// The TLS handshake, bounded by `deadline`; `None` when it failed, timed out or the
/// endpoint is stopping.
async fn handshake(
    incoming: quinn::Incoming,
    deadline: Instant,
    stop: &watch::Receiver<bool>,
) -> Option<quinn::Connection> {
    let handshake = timeout_at(deadline, incoming.into_future());
    tokio::pin!(handshake);
    tokio::select! {
        biased;
        () = stopped(stop.clone()) => {
            // Dropping a half-open connection would close it with code 0;
            // finish the TLS handshake briefly to say why instead.
            if let Ok(Ok(Ok(conn))) = timeout(FLUSH_TIMEOUT, &mut handshake).await {
                close_connection(&conn, CloseCode::ServerShutdown);
            }
            None
        }
        r = &mut handshake => match r {
            Ok(Ok(conn)) => Some(conn),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "QUIC handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!("QUIC handshake timed out");
                None
            }
        },
    }
}

/// The client's game stream, opened before `deadline`; `None` (the connection closed
/// or lost) otherwise.
async fn open_stream(
    conn: &quinn::Connection,
    deadline: Instant,
    stop: &watch::Receiver<bool>,
) -> Option<(quinn::SendStream, quinn::RecvStream)> {
    let streams = tokio::select! {
        biased;
        () = stopped(stop.clone()) => Err(End::Close(CloseCode::ServerShutdown, String::new())),
        r = timeout_at(deadline, conn.accept_bi()) => match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(End::Lost(e)),
            Err(_) => Err(End::Close(CloseCode::HandshakeTimeout, String::new())),
        },
    };
    match streams {
        Ok(s) => Some(s),
        Err(End::Close(code, _)) => {
            close_connection(conn, code);
            None
        }
        Err(End::Lost(e)) => {
            tracing::debug!(error = %e, "connection lost before opening a stream");
            None
        }
    }
}

/// Ends the connection as the read loop ended it: when we close, the `Error` that
/// says why, the queued frames flushed (bounded), then the close. The close code,
/// ours or the peer's.
async fn close(
    end: End,
    ctx: &ConnectionContext,
    tx: &mpsc::Sender<Outgoing>,
    writer: tokio::task::JoinHandle<()>,
    conn: &quinn::Connection,
) -> Option<CloseCode> {
    match end {
        End::Close(code, detail) => {
            if code != CloseCode::Normal {
                tracing::info!(code = %code, detail = %detail, "closing connection");
                let message = if detail.is_empty() {
                    code.reason().to_owned()
                } else {
                    detail
                };
                // Best effort: tell the client why before closing.
                let _ = ctx.outbox.send(&ServerMessage::Error {
                    code: ErrorCode::from(code),
                    message,
                });
            } else {
                tracing::debug!("client finished its stream");
            }
            let _ = tx.try_send(Outgoing::Finish);
            let _ = timeout(FLUSH_TIMEOUT * 2, writer).await;
            close_connection(conn, code);
            Some(code)
        }
        End::Lost(e) => {
            writer.abort();
            let code = crate::close_code_of(&e).map(|(c, _)| c);
            tracing::debug!(error = %e, "connection closed");
            code
        }
    }
}

/// Writes queued frames in order; whatever is queued when it wakes goes out in one write
/// (up to [`COALESCE_BYTES`]), so a burst of messages shares packets.
async fn write_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<Outgoing>) {
    let mut finish = false;
    while !finish {
        let Some(first) = rx.recv().await else {
            break;
        };
        let mut buf = match first {
            Outgoing::Frame(frame) => frame,
            Outgoing::Finish => break,
        };
        while buf.len() < COALESCE_BYTES {
            match rx.try_recv() {
                Ok(Outgoing::Frame(frame)) => buf.extend_from_slice(&frame),
                Ok(Outgoing::Finish) => {
                    finish = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = send.write_all(&buf).await {
            tracing::debug!(error = %e, "write failed");
            return;
        }
    }
    if send.finish().is_ok() {
        // Give the peer a moment to acknowledge the last frames before the
        // connection close (which may discard unread data) goes out.
        let _ = timeout(FLUSH_TIMEOUT, send.stopped()).await;
    }
}

/// At most this many bytes of queued frames are joined into one write.
const COALESCE_BYTES: usize = 64 * 1024;

async fn read_loop(
    ctx: &mut ConnectionContext,
    mut recv: quinn::RecvStream,
    conn: &quinn::Connection,
    shared: &Shared,
    handshake_deadline: Instant,
    stop: watch::Receiver<bool>,
) -> End {
    let cfg = &shared.cfg;
    let mut decoder = FrameDecoder::<ClientMessage>::new();
    let mut buf = vec![0u8; READ_BUF];
    let stop_fut = stopped(stop);
    tokio::pin!(stop_fut);
    loop {
        let (deadline, timeout_code) = if ctx.state.is_handshaken() {
            (Instant::now() + cfg.idle_timeout, CloseCode::IdleTimeout)
        } else {
            (handshake_deadline, CloseCode::HandshakeTimeout)
        };
        let n = tokio::select! {
            biased;
            () = &mut stop_fut => return End::Close(CloseCode::ServerShutdown, String::new()),
            d = conn.read_datagram() => match d {
                Ok(bytes) => {
                    if let Err((code, detail)) = datagram(ctx, conn, &bytes, shared) {
                        return End::Close(code, detail);
                    }
                    continue;
                }
                Err(e) => return End::Lost(e),
            },
            r = timeout_at(deadline, recv.read(&mut buf)) => match r {
                Err(_) => return End::Close(timeout_code, String::new()),
                Ok(Ok(Some(n))) => n,
                Ok(Ok(None)) => {
                    return if decoder.has_partial() {
                        End::Close(CloseCode::ProtocolError, "stream ended inside a frame".into())
                    } else {
                        End::Close(CloseCode::Normal, String::new())
                    };
                }
                Ok(Err(quinn::ReadError::ConnectionLost(e))) => return End::Lost(e),
                Ok(Err(e)) => {
                    return End::Close(CloseCode::ProtocolError, format!("stream error: {e}"));
                }
            },
        };
        let mut input = buf.get(..n).unwrap_or_default();
        while !input.is_empty() {
            let msg = match decoder.decode(&mut input) {
                Ok(Some(msg)) => msg,
                Ok(None) => continue,
                Err(e) => return End::Close(e.close_code(), e.to_string()),
            };
            if let Err((code, detail)) = handle(ctx, msg, shared).await {
                return End::Close(code, detail);
            }
        }
    }
}

/// Handles one received datagram: decodes it (a malformed or oversized one is a
/// protocol error, like a bad frame), checks it is legal in the connection's state,
/// and answers time-sync requests with the handler's clock. Replies are datagrams
/// too and may be lost; a full send buffer drops them.
fn datagram(
    ctx: &ConnectionContext,
    conn: &quinn::Connection,
    bytes: &[u8],
    shared: &Shared,
) -> Result<(), (CloseCode, String)> {
    let msg = decode_datagram::<ClientDatagram>(bytes)
        .map_err(|e| (e.close_code(), format!("datagram: {e}")))?;
    verify_datagram(ctx.state, &msg).map_err(|code| {
        (
            code,
            format!(
                "{} datagram not allowed in state {:?}",
                msg.name(),
                ctx.state
            ),
        )
    })?;
    match msg {
        ClientDatagram::TimeSyncRequest { client_send_us } => {
            let Some(clock) = shared.handler.clock() else {
                tracing::debug!("time-sync request ignored: no simulation clock");
                return Ok(());
            };
            let reply = ServerDatagram::TimeSyncReply {
                client_send_us,
                world_time_ms: clock.world_time_ms,
                tick: clock.tick,
            };
            match encode_datagram(&reply) {
                Ok(out) => {
                    if let Err(e) = conn.send_datagram(out.into()) {
                        tracing::debug!(error = %e, "time-sync reply not sent");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode a time-sync reply"),
            }
            Ok(())
        }
    }
}

/// Handles one decoded message; the error is the close code and detail.
async fn handle(
    ctx: &mut ConnectionContext,
    msg: ClientMessage,
    shared: &Shared,
) -> Result<(), (CloseCode, String)> {
    let next = ctx.state.apply(&msg).map_err(|code| {
        let detail = match (&msg, code) {
            (
                ClientMessage::Hello {
                    protocol_version, ..
                },
                CloseCode::VersionMismatch,
            ) => {
                format!("server speaks protocol {PROTOCOL_VERSION}, client sent {protocol_version}")
            }
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
                    server_version: shared.cfg.server_version.clone(),
                    server_time_ms: now_ms(),
                })
                .map_err(no_detail)?;
            shared.handler.on_open(ctx);
            Ok(())
        }
        ClientMessage::Ping { nonce, .. } => {
            ctx.state = next;
            ctx.outbox
                .send(&ServerMessage::Pong {
                    nonce,
                    server_time_ms: now_ms(),
                    world_time_ms: shared.handler.clock().map(|c| c.world_time_ms),
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
        other => {
            ctx.state = next;
            let name = other.name();
            shared
                .handler
                .on_message(ctx, other)
                .await
                .map_err(|code| (code, format!("{name} refused: {}", code.reason())))
        }
    }
}
