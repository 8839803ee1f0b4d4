//! Connection close codes, sent as the QUIC application error code.

use std::fmt;

/// Why a connection was closed. Sent as the QUIC application error code
/// (a VarInt on the wire); the reason bytes are [`CloseCode::reason`].
///
/// Numeric values are part of the wire protocol: never renumber, only add.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Orderly close, nothing went wrong.
    Normal = 0,
    /// Undecodable frame or a message illegal in the connection state.
    ProtocolError = 1,
    /// The client's protocol version is not supported.
    VersionMismatch = 2,
    /// A frame declared a length above [`crate::MAX_FRAME_LEN`].
    FrameTooLarge = 3,
    /// The message requires an authenticated connection.
    Unauthenticated = 4,
    /// Nothing was received for too long.
    IdleTimeout = 5,
    /// The server is shutting down.
    ServerShutdown = 6,
    /// The peer did not read its messages fast enough.
    SlowConsumer = 7,
    /// The version handshake did not complete in time.
    HandshakeTimeout = 8,
    /// The server has reached its connection limit.
    ServerFull = 9,
    /// An unexpected failure on the closing side.
    InternalError = 10,
    /// Another connection of the same user joined this connection's session and took it
    /// over (the newer connection wins).
    SessionTakenOver = 11,
}

impl CloseCode {
    /// Every code, in numeric order.
    pub const ALL: [CloseCode; 12] = [
        CloseCode::Normal,
        CloseCode::ProtocolError,
        CloseCode::VersionMismatch,
        CloseCode::FrameTooLarge,
        CloseCode::Unauthenticated,
        CloseCode::IdleTimeout,
        CloseCode::ServerShutdown,
        CloseCode::SlowConsumer,
        CloseCode::HandshakeTimeout,
        CloseCode::ServerFull,
        CloseCode::InternalError,
        CloseCode::SessionTakenOver,
    ];

    /// The numeric wire value.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// Parses a wire value; `None` for codes this version does not know.
    pub fn from_u32(value: u32) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.as_u32() == value)
    }

    /// Parses a wire value received as a QUIC VarInt (u64).
    pub fn from_u64(value: u64) -> Option<CloseCode> {
        u32::try_from(value).ok().and_then(CloseCode::from_u32)
    }

    /// Human-readable reason, sent as the QUIC close reason bytes.
    pub const fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "closed",
            CloseCode::ProtocolError => "protocol error",
            CloseCode::VersionMismatch => "unsupported protocol version",
            CloseCode::FrameTooLarge => "frame too large",
            CloseCode::Unauthenticated => "not authenticated",
            CloseCode::IdleTimeout => "idle timeout",
            CloseCode::ServerShutdown => "server shutting down",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::HandshakeTimeout => "handshake timeout",
            CloseCode::ServerFull => "server full",
            CloseCode::InternalError => "internal error",
            CloseCode::SessionTakenOver => "session taken over by another connection",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.as_u32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (i, code) in CloseCode::ALL.into_iter().enumerate() {
            assert_eq!(code.as_u32() as usize, i);
            assert_eq!(CloseCode::from_u32(code.as_u32()), Some(code));
            assert_eq!(CloseCode::from_u64(u64::from(code.as_u32())), Some(code));
            assert!(!code.reason().is_empty());
        }
        assert_eq!(CloseCode::from_u32(9999), None);
        assert_eq!(CloseCode::from_u64(u64::MAX), None);
        assert_eq!(CloseCode::ServerShutdown.reason(), "server shutting down");
    }
}
