//! The way out of a connection: the [`Link`] a transport gives the driver (close it,
//! see it closed), the [`Outbox`] handlers queue server messages in, and the
//! [`OutboxReceiver`] the transport's writer task drains.
//!
//! The queue carries *length-prefixed frames* (`u32` big-endian length + postcard
//! payload, [`protocol::encode_frame`]), possibly several joined in one buffer: the
//! QUIC and WebTransport writers send them as they are; a transport with its own
//! message framing splits them with [`split_frames`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use protocol::v2::ServerMessage;
use protocol::{CloseCode, FRAME_HEADER_LEN, encode_frame};
use tokio::sync::{mpsc, watch};

/// A boxed future, as [`Link::closed`] returns it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The transport's side of a connection, as the driver and the [`Outbox`] use it.
pub trait Link: Send + Sync + fmt::Debug + 'static {
    /// Closes the connection with `code` (the reason is [`CloseCode::reason`]) from any
    /// task. The first close wins; later ones do nothing.
    fn close(&self, code: CloseCode);
    /// True once the connection is closed, by either side.
    fn is_closed(&self) -> bool;
    /// Resolves once the connection is closed, by either side.
    fn closed(&self) -> BoxFuture<'_, ()>;
    /// The code the connection was closed with (by us or the peer), when known.
    fn close_code(&self) -> Option<CloseCode>;
}

/// A [`Link`] for transports whose close is done by their own tasks (WebSocket): a
/// close only records the code and wakes whoever waits on [`Link::closed`] (the
/// transport's writer then sends its close frame; the driver stops reading).
#[derive(Debug)]
pub struct CloseSignal {
    code: watch::Sender<Option<CloseCode>>,
}

impl Default for CloseSignal {
    fn default() -> Self {
        CloseSignal {
            code: watch::Sender::new(None),
        }
    }
}

impl CloseSignal {
    /// An open link.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Link for CloseSignal {
    fn close(&self, code: CloseCode) {
        self.code.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(code);
                true
            } else {
                false
            }
        });
    }
    fn is_closed(&self) -> bool {
        self.code.borrow().is_some()
    }
    fn closed(&self) -> BoxFuture<'_, ()> {
        let mut rx = self.code.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(Option::is_some).await;
        })
    }
    fn close_code(&self) -> Option<CloseCode> {
        *self.code.borrow()
    }
}

/// What the outbox queue carries.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// One or more complete frames.
    Frames(Vec<u8>),
    /// Flush, then end the stream: the connection closes with this code.
    Finish(CloseCode),
}

/// Sends server messages to one connection, from any task. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    link: Arc<dyn Link>,
    /// A close asked for with [`Outbox::request_close`], for the driver's close flow.
    close_request: Arc<watch::Sender<Option<CloseCode>>>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("queued", &(self.tx.max_capacity() - self.tx.capacity()))
            .field("closed", &self.link.is_closed())
            .finish()
    }
}

impl Outbox {
    /// An outbox of `capacity` queued sends (at least 1) over `link`, and the receiver
    /// the transport's writer drains.
    pub fn new(link: Arc<dyn Link>, capacity: usize) -> (Outbox, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let close_request = Arc::new(watch::Sender::new(None));
        (
            Outbox {
                tx,
                link,
                close_request,
            },
            OutboxReceiver { rx, pending: None },
        )
    }

    /// Queues `msg`. If the connection's queue is full the client is not keeping up:
    /// the connection is closed with [`CloseCode::SlowConsumer`] and that code
    /// returned. A closed connection also returns an error.
    pub fn send(&self, msg: &ServerMessage) -> Result<(), CloseCode> {
        let mut frame = Vec::new();
        encode_frame(msg, &mut frame).map_err(|e| {
            tracing::error!(error = %e, msg = msg.name(), "cannot encode server message");
            CloseCode::InternalError
        })?;
        match self.tx.try_send(Outgoing::Frames(frame)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.link.close(CloseCode::SlowConsumer);
                Err(CloseCode::SlowConsumer)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CloseCode::Normal),
        }
    }

    /// Queues `frames`, one or more complete frames already encoded (with
    /// [`protocol::encode_frame`]), waiting up to `wait` for room in the connection's
    /// queue (for bulk senders such as a resend). A client that does not make room in
    /// time is closed with [`CloseCode::SlowConsumer`]. On QUIC the frames go out in
    /// one write, so usually in one packet.
    pub async fn send_frames_wait(&self, frames: Vec<u8>, wait: Duration) -> Result<(), CloseCode> {
        if frames.is_empty() {
            return Ok(());
        }
        match self.tx.send_timeout(Outgoing::Frames(frames), wait).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.link.close(CloseCode::SlowConsumer);
                Err(CloseCode::SlowConsumer)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(CloseCode::Normal),
        }
    }

    /// Closes the connection now with `code` (queued frames may be lost).
    pub fn close(&self, code: CloseCode) {
        self.link.close(code);
    }

    /// Closes the connection with `code` through the driver's close flow, from any task:
    /// what is queued goes out, then the `Error` that says why, then the transport's
    /// close; unlike [`Outbox::close`] nothing queued is lost (within the flush bound).
    pub fn request_close(&self, code: CloseCode) {
        self.close_request.send_replace(Some(code));
    }

    /// Resolves with the code of the first [`Outbox::request_close`].
    pub(crate) async fn close_requested(&self) -> CloseCode {
        let mut rx = self.close_request.subscribe();
        loop {
            if let Some(code) = *rx.borrow_and_update() {
                return code;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// True once the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.link.is_closed()
    }

    /// Resolves when the connection is closed, by either side.
    pub async fn closed(&self) {
        self.link.closed().await;
    }

    /// The transport link.
    pub fn link(&self) -> &Arc<dyn Link> {
        &self.link
    }

    /// Asks the writer to flush what is queued and end with `code` (the driver's close
    /// flow). False when the queue is full or the writer gone.
    pub(crate) fn finish(&self, code: CloseCode) -> bool {
        self.tx.try_send(Outgoing::Finish(code)).is_ok()
    }
}

/// What the transport's writer gets from [`OutboxReceiver::next`].
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// Complete length-prefixed frames, in order, to send now.
    Frames(Vec<u8>),
    /// Nothing more comes: flush and end the stream. The connection is closing with
    /// this code ([`CloseCode::Normal`] when every [`Outbox`] was dropped). A
    /// transport that closes with a frame of its own (WebSocket) sends it now.
    Finish(CloseCode),
}

/// The receiving end of an [`Outbox`], drained by the transport's writer task.
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Outgoing>,
    pending: Option<Outgoing>,
}

impl OutboxReceiver {
    /// The next batch: whatever is queued when it wakes, joined up to about
    /// `max_bytes` (so a burst of messages shares packets), or the finish.
    /// Cancel-safe.
    pub async fn next(&mut self, max_bytes: usize) -> Batch {
        let first = match self.pending.take() {
            Some(o) => o,
            None => match self.rx.recv().await {
                Some(o) => o,
                None => return Batch::Finish(CloseCode::Normal),
            },
        };
        let mut buf = match first {
            Outgoing::Frames(frames) => frames,
            Outgoing::Finish(code) => return Batch::Finish(code),
        };
        while buf.len() < max_bytes {
            match self.rx.try_recv() {
                Ok(Outgoing::Frames(frames)) => buf.extend_from_slice(&frames),
                Ok(finish @ Outgoing::Finish(_)) => {
                    self.pending = Some(finish);
                    break;
                }
                Err(_) => break,
            }
        }
        Batch::Frames(buf)
    }
}

/// The payloads of the length-prefixed frames in `frames` (as [`Batch::Frames`] holds
/// them), for transports that send one message per payload. A truncated last frame (a
/// bug, never produced by [`Outbox`]) ends the iteration.
pub fn split_frames(frames: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = frames;
    std::iter::from_fn(move || {
        let (header, tail) = rest.split_first_chunk::<FRAME_HEADER_LEN>()?;
        let len = u32::from_be_bytes(*header) as usize;
        if tail.len() < len {
            rest = &[];
            return None;
        }
        let (payload, after) = tail.split_at(len);
        rest = after;
        Some(payload)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn split_frames_yields_payloads() {
        let mut bytes = Vec::new();
        for nonce in 0..3u64 {
            encode_frame(
                &ServerMessage::Heartbeat {
                    server_time_ms: nonce,
                },
                &mut bytes,
            )
            .unwrap();
        }
        let payloads: Vec<_> = split_frames(&bytes).collect();
        assert_eq!(payloads.len(), 3);
        for (i, p) in payloads.iter().enumerate() {
            let msg: ServerMessage = protocol::decode_payload(p).unwrap();
            assert_eq!(
                msg,
                ServerMessage::Heartbeat {
                    server_time_ms: i as u64
                }
            );
        }
        assert_eq!(split_frames(&[0, 0, 0, 5, 1]).count(), 0);
        assert_eq!(split_frames(&[]).count(), 0);
    }

    #[tokio::test]
    async fn receiver_coalesces_and_keeps_the_finish_in_order() {
        let link = Arc::new(CloseSignal::new());
        let (outbox, mut rx) = Outbox::new(link.clone(), 8);
        let hb = ServerMessage::Heartbeat { server_time_ms: 1 };
        outbox.send(&hb).unwrap();
        outbox.send(&hb).unwrap();
        assert!(outbox.finish(CloseCode::ProtocolError));
        match rx.next(1 << 16).await {
            Batch::Frames(b) => assert_eq!(split_frames(&b).count(), 2),
            other @ Batch::Finish(_) => panic!("{other:?}"),
        }
        assert_eq!(
            rx.next(1 << 16).await,
            Batch::Finish(CloseCode::ProtocolError)
        );
        drop(outbox);
        assert_eq!(rx.next(1 << 16).await, Batch::Finish(CloseCode::Normal));
    }

    #[tokio::test]
    async fn full_queue_closes_as_slow_consumer() {
        let link = Arc::new(CloseSignal::new());
        let (outbox, _rx) = Outbox::new(link.clone(), 1);
        let hb = ServerMessage::Heartbeat { server_time_ms: 1 };
        outbox.send(&hb).unwrap();
        assert_eq!(outbox.send(&hb), Err(CloseCode::SlowConsumer));
        assert!(outbox.is_closed());
        assert_eq!(link.close_code(), Some(CloseCode::SlowConsumer));
        outbox.closed().await;
        // The first close wins.
        outbox.close(CloseCode::Normal);
        assert_eq!(link.close_code(), Some(CloseCode::SlowConsumer));
    }
}
