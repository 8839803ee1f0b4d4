//! What a connection handler sees: the [`ConnectionHandler`] hook, the
//! [`ConnectionContext`] of one connection and its [`Outbox`], and the
//! [`ClockReading`] it reports for time-sync datagrams.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use protocol::v2::{ClientMessage, ServerMessage};
use protocol::{CloseCode, ConnState, encode_frame};
use tokio::sync::mpsc;

use crate::close_connection;

/// Hook for everything beyond the version handshake and pings, which the
/// endpoint answers itself. Authentication and the bridge to the
/// simulation plug in here: keep the [`Outbox`] from `on_open` to push
/// server messages from anywhere (e.g. the tick loop), and move the
/// connection along its [`ConnState`]s with
/// [`ConnectionContext::set_state`].
///
/// Callbacks run on the connection's task and must not block; `on_message`
/// may await (e.g. a database lookup), which holds back further reads on
/// this connection only.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// The version handshake succeeded (`Welcome` already queued).
    fn on_open(&self, _conn: &mut ConnectionContext) {}

    /// A client message the endpoint does not handle itself, already
    /// checked legal in the current state. Returning an error closes the
    /// connection with that code.
    fn on_message<'a>(
        &'a self,
        _conn: &'a mut ConnectionContext,
        _msg: ClientMessage,
    ) -> HandlerFuture<'a> {
        Box::pin(std::future::ready(Err(CloseCode::ProtocolError)))
    }

    /// The connection is gone. `code` is the close code when known (sent
    /// by us or by the peer).
    fn on_close(&self, _conn: &ConnectionContext, _code: Option<CloseCode>) {}

    /// The simulation clock, read when a time-sync datagram is answered (it
    /// must be cheap and never block). `None` (the default) leaves time-sync
    /// requests unanswered: the client's per-sample timeout copes with that.
    fn clock(&self) -> Option<ClockReading> {
        None
    }
}

/// The simulation's clock as [`ConnectionHandler::clock`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockReading {
    /// World time now, in ms (the clock mini-game inputs are judged against).
    pub world_time_ms: i64,
    /// The tick that world time belongs to.
    pub tick: u64,
}

/// What [`ConnectionHandler::on_message`] returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CloseCode>> + Send + 'a>>;

/// The default handler: handshake and pings only.
#[derive(Debug, Default, Clone, Copy)]
pub struct BasicHandler;

impl ConnectionHandler for BasicHandler {}

/// Sends server messages to one connection, from any task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    pub(crate) tx: mpsc::Sender<Outgoing>,
    pub(crate) conn: quinn::Connection,
}

#[derive(Debug)]
pub(crate) enum Outgoing {
    Frame(Vec<u8>),
    /// Flush, finish the stream and stop the writer.
    Finish,
}

impl Outbox {
    /// Queues `msg`. If the connection's queue is full the client is not
    /// keeping up: the connection is closed with
    /// [`CloseCode::SlowConsumer`] and that code returned. A closed
    /// connection also returns an error.
    pub fn send(&self, msg: &ServerMessage) -> Result<(), CloseCode> {
        let mut frame = Vec::new();
        encode_frame(msg, &mut frame).map_err(|e| {
            tracing::error!(error = %e, msg = msg.name(), "cannot encode server message");
            CloseCode::InternalError
        })?;
        match self.tx.try_send(Outgoing::Frame(frame)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                close_connection(&self.conn, CloseCode::SlowConsumer);
                Err(CloseCode::SlowConsumer)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CloseCode::Normal),
        }
    }

    /// Queues `frames`, one or more complete frames already encoded (with
    /// [`protocol::encode_frame`]), waiting up to `wait` for room in the connection's
    /// queue (for bulk senders such as a resend). A client that does not make room in
    /// time is closed with [`CloseCode::SlowConsumer`]. The frames go out in one write,
    /// so usually in one packet.
    pub async fn send_frames_wait(&self, frames: Vec<u8>, wait: Duration) -> Result<(), CloseCode> {
        if frames.is_empty() {
            return Ok(());
        }
        match self.tx.send_timeout(Outgoing::Frame(frames), wait).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                close_connection(&self.conn, CloseCode::SlowConsumer);
                Err(CloseCode::SlowConsumer)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(CloseCode::Normal),
        }
    }

    /// Closes the connection now with `code` (queued frames may be lost).
    pub fn close(&self, code: CloseCode) {
        close_connection(&self.conn, code);
    }

    /// True once the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    /// Resolves when the connection is closed, by either side.
    pub async fn closed(&self) {
        let _ = self.conn.closed().await;
    }
}

/// One connection as seen by a [`ConnectionHandler`].
#[derive(Debug)]
pub struct ConnectionContext {
    pub(crate) id: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) client: String,
    pub(crate) state: ConnState,
    pub(crate) outbox: Outbox,
    pub(crate) data: Option<Box<dyn Any + Send + Sync>>,
}

impl ConnectionContext {
    /// The handler's per-connection data, if set and of type `T`. Dropped
    /// with the connection.
    pub fn data_mut<T: Any + Send + Sync>(&mut self) -> Option<&mut T> {
        self.data.as_mut().and_then(|d| d.downcast_mut::<T>())
    }
    /// The handler's per-connection data, if set and of type `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.data.as_ref().and_then(|d| d.downcast_ref::<T>())
    }
    /// Sets the handler's per-connection data.
    pub fn set_data<T: Any + Send + Sync>(&mut self, data: T) {
        self.data = Some(Box::new(data));
    }
    /// Endpoint-unique connection id (also in log spans).
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }
    /// The client identification from `Hello`.
    pub fn client(&self) -> &str {
        &self.client
    }
    /// Current protocol state.
    pub fn state(&self) -> ConnState {
        self.state
    }
    /// Moves the connection to `state` (e.g. after authentication).
    pub fn set_state(&mut self, state: ConnState) {
        self.state = state;
    }
    /// The connection's outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}
