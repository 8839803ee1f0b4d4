//! Per-connection state machine: which client message is legal when.
//!
//! ```text
//!   Handshake --Hello(ok)--> AwaitingAuth --(auth, later)--> Authenticated --(join, later)--> InSession
//! ```
//!
//! Today only the version handshake exists: after a good `Hello` the
//! connection waits in [`ConnState::AwaitingAuth`], where `Ping` is legal.
//! Authentication and sessions are added by appending messages to
//! [`ClientMessage`] and arms to [`verify`] / [`ConnState::apply`].

use crate::v1::ClientMessage;
use crate::{CloseCode, PROTOCOL_VERSION};

/// Where a connection is in its lifecycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Waiting for `Hello`.
    #[default]
    Handshake,
    /// Version agreed, not authenticated yet.
    AwaitingAuth,
    /// Authenticated, not in a game session.
    Authenticated,
    /// Playing in a session.
    InSession,
}

impl ConnState {
    /// True once the version handshake is done.
    pub fn is_handshaken(self) -> bool {
        self != ConnState::Handshake
    }

    /// True once the connection is authenticated.
    pub fn is_authenticated(self) -> bool {
        matches!(self, ConnState::Authenticated | ConnState::InSession)
    }

    /// Checks `msg` against this state ([`verify`]) and returns the state
    /// after it. A `Hello` with another protocol version is rejected with
    /// [`CloseCode::VersionMismatch`].
    pub fn apply(self, msg: &ClientMessage) -> Result<ConnState, CloseCode> {
        verify(self, msg)?;
        Ok(match msg {
            ClientMessage::Hello {
                protocol_version, ..
            } => {
                if *protocol_version != PROTOCOL_VERSION {
                    return Err(CloseCode::VersionMismatch);
                }
                ConnState::AwaitingAuth
            }
            ClientMessage::Ping { .. } => self,
        })
    }
}

/// Whether `msg` is legal in `state`; the error is the close code to use.
pub fn verify(state: ConnState, msg: &ClientMessage) -> Result<(), CloseCode> {
    use ConnState::*;
    match (msg, state) {
        (ClientMessage::Hello { .. }, Handshake) => Ok(()),
        (ClientMessage::Hello { .. }, _) => Err(CloseCode::ProtocolError),
        (_, Handshake) => Err(CloseCode::ProtocolError),
        (ClientMessage::Ping { .. }, AwaitingAuth | Authenticated | InSession) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(v: u16) -> ClientMessage {
        ClientMessage::Hello {
            protocol_version: v,
            client: "t".into(),
        }
    }
    const PING: ClientMessage = ClientMessage::Ping {
        nonce: 1,
        client_time_us: 0,
    };

    #[test]
    fn handshake_then_ping() {
        let s = ConnState::default();
        assert_eq!(s.apply(&PING), Err(CloseCode::ProtocolError));
        let s = s.apply(&hello(PROTOCOL_VERSION));
        assert_eq!(s, Ok(ConnState::AwaitingAuth));
        let s = ConnState::AwaitingAuth;
        assert_eq!(s.apply(&PING), Ok(s));
        assert_eq!(
            s.apply(&hello(PROTOCOL_VERSION)),
            Err(CloseCode::ProtocolError)
        );
        for st in [ConnState::Authenticated, ConnState::InSession] {
            assert_eq!(verify(st, &PING), Ok(()));
            assert_eq!(verify(st, &hello(1)), Err(CloseCode::ProtocolError));
        }
    }

    #[test]
    fn version_mismatch() {
        assert_eq!(
            ConnState::Handshake.apply(&hello(PROTOCOL_VERSION + 1)),
            Err(CloseCode::VersionMismatch)
        );
        assert_eq!(
            ConnState::Handshake.apply(&hello(0)),
            Err(CloseCode::VersionMismatch)
        );
    }
}
