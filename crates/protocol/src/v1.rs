//! Protocol version 1 messages.
//!
//! # Compatibility rules
//!
//! The postcard encoding of an enum is its variant *index* followed by the
//! fields in declaration order, so:
//!
//! * variant order is the wire tag: **new variants are appended only**, never
//!   inserted, reordered or removed;
//! * the fields of an existing variant never change within a protocol
//!   version; a change of layout needs a new [`crate::PROTOCOL_VERSION`];
//! * `ClientMessage::Hello` (tag 0), `ServerMessage::Welcome` (tag 0) and
//!   `ServerMessage::Error` (tag 2) are frozen across *all* versions, so a
//!   client and a server of different versions can still tell each other
//!   that they disagree.

use serde::{Deserialize, Serialize};

use crate::CloseCode;

/// Client → server messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Tag 0. First message on a connection: the version handshake.
    Hello {
        /// The client's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// Free-form client identification, e.g. `pixsim-client 0.1.0`.
        client: String,
    },
    /// Tag 1. Round-trip probe, answered by [`ServerMessage::Pong`].
    Ping {
        /// Echoed back in the pong.
        nonce: u64,
        /// Client clock in microseconds (opaque to the server).
        client_time_us: u64,
    },
    // New variants go here, appended only.
}

impl ClientMessage {
    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::Ping { .. } => "ping",
        }
    }
}

/// Server → client messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// Tag 0. Successful answer to `Hello`.
    Welcome {
        /// The protocol version the server speaks on this connection.
        protocol_version: u16,
        /// Server identification, e.g. `pixsim-server 0.1.0`.
        server_version: String,
        /// Server wall clock, milliseconds since the Unix epoch.
        server_time_ms: u64,
    },
    /// Tag 1. Answer to `Ping`.
    Pong {
        /// The nonce of the ping.
        nonce: u64,
        /// Server wall clock, milliseconds since the Unix epoch.
        server_time_ms: u64,
    },
    /// Tag 2. Something went wrong; a fatal error is followed by a close.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
    // New variants go here, appended only.
}

impl ServerMessage {
    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Error { .. } => "error",
        }
    }
}

/// Error codes carried by [`ServerMessage::Error`], encoded as a `u16`.
///
/// Codes `0..=0xFF` mirror [`CloseCode`] numerically (the error that
/// precedes a close of that code). Unknown codes decode to
/// [`ErrorCode::Other`] so a newer peer never breaks decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
pub enum ErrorCode {
    /// Undecodable or illegal message.
    ProtocolError,
    /// The client's protocol version is not supported.
    VersionMismatch,
    /// Frame above the maximum length.
    FrameTooLarge,
    /// Authentication required or failed.
    Unauthenticated,
    /// The server is shutting down.
    ServerShutdown,
    /// The server is full.
    ServerFull,
    /// Internal server error.
    Internal,
    /// A code this version does not know.
    Other(u16),
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> u16 {
        match code {
            ErrorCode::ProtocolError => CloseCode::ProtocolError.as_u32() as u16,
            ErrorCode::VersionMismatch => CloseCode::VersionMismatch.as_u32() as u16,
            ErrorCode::FrameTooLarge => CloseCode::FrameTooLarge.as_u32() as u16,
            ErrorCode::Unauthenticated => CloseCode::Unauthenticated.as_u32() as u16,
            ErrorCode::ServerShutdown => CloseCode::ServerShutdown.as_u32() as u16,
            ErrorCode::ServerFull => CloseCode::ServerFull.as_u32() as u16,
            ErrorCode::Internal => CloseCode::InternalError.as_u32() as u16,
            ErrorCode::Other(other) => other,
        }
    }
}

impl From<u16> for ErrorCode {
    fn from(value: u16) -> ErrorCode {
        match CloseCode::from_u32(u32::from(value)) {
            Some(CloseCode::ProtocolError) => ErrorCode::ProtocolError,
            Some(CloseCode::VersionMismatch) => ErrorCode::VersionMismatch,
            Some(CloseCode::FrameTooLarge) => ErrorCode::FrameTooLarge,
            Some(CloseCode::Unauthenticated) => ErrorCode::Unauthenticated,
            Some(CloseCode::ServerShutdown) => ErrorCode::ServerShutdown,
            Some(CloseCode::ServerFull) => ErrorCode::ServerFull,
            Some(CloseCode::InternalError) => ErrorCode::Internal,
            _ => ErrorCode::Other(value),
        }
    }
}

impl From<CloseCode> for ErrorCode {
    fn from(code: CloseCode) -> ErrorCode {
        ErrorCode::from(code.as_u32() as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_u16_round_trip() {
        for v in 0..=300u16 {
            assert_eq!(u16::from(ErrorCode::from(v)), v);
        }
        assert_eq!(
            ErrorCode::from(CloseCode::VersionMismatch),
            ErrorCode::VersionMismatch
        );
    }

    /// Pins the tags of the frozen handshake messages.
    #[test]
    fn frozen_wire_tags() {
        let hello = ClientMessage::Hello {
            protocol_version: 1,
            client: "c".into(),
        };
        assert_eq!(
            postcard::to_stdvec(&hello).unwrap_or_default(),
            vec![0, 1, 1, b'c']
        );
        let err = ServerMessage::Error {
            code: ErrorCode::VersionMismatch,
            message: String::new(),
        };
        assert_eq!(postcard::to_stdvec(&err).unwrap_or_default(), vec![2, 2, 0]);
        let welcome = ServerMessage::Welcome {
            protocol_version: 1,
            server_version: String::new(),
            server_time_ms: 300,
        };
        assert_eq!(
            postcard::to_stdvec(&welcome).unwrap_or_default(),
            vec![0, 1, 0, 0xAC, 0x02]
        );
    }
}
