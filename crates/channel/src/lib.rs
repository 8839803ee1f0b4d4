//! The game channel's connection driver, independent of the game and of the
//! transport. A transport (QUIC in `quic`, WebTransport, WebSocket in `api`) accepts
//! connections, frames bytes and closes; everything else is here, the same for all:
//!
//! - [`Channel`] (`shared`): the configuration, the [`ConnectionHandler`], the live
//!   counters and `max_connections` ([`Channel::admit`]), connection ids, the stop
//!   signal.
//! - [`Channel::drive`] (`driver`): one connection from `Hello` to its close: the
//!   handshake deadline and idle timeout, the state machine, `Hello`/`Ping`/`Heartbeat`
//!   answered, other messages to the handler, and the close flow (`Error`, bounded
//!   flush, then [`Link::close`] with the [`CloseCode`]).
//! - `outbox`: the [`Link`] a transport implements (or [`CloseSignal`]), the
//!   [`Outbox`] of length-prefixed frames handlers send into, and the
//!   [`OutboxReceiver`] the transport's writer task drains ([`split_frames`] for
//!   message-framed transports).
//! - `handler`: what a handler sees ([`ConnectionContext`], [`ClockReading`]).
//! - `stream`: the length-prefixed stream framing over `AsyncRead`/`AsyncWrite`
//!   ([`StreamReader`], [`write_stream`], and [`drive_stream`], the entry point of a
//!   transport whose game stream is a byte stream pair, e.g. WebTransport).
//!
//! A transport's steps: [`Channel::admit`] (closing with the error code when full),
//! [`Outbox::new`] over its link, spawn a writer draining the receiver, then
//! [`Channel::drive`] with a [`Reader`] of decoded messages; or [`drive_stream`].

mod driver;
mod handler;
mod outbox;
mod shared;
mod stream;

use std::time::Duration;

pub use driver::{Connection, End, FLUSH_TIMEOUT, Read, Reader, now_ms};
pub use handler::{
    BasicHandler, ClockReading, ConnectionContext, ConnectionHandler, HandlerFuture,
};
pub use outbox::{Batch, BoxFuture, CloseSignal, Link, Outbox, OutboxReceiver, split_frames};
pub use protocol::CloseCode;
pub use shared::{Admission, Channel, ConnectionStats};
pub use stream::{COALESCE_BYTES, StreamConnection, StreamReader, drive_stream, write_stream};

/// The limits of one transport's connections.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// Sent in `Welcome`, e.g. `pixsim-server 0.1.0`.
    pub server_version: String,
    /// A connection that sends nothing for this long is closed with
    /// [`CloseCode::IdleTimeout`].
    pub idle_timeout: Duration,
    /// Time from the first packet to a valid `Hello`, else
    /// [`CloseCode::HandshakeTimeout`].
    pub handshake_timeout: Duration,
    /// Connections beyond this are closed with [`CloseCode::ServerFull`].
    pub max_connections: usize,
    /// Server messages queued per connection while the peer reads too slowly. A full
    /// queue makes the client a slow consumer: [`Outbox::send`] closes at once,
    /// [`Outbox::send_frames_wait`] after its wait.
    pub outbox_capacity: usize,
}

impl ChannelConfig {
    /// Defaults: idle 30 s, handshake 10 s, 1024 connections, 256 queued messages per
    /// connection.
    pub fn new(server_version: impl Into<String>) -> Self {
        ChannelConfig {
            server_version: server_version.into(),
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            outbox_capacity: 256,
        }
    }
}

/// Channel configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Invalid configuration.
    #[error("invalid channel configuration: {0}")]
    Config(String),
}
