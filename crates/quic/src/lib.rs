//! PixSim QUIC endpoint (quinn), the server's side only: TLS certificate handling
//! (`cert`), the endpoint and its accept loop (`server`), and one connection's QUIC
//! parts (`conn`: the [`channel::Link`] over a `quinn::Connection`, the reader of the
//! game stream and the time-sync datagrams, the writer). The protocol driver itself
//! (handshake, state machine, timeouts, close flow) and what a [`ConnectionHandler`]
//! sees are the `channel` crate's, shared with the other transports; they are
//! re-exported here. It knows the wire format and nothing of the game: the server
//! plugs the game channel in as a handler. Clients (`game-client`) have their own QUIC
//! client side.
//!
//! Wire format: see the `protocol` crate. ALPN [`protocol::ALPN`]; one
//! client-opened bidirectional stream per connection carrying
//! length-prefixed postcard frames; closes carry a [`CloseCode`] as the QUIC
//! application error code and [`CloseCode::reason`] as the reason bytes.
//! Time-sync datagrams are answered by the endpoint with the clock the
//! [`ConnectionHandler`] reports ([`ConnectionHandler::clock`]).

mod cert;
mod conn;
mod server;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use cert::{
    CERT_DER, CERT_PEM, CertMaterial, CertSource, DEFAULT_SANS, KEY_PEM, load_or_generate,
    self_signed_dir,
};
pub use channel::{
    BasicHandler, ClockReading, ConnectionContext, ConnectionHandler, HandlerFuture, Outbox,
};
pub use protocol::CloseCode;
pub use server::{QuicServer, drain_endpoint, log_join};

/// Live counters of the endpoint (the `channel` crate's, one set per transport).
pub type QuicStats = channel::ConnectionStats;

/// Endpoint configuration.
#[derive(Clone, Debug)]
pub struct QuicConfig {
    /// UDP address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// PEM certificate chain (leaf first). With `key_path`; when both are
    /// `None` a self-signed certificate in `state_dir/quic` is used.
    pub cert_path: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: Option<PathBuf>,
    /// Server state directory; the self-signed certificate lives in
    /// `state_dir/quic/{cert.pem,key.pem,cert.der}`, generated once.
    pub state_dir: PathBuf,
    /// Extra DNS names / IPs for a generated certificate, besides
    /// `localhost`, `127.0.0.1` and `::1`. Only used when generating.
    pub server_names: Vec<String>,
    /// Sent in `Welcome`, e.g. `pixsim-server 0.1.0`.
    pub server_version: String,
    /// A connection that sends nothing for this long is closed with
    /// [`CloseCode::IdleTimeout`] (also the QUIC transport idle timeout).
    pub idle_timeout: Duration,
    /// Time from the first packet to a valid `Hello`, else
    /// [`CloseCode::HandshakeTimeout`].
    pub handshake_timeout: Duration,
    /// Connections beyond this are closed with [`CloseCode::ServerFull`].
    pub max_connections: usize,
    /// Bound on the graceful shutdown (draining connections, then
    /// `wait_idle`).
    pub shutdown_timeout: Duration,
    /// Server messages queued per connection while its stream is blocked (the
    /// peer reads too slowly). A full queue makes the client a slow consumer:
    /// [`Outbox::send`] closes at once, [`Outbox::send_frames_wait`] after its wait.
    pub outbox_capacity: usize,
}

impl QuicConfig {
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

    /// A configuration with defaults: self-signed certificate, idle 30 s,
    /// handshake 10 s, 1024 connections, shutdown 5 s, 256 queued messages per
    /// connection.
    pub fn new(
        bind: SocketAddr,
        state_dir: impl Into<PathBuf>,
        server_version: impl Into<String>,
    ) -> Self {
        QuicConfig {
            bind,
            cert_path: None,
            key_path: None,
            state_dir: state_dir.into(),
            server_names: Vec::new(),
            server_version: server_version.into(),
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(5),
            outbox_capacity: 256,
        }
    }
}

/// Endpoint configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// File system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Unreadable PEM/DER certificate or key file.
    #[error("{}: {message}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Certificate generation failed.
    #[error("generating self-signed certificate: {0}")]
    CertGen(#[from] rcgen::Error),
    /// TLS configuration rejected (bad key, unusable certificate...).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Binding the UDP socket failed.
    #[error("binding QUIC endpoint on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Invalid configuration.
    #[error("invalid QUIC configuration: {0}")]
    Config(String),
}

impl QuicError {
    pub(crate) fn io(context: String, source: io::Error) -> Self {
        QuicError::Io { context, source }
    }
}

/// `d` as a QUIC transport idle timeout.
pub(crate) fn idle(d: Duration) -> Result<quinn::IdleTimeout, QuicError> {
    quinn::IdleTimeout::try_from(d)
        .map_err(|_| QuicError::Config(format!("idle timeout {d:?} out of range")))
}

/// The QUIC application error code for `code`.
pub(crate) fn close_varint(code: CloseCode) -> quinn::VarInt {
    quinn::VarInt::from_u32(code.as_u32())
}

/// The PixSim close code and reason of a connection the peer closed at the
/// application level; `None` for transport-level failures (timeouts,
/// resets, local closes) and unknown codes.
pub(crate) fn close_code_of(err: &quinn::ConnectionError) -> Option<(CloseCode, String)> {
    match err {
        quinn::ConnectionError::ApplicationClosed(close) => {
            CloseCode::from_u64(close.error_code.into_inner())
                .map(|code| (code, String::from_utf8_lossy(&close.reason).into_owned()))
        }
        _ => None,
    }
}
