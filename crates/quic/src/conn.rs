//! One QUIC connection: the TLS handshake and the client's game stream within the
//! handshake deadline, the [`QuicLink`] (a [`channel::Link`] over the
//! `quinn::Connection`), the reader (the stream's frames and the time-sync datagrams,
//! checked against the connection state) and the writer; the protocol itself is
//! driven by [`channel::Channel::drive`].

use std::future::IntoFuture;
use std::sync::{Arc, OnceLock};

use channel::{
    BoxFuture, Channel, Connection, End, FLUSH_TIMEOUT, Link, Outbox, OutboxReceiver, Read, Reader,
    StreamReader, write_stream,
};
use protocol::v2::{ClientDatagram, ServerDatagram};
use protocol::{CloseCode, ConnState, decode_datagram, encode_datagram, verify_datagram};
use tokio::time::{Instant, timeout, timeout_at};

use crate::{close_code_of, close_varint};

/// Received datagrams quinn keeps per connection until they are read (the oldest
/// are dropped beyond it).
pub(crate) const DATAGRAM_RECEIVE_BUFFER: usize = 64 * 1024;

/// A QUIC connection as the driver sees it: the close carries the [`CloseCode`] as the
/// application error code and its reason as the reason bytes.
#[derive(Debug)]
pub(crate) struct QuicLink {
    conn: quinn::Connection,
    /// The code we closed with (quinn only reports "locally closed").
    local: OnceLock<CloseCode>,
}

impl QuicLink {
    pub(crate) fn new(conn: quinn::Connection) -> Self {
        QuicLink {
            conn,
            local: OnceLock::new(),
        }
    }
}

impl Link for QuicLink {
    fn close(&self, code: CloseCode) {
        if self.local.set(code).is_ok() {
            self.conn
                .close(close_varint(code), code.reason().as_bytes());
        }
    }
    fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }
    fn closed(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.conn.closed().await;
        })
    }
    fn close_code(&self) -> Option<CloseCode> {
        self.local.get().copied().or_else(|| {
            self.conn
                .close_reason()
                .and_then(|e| close_code_of(&e))
                .map(|(code, _)| code)
        })
    }
}

/// Drives one connection from its first packet to its close.
pub(crate) async fn serve(incoming: quinn::Incoming, id: u64, channel: Channel) {
    let handshake_deadline = Instant::now() + channel.config().handshake_timeout;
    let remote = incoming.remote_address();
    let Some(conn) = handshake(incoming, handshake_deadline, &channel).await else {
        return;
    };
    let link = Arc::new(QuicLink::new(conn.clone()));
    let _admission = match channel.admit() {
        Ok(a) => a,
        Err(code) => {
            link.close(code);
            return;
        }
    };
    tracing::debug!("connection established");

    let Some((mut send, recv)) = open_stream(&conn, &link, handshake_deadline, &channel).await
    else {
        return;
    };
    let link_dyn: Arc<dyn Link> = link.clone();
    let (outbox, rx) = Outbox::new(Arc::clone(&link_dyn), channel.config().outbox_capacity);
    let writer = tokio::spawn(async move { write_loop(&mut send, rx).await });
    let reader = QuicReader {
        stream: StreamReader::new(recv, link_dyn),
        conn,
        channel: channel.clone(),
    };
    channel
        .drive(Connection {
            id,
            remote,
            reader,
            outbox,
            writer,
            handshake_deadline,
        })
        .await;
}

/// The TLS handshake, bounded by `deadline`; `None` when it failed, timed out or the
/// endpoint is stopping.
async fn handshake(
    incoming: quinn::Incoming,
    deadline: Instant,
    channel: &Channel,
) -> Option<quinn::Connection> {
    let handshake = timeout_at(deadline, incoming.into_future());
    tokio::pin!(handshake);
    tokio::select! {
        biased;
        () = channel.stopped() => {
            // Dropping a half-open connection would close it with code 0;
            // finish the TLS handshake briefly to say why instead.
            if let Ok(Ok(Ok(conn))) = timeout(FLUSH_TIMEOUT, &mut handshake).await {
                QuicLink::new(conn).close(CloseCode::ServerShutdown);
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
    link: &QuicLink,
    deadline: Instant,
    channel: &Channel,
) -> Option<(quinn::SendStream, quinn::RecvStream)> {
    let code = tokio::select! {
        biased;
        () = channel.stopped() => CloseCode::ServerShutdown,
        r = timeout_at(deadline, conn.accept_bi()) => match r {
            Ok(Ok(s)) => return Some(s),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "connection lost before opening a stream");
                return None;
            }
            Err(_) => CloseCode::HandshakeTimeout,
        },
    };
    link.close(code);
    None
}

/// Writes the queued frames, then finishes the stream and gives the peer a moment to
/// acknowledge the last frames before the connection close (which may discard unread
/// data) goes out.
async fn write_loop(send: &mut quinn::SendStream, rx: OutboxReceiver) {
    match write_stream(send, rx).await {
        Ok(_) => {
            let _ = timeout(FLUSH_TIMEOUT, send.stopped()).await;
        }
        Err(e) => tracing::debug!(error = %e, "write failed"),
    }
}

/// The game stream's messages, and the time-sync datagrams answered on the way.
struct QuicReader {
    stream: StreamReader<quinn::RecvStream>,
    conn: quinn::Connection,
    channel: Channel,
}

impl Reader for QuicReader {
    async fn next(&mut self, state: ConnState) -> Read {
        tokio::select! {
            d = self.conn.read_datagram() => match d {
                Ok(bytes) => match datagram(state, &self.conn, &bytes, &self.channel) {
                    Ok(()) => Read::Alive,
                    Err((code, detail)) => Read::End(End::Close(code, detail)),
                },
                Err(e) => Read::End(End::Lost(close_code_of(&e).map(|(c, _)| c))),
            },
            read = self.stream.next_message() => read,
        }
    }
}

/// Handles one received datagram: decodes it (a malformed or oversized one is a
/// protocol error, like a bad frame), checks it is legal in the connection's state,
/// and answers time-sync requests with the handler's clock. Replies are datagrams
/// too and may be lost; a full send buffer drops them.
fn datagram(
    state: ConnState,
    conn: &quinn::Connection,
    bytes: &[u8],
    channel: &Channel,
) -> Result<(), (CloseCode, String)> {
    let msg = decode_datagram::<ClientDatagram>(bytes)
        .map_err(|e| (e.close_code(), format!("datagram: {e}")))?;
    verify_datagram(state, &msg).map_err(|code| {
        (
            code,
            format!("{} datagram not allowed in state {state:?}", msg.name()),
        )
    })?;
    match msg {
        ClientDatagram::TimeSyncRequest { client_send_us } => {
            let Some(clock) = channel.handler().clock() else {
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
