//! [`ClientError`]: every way a client call fails, with the PixSim close code read
//! from the connection's close where the server sent one (a QUIC application close,
//! a WebSocket close frame `4000 + code`, a WebTransport session close).

use std::time::Duration;

use protocol::v2::ErrorCode;
use protocol::{CloseCode, CodecError};

use crate::tls::TlsError;
use crate::transport::close_code_of;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad trust configuration (fingerprint, certificate file).
    #[error(transparent)]
    Config(#[from] TlsError),
    /// Local socket error.
    #[error("local socket: {0}")]
    Io(#[from] std::io::Error),
    /// The connection could not be started (bad server name...).
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The server closed the connection with a PixSim close code.
    #[error("server closed the connection: {reason} (code {code:?})")]
    Closed {
        /// The close code.
        code: CloseCode,
        /// The reason text sent with it.
        reason: String,
    },
    /// The server refused us with an `Error` message.
    #[error("server error {code:?}: {message}")]
    Rejected {
        /// Error code.
        code: ErrorCode,
        /// Detail.
        message: String,
        /// Close code of the connection close that followed, if seen.
        close: Option<CloseCode>,
    },
    /// The server's certificate is not the pinned one / not signed by the
    /// trusted certificate, or not valid for the server name.
    #[error(
        "server certificate not trusted ({0}): it does not match the pinned fingerprint or \
         the trusted certificate file"
    )]
    UntrustedCertificate(String),
    /// Transport failure: TLS handshake failure, timeout,
    /// reset...
    #[error("connection failed: {0}")]
    Connection(quinn::ConnectionError),
    /// The server sent something undecodable.
    #[error("bad data from server: {0}")]
    Codec(#[from] CodecError),
    /// The server sent a message that makes no sense here.
    #[error("unexpected message from server: {0}")]
    Unexpected(&'static str),
    /// The server ended the stream.
    #[error("server ended the stream")]
    StreamEnded,
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A URL the client cannot use.
    #[error("invalid URL {0}")]
    Url(String),
    /// The WebSocket could not be opened or written (refused upgrade, socket error).
    #[error("WebSocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// The server closed the WebSocket with a code that is not a PixSim close
    /// (`4000 + CloseCode`).
    #[error("WebSocket closed with code {code}: {reason}")]
    WebSocketClosed {
        /// The WebSocket close code.
        code: u16,
        /// Its reason text.
        reason: String,
    },
    /// The WebSocket ended without a close frame, or failed while reading.
    #[error("WebSocket lost: {0}")]
    WebSocketLost(String),
    /// The WebTransport session could not be opened.
    #[error("cannot open the WebTransport session: {0}")]
    WebTransportConnect(Box<web_transport_quinn::ClientError>),
    /// The WebTransport session failed or was closed without a PixSim close code.
    #[error("WebTransport session: {0}")]
    WebTransport(Box<web_transport_quinn::SessionError>),
    /// The transport cannot do this (datagrams over WebSocket).
    #[error("not available over this transport: {0}")]
    Unsupported(&'static str),
}

impl From<quinn::ConnectionError> for ClientError {
    fn from(e: quinn::ConnectionError) -> Self {
        match close_code_of(&e) {
            Some((code, reason)) => ClientError::Closed { code, reason },
            None => ClientError::Connection(e),
        }
    }
}

impl From<quinn::ReadError> for ClientError {
    fn from(e: quinn::ReadError) -> Self {
        match e {
            quinn::ReadError::ConnectionLost(e) => e.into(),
            other => ClientError::Io(other.into()),
        }
    }
}

impl From<quinn::WriteError> for ClientError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::ConnectionLost(e) => e.into(),
            other => ClientError::Io(other.into()),
        }
    }
}

impl ClientError {
    /// The PixSim close code behind this error, if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            ClientError::Closed { code, .. } => Some(*code),
            ClientError::Rejected { close, .. } => *close,
            ClientError::Config(_)
            | ClientError::Io(_)
            | ClientError::Connect(_)
            | ClientError::UntrustedCertificate(_)
            | ClientError::Connection(_)
            | ClientError::Codec(_)
            | ClientError::Unexpected(_)
            | ClientError::StreamEnded
            | ClientError::Timeout(_)
            | ClientError::Url(_)
            | ClientError::WebSocket(_)
            | ClientError::WebSocketClosed { .. }
            | ClientError::WebSocketLost(_)
            | ClientError::WebTransportConnect(_)
            | ClientError::WebTransport(_)
            | ClientError::Unsupported(_) => None,
        }
    }
}
