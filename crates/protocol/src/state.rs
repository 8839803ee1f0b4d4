//! Per-connection state machine: which client message is legal when.
//!
//! ```text
//!   Handshake --Hello(ok)--> AwaitingAuth --(auth, later)--> Authenticated --(join, later)--> InSession
//! ```
//!
//! | message          | Handshake | AwaitingAuth    | Authenticated | InSession |
//! |------------------|-----------|-----------------|---------------|-----------|
//! | Hello            | ok        | protocol error  | protocol error| protocol error |
//! | Ping, Heartbeat  | protocol error | ok         | ok            | ok        |
//! | Authenticate     | protocol error | ok         | protocol error| protocol error |
//! | Create/JoinSession | protocol error | unauthenticated | ok     | ok (switches session) |
//! | Command          | protocol error | unauthenticated | protocol error | ok |
//!
//! Datagrams ([`ClientDatagram`]) are legal in every state after the
//! handshake ([`verify_datagram`]).
//!
//! Transitions that depend on the server's answer (authentication, joining)
//! are not made by [`ConnState::apply`]: it leaves the state as is and the
//! server moves the connection on once the answer is known.

use crate::v2::{ClientDatagram, ClientMessage};
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
            ClientMessage::Ping { .. }
            | ClientMessage::Heartbeat { .. }
            | ClientMessage::Authenticate { .. }
            | ClientMessage::CreateSession { .. }
            | ClientMessage::JoinSession { .. }
            | ClientMessage::Command { .. } => self,
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
        (ClientMessage::Ping { .. } | ClientMessage::Heartbeat { .. }, _) => Ok(()),
        (ClientMessage::Authenticate { .. }, AwaitingAuth) => Ok(()),
        (ClientMessage::Authenticate { .. }, _) => Err(CloseCode::ProtocolError),
        (_, AwaitingAuth) => Err(CloseCode::Unauthenticated),
        (ClientMessage::CreateSession { .. } | ClientMessage::JoinSession { .. }, _) => Ok(()),
        (ClientMessage::Command { .. }, InSession) => Ok(()),
        (ClientMessage::Command { .. }, Authenticated) => Err(CloseCode::ProtocolError),
    }
}

/// Whether the datagram `msg` is legal in `state`: any state once the version
/// handshake is done; before it, a protocol error.
pub fn verify_datagram(state: ConnState, msg: &ClientDatagram) -> Result<(), CloseCode> {
    match (msg, state) {
        (_, ConnState::Handshake) => Err(CloseCode::ProtocolError),
        (ClientDatagram::TimeSyncRequest { .. }, _) => Ok(()),
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
    fn auth_and_session_states() {
        use crate::v2::GameCommand;
        let auth = ClientMessage::Authenticate { token: "t".into() };
        let create = ClientMessage::CreateSession {
            scene: None,
            world: None,
        };
        let join = ClientMessage::JoinSession {
            session_id: uuid::Uuid::nil(),
            last_seq: None,
        };
        let cmd = ClientMessage::Command {
            request_id: 1,
            command: GameCommand::Leave,
        };
        let hb = ClientMessage::Heartbeat { client_time_ms: 0 };
        use ConnState::*;
        for m in [&auth, &create, &join, &cmd, &hb] {
            assert_eq!(verify(Handshake, m), Err(CloseCode::ProtocolError));
        }
        assert_eq!(AwaitingAuth.apply(&auth), Ok(AwaitingAuth));
        assert_eq!(
            verify(AwaitingAuth, &create),
            Err(CloseCode::Unauthenticated)
        );
        assert_eq!(verify(AwaitingAuth, &join), Err(CloseCode::Unauthenticated));
        assert_eq!(verify(AwaitingAuth, &cmd), Err(CloseCode::Unauthenticated));
        assert_eq!(verify(AwaitingAuth, &hb), Ok(()));
        assert_eq!(verify(Authenticated, &auth), Err(CloseCode::ProtocolError));
        assert_eq!(verify(Authenticated, &create), Ok(()));
        assert_eq!(verify(Authenticated, &join), Ok(()));
        assert_eq!(verify(Authenticated, &cmd), Err(CloseCode::ProtocolError));
        assert_eq!(verify(InSession, &cmd), Ok(()));
        assert_eq!(verify(InSession, &join), Ok(()));
        assert_eq!(verify(InSession, &auth), Err(CloseCode::ProtocolError));
    }

    #[test]
    fn datagrams_only_after_the_handshake() {
        let ts = ClientDatagram::TimeSyncRequest { client_send_us: 1 };
        assert_eq!(
            verify_datagram(ConnState::Handshake, &ts),
            Err(CloseCode::ProtocolError)
        );
        for st in [
            ConnState::AwaitingAuth,
            ConnState::Authenticated,
            ConnState::InSession,
        ] {
            assert_eq!(verify_datagram(st, &ts), Ok(()));
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
