//! What a connection handler sees: the [`ConnectionHandler`] hook, the
//! [`ConnectionContext`] of one connection, and the [`ClockReading`] it reports for
//! time sync (QUIC datagrams, `Pong.world_time_ms`).

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use protocol::v2::ClientMessage;
use protocol::{CloseCode, ConnState};

use crate::outbox::Outbox;

/// Hook for everything beyond the version handshake, pings and heartbeats, which the
/// driver answers itself. Authentication and the bridge to the simulation plug in
/// here: keep the [`Outbox`] from `on_open` to push server messages from anywhere
/// (e.g. the tick loop), and move the connection along its [`ConnState`]s with
/// [`ConnectionContext::set_state`].
///
/// The same handler serves every transport (QUIC, WebTransport, WebSocket): it sees
/// decoded messages and sends whole messages or length-prefixed frames.
///
/// Callbacks run on the connection's task and must not block; `on_message` may await
/// (e.g. a database lookup), which holds back further reads on this connection only.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// The version handshake succeeded (`Welcome` already queued).
    fn on_open(&self, _conn: &mut ConnectionContext) {}

    /// A client message the driver does not handle itself, already checked legal in
    /// the current state. Returning an error closes the connection with that code.
    fn on_message<'a>(
        &'a self,
        _conn: &'a mut ConnectionContext,
        _msg: ClientMessage,
    ) -> HandlerFuture<'a> {
        Box::pin(std::future::ready(Err(CloseCode::ProtocolError)))
    }

    /// The connection is gone. `code` is the close code when known (sent by us or by
    /// the peer).
    fn on_close(&self, _conn: &ConnectionContext, _code: Option<CloseCode>) {}

    /// The simulation clock, read when a time-sync datagram or a `Ping` is answered (it
    /// must be cheap and never block). `None` (the default) leaves time-sync datagrams
    /// unanswered and `Pong.world_time_ms` empty.
    fn clock(&self) -> Option<ClockReading> {
        None
    }

    /// The clock a connection's `Ping` is answered with: the world of the session it
    /// plays in, when the game serves several worlds. Defaults to [`Self::clock`].
    fn session_clock(&self, _conn: &ConnectionContext) -> Option<ClockReading> {
        self.clock()
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

/// The default handler: handshake, pings and heartbeats only.
#[derive(Debug, Default, Clone, Copy)]
pub struct BasicHandler;

impl ConnectionHandler for BasicHandler {}

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
    /// The handler's per-connection data, if set and of type `T`. Dropped with the
    /// connection.
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
    /// Channel-unique connection id (also in log spans).
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
