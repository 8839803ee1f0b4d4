//! The game stream of the stream transports (QUIC, WebTransport): one bidirectional
//! byte stream carrying `u32` big-endian length-prefixed postcard payloads both ways.
//! [`StreamReader`] decodes client messages from any [`AsyncRead`], [`write_stream`]
//! drains an outbox into any [`AsyncWrite`], and [`drive_stream`] runs a whole
//! connection over such a pair (WebTransport's entry point; QUIC adds its datagrams
//! to the reader and so assembles the same parts itself).

use std::net::SocketAddr;
use std::sync::Arc;

use protocol::v2::ClientMessage;
use protocol::{CloseCode, ConnState, FrameDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::driver::{Connection, End, Read, Reader};
use crate::outbox::{Batch, Link, Outbox, OutboxReceiver};
use crate::shared::Channel;

/// Read buffer size per connection. Client messages are small (a command is tens of
/// bytes); a longer frame is assembled by the decoder over several reads. Every
/// connected client holds one, so it is kept small (16 KiB was a quarter of a QUIC
/// connection's memory).
const READ_BUF: usize = 2 * 1024;
/// At most this many bytes of queued frames are joined into one write.
pub const COALESCE_BYTES: usize = 64 * 1024;

/// Decodes length-prefixed client messages from a byte stream (a frame longer than
/// [`protocol::MAX_FRAME_LEN`] is refused before anything is allocated for it).
pub struct StreamReader<R> {
    recv: R,
    link: Arc<dyn Link>,
    decoder: FrameDecoder<ClientMessage>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R> std::fmt::Debug for StreamReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("decoder", &self.decoder)
            .field("unread", &(self.end - self.start))
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin + Send> StreamReader<R> {
    /// A reader of `recv`; `link` tells a lost connection from a broken stream.
    pub fn new(recv: R, link: Arc<dyn Link>) -> Self {
        StreamReader {
            recv,
            link,
            decoder: FrameDecoder::new(),
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next message or the end: the stream finished (at a frame boundary: a
    /// normal close; inside a frame: a protocol error), a bad frame (its close code),
    /// a read error (the connection lost, else a protocol error). Cancel-safe.
    pub async fn next_message(&mut self) -> Read {
        loop {
            while self.start < self.end {
                let mut input = self.buf.get(self.start..self.end).unwrap_or_default();
                let before = input.len();
                let decoded = self.decoder.decode(&mut input);
                self.start += before - input.len();
                match decoded {
                    Ok(Some(msg)) => return Read::Message(msg),
                    Ok(None) => {}
                    Err(e) => return Read::End(End::Close(e.close_code(), e.to_string())),
                }
            }
            match self.recv.read(&mut self.buf).await {
                Ok(0) => {
                    return Read::End(if self.decoder.has_partial() {
                        End::Close(
                            CloseCode::ProtocolError,
                            "stream ended inside a frame".into(),
                        )
                    } else {
                        End::Close(CloseCode::Normal, String::new())
                    });
                }
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                }
                Err(e) => {
                    return Read::End(if self.link.is_closed() {
                        End::Lost(self.link.close_code())
                    } else {
                        End::Close(CloseCode::ProtocolError, format!("stream error: {e}"))
                    });
                }
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send> Reader for StreamReader<R> {
    async fn next(&mut self, _state: ConnState) -> Read {
        self.next_message().await
    }
}

/// Writes what `rx` yields to `send` in order (joined up to [`COALESCE_BYTES`] per
/// write) until the finish, then shuts the stream down (a QUIC FIN). The finish's
/// close code on success; an error when a write failed (the stream is then left
/// as it is).
pub async fn write_stream<W: AsyncWrite + Unpin + Send>(
    send: &mut W,
    mut rx: OutboxReceiver,
) -> std::io::Result<CloseCode> {
    loop {
        match rx.next(COALESCE_BYTES).await {
            Batch::Frames(bytes) => send.write_all(&bytes).await?,
            Batch::Finish(code) => {
                send.shutdown().await?;
                return Ok(code);
            }
        }
    }
}

/// A connection whose game stream is a pair of byte streams, for [`drive_stream`].
#[derive(Debug)]
pub struct StreamConnection<R, W> {
    /// The client-to-server half.
    pub recv: R,
    /// The server-to-client half.
    pub send: W,
    /// Closes the connection (with the code and reason) and sees it closed.
    pub link: Arc<dyn Link>,
    /// The peer's address.
    pub remote: SocketAddr,
    /// When a valid `Hello` must have arrived.
    pub handshake_deadline: Instant,
}

/// Serves one admitted stream connection from its first frame to its close: spawns
/// the writer ([`write_stream`]) and drives the connection on `channel`. Returns the
/// close code when known. The connection's id comes from [`Channel::next_id`]; the
/// caller holds its [`Admission`](crate::Admission) until this returns.
pub async fn drive_stream<R, W>(
    channel: &Channel,
    conn: StreamConnection<R, W>,
) -> Option<CloseCode>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let StreamConnection {
        recv,
        mut send,
        link,
        remote,
        handshake_deadline,
    } = conn;
    let (outbox, rx) = Outbox::new(Arc::clone(&link), channel.config().outbox_capacity);
    let writer = tokio::spawn(async move {
        if let Err(e) = write_stream(&mut send, rx).await {
            tracing::debug!(error = %e, "write failed");
        }
    });
    channel
        .drive(Connection {
            id: channel.next_id(),
            remote,
            reader: StreamReader::new(recv, link),
            outbox,
            writer,
            handshake_deadline,
        })
        .await
}
