//! PixSim WebTransport endpoint (HTTP/3 over quinn, with `web-transport-quinn`), the
//! server's side and a small client for tests.
//!
//! - `cert`: one generated certificate (ECDSA P-256, valid 10 days) and its hash;
//! - `rotation`: the current and next certificates, their rotation and the rustls
//!   resolver that serves the current one;
//! - `server`: the endpoint, its accept loop, the rotation timer and the graceful
//!   shutdown;
//! - `session`: one connection up to its game stream (HTTP/3 and WebTransport
//!   handshakes, the session path, the admission, the client-opened bidirectional
//!   stream), then driven by the `channel` crate's driver, the same as QUIC's and
//!   WebSocket's (handshake, state machine, handler, timeouts, close flow);
//! - `link`: the channel's `Link` over a session (a close is the session closed with
//!   the close code and its reason);
//! - `client`: a WebTransport client pinned by certificate hash, speaking the framed
//!   game protocol (tests, tools).
//!
//! Wire: a WebTransport session at `https://host:port/game`; the client opens one
//! bidirectional stream carrying exactly the QUIC channel's framing (u32 big-endian
//! length, postcard payload). A close is the WebTransport session closed with the
//! [`protocol::CloseCode`] number and its reason text.

mod cert;
pub mod client;
mod link;
mod rotation;
mod server;
mod session;

use std::net::SocketAddr;
use std::time::Duration;

pub use cert::{CERT_VALIDITY, Certificate, DEFAULT_SANS};
pub use link::close_session;
pub use rotation::{CLOCK_SKEW, CertStore, MAX_ROTATION, Published, PublishedCert};
pub use server::WebTransportServer;

/// The path of the game's WebTransport session.
pub const SESSION_PATH: &str = "/game";

/// Endpoint configuration.
#[derive(Clone, Debug)]
pub struct WebTransportConfig {
    /// UDP address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Extra DNS names / IPs for the certificates, besides `localhost` and the
    /// loopback addresses (informative: clients pin the hash).
    pub server_names: Vec<String>,
    /// How often the certificate rotates (at most [`MAX_ROTATION`]).
    pub rotation: Duration,
    /// Sent in `Welcome`, e.g. `pixsim-server 0.1.0`.
    pub server_version: String,
    /// Time from the first packet to a valid `Hello`, else the connection is closed
    /// ([`protocol::CloseCode::HandshakeTimeout`] once the session exists).
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed with
    /// [`protocol::CloseCode::IdleTimeout`] (the QUIC idle timeout is 5 s above).
    pub idle_timeout: Duration,
    /// Sessions beyond this are closed with [`protocol::CloseCode::ServerFull`].
    pub max_connections: usize,
    /// Server messages queued per connection while the peer reads too slowly (then
    /// it is closed as a slow consumer).
    pub outbox_capacity: usize,
    /// Bound on the graceful shutdown.
    pub shutdown_timeout: Duration,
}

impl WebTransportConfig {
    /// Defaults: rotation every 5 days, handshake 10 s, idle 30 s, 1024 sessions,
    /// 256 queued messages per session, shutdown 5 s.
    pub fn new(bind: SocketAddr, server_version: impl Into<String>) -> Self {
        WebTransportConfig {
            bind,
            server_names: Vec::new(),
            rotation: Duration::from_secs(5 * 24 * 3600),
            server_version: server_version.into(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            outbox_capacity: 256,
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    /// The transport-independent limits, for the connection driver.
    pub(crate) fn channel(&self) -> channel::ChannelConfig {
        channel::ChannelConfig {
            server_version: self.server_version.clone(),
            idle_timeout: self.idle_timeout,
            handshake_timeout: self.handshake_timeout,
            max_connections: self.max_connections,
            outbox_capacity: self.outbox_capacity,
        }
    }
}

/// Endpoint errors.
#[derive(Debug, thiserror::Error)]
pub enum WebTransportError {
    /// Certificate generation failed.
    #[error("generating a certificate: {0}")]
    CertGen(#[from] rcgen::Error),
    /// TLS configuration rejected.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Binding the UDP socket failed.
    #[error("binding the WebTransport endpoint on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Invalid configuration.
    #[error("invalid WebTransport configuration: {0}")]
    Config(String),
}
