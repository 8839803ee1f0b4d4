//! [`Client`]: one game-channel connection to a PixSim server, over any transport
//! ([`Target`]: QUIC, WebSocket, WebTransport): the version handshake, pings, authentication,
//! sessions (create, join with `last_seq`), commands and the event stream.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::v2::{ClientMessage, ErrorCode, ServerMessage};
use protocol::{CloseCode, PROTOCOL_VERSION};

use crate::error::ClientError;
use crate::tls::Trust;
use crate::wire::quic::QuicWire;
use crate::wire::ws::WsWire;
use crate::wire::wt::WtWire;
use crate::wire::{Target, Transport, Wire};

/// Connection options beyond the address and trust.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Sent in `Hello`.
    pub client_name: String,
    /// Protocol version sent in `Hello` (tests may lie).
    pub protocol_version: u16,
    /// Bound on connecting + handshaking and on each request.
    pub timeout: Duration,
    /// QUIC and WebTransport: connect through this endpoint (one UDP socket shared
    /// by many connections, e.g. load bots) instead of a new one per connection.
    pub endpoint: Option<quinn::Endpoint>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            client_name: format!("pixsim-client {}", env!("CARGO_PKG_VERSION")),
            protocol_version: PROTOCOL_VERSION,
            timeout: Duration::from_secs(10),
            endpoint: None,
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The answer to a create or join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub session_id: uuid::Uuid,
    pub scene: Option<String>,
    /// Seq of the next event the session will produce.
    pub next_seq: u64,
    pub ended: bool,
    /// The session's state as of `next_seq`.
    pub snapshot: protocol::v2::Snapshot,
}

/// A connected, handshaken client.
pub struct Client {
    pub(crate) wire: Wire,
    /// Messages read while waiting for something else (a time-sync pong), handed out
    /// first by [`Client::recv`].
    pending: VecDeque<ServerMessage>,
    server_version: String,
    protocol_version: u16,
    server_time_ms: u64,
    pub(crate) next_nonce: u64,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("remote", &self.wire.remote_addr())
            .field("server_version", &self.server_version)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects over QUIC to `addr`, verifies the server per `trust`, and performs
    /// the version handshake. `server_name` is the TLS SNI / name checked by
    /// [`Trust::CertFile`].
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        trust: Trust,
    ) -> Result<Client, ClientError> {
        Self::connect_with(addr, server_name, trust, ConnectOptions::default()).await
    }

    /// [`Client::connect`] with options.
    pub async fn connect_with(
        addr: SocketAddr,
        server_name: &str,
        trust: Trust,
        opts: ConnectOptions,
    ) -> Result<Client, ClientError> {
        let target = Target::Quic {
            addr,
            server_name: server_name.to_owned(),
            trust,
        };
        Self::connect_to(&target, opts).await
    }

    /// Connects to `target` over its transport and performs the version handshake.
    pub async fn connect_to(target: &Target, opts: ConnectOptions) -> Result<Client, ClientError> {
        let timeout = opts.timeout;
        let wire = match target {
            Target::Quic {
                addr,
                server_name,
                trust,
            } => Wire::Quic(
                QuicWire::connect(*addr, server_name, trust, opts.endpoint, timeout).await?,
            ),
            Target::WebSocket { url, encoding } => {
                Wire::WebSocket(WsWire::connect(url, *encoding, timeout).await?)
            }
            Target::WebTransport {
                url,
                certificate_hashes,
            } => Wire::WebTransport(Box::new(
                WtWire::connect(url, certificate_hashes, opts.endpoint, timeout).await?,
            )),
        };
        let mut client = Client {
            wire,
            pending: VecDeque::new(),
            server_version: String::new(),
            protocol_version: 0,
            server_time_ms: 0,
            next_nonce: 1,
            timeout,
        };
        client
            .send(&ClientMessage::Hello {
                protocol_version: opts.protocol_version,
                client: opts.client_name,
            })
            .await?;
        match client.recv_timed().await? {
            ServerMessage::Welcome {
                protocol_version,
                server_version,
                server_time_ms,
            } => {
                client.protocol_version = protocol_version;
                client.server_version = server_version;
                client.server_time_ms = server_time_ms;
                Ok(client)
            }
            ServerMessage::Error { code, message } => Err(client.rejected(code, message).await),
            other => Err(ClientError::Unexpected(other.name())),
        }
    }

    /// Server identification from `Welcome`.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// Protocol version from `Welcome`.
    pub fn protocol_version(&self) -> u16 {
        self.protocol_version
    }

    /// Server wall clock (ms since the epoch) at `Welcome`.
    pub fn server_time_ms(&self) -> u64 {
        self.server_time_ms
    }

    /// The server's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.wire.remote_addr()
    }

    /// The transport this client speaks.
    pub fn transport(&self) -> Transport {
        self.wire.transport()
    }

    /// The underlying QUIC connection (for stats, tests), if the transport has one.
    pub fn quic_connection(&self) -> Option<&quinn::Connection> {
        self.wire.quic_connection()
    }

    /// The underlying QUIC connection (for stats, tests).
    ///
    /// # Panics
    /// On a transport without one (WebSocket): see [`Client::quic_connection`].
    pub fn connection(&self) -> &quinn::Connection {
        match self.wire.quic_connection() {
            Some(conn) => conn,
            None => panic!(
                "connection(): a {} client has no QUIC connection",
                self.transport()
            ),
        }
    }

    /// Sends a ping and waits for its pong; returns the round-trip time.
    pub async fn ping(&mut self) -> Result<Duration, ClientError> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let start = Instant::now();
        self.send(&ClientMessage::Ping {
            nonce,
            client_time_us: now_us(),
        })
        .await?;
        loop {
            match self.recv_timed().await? {
                ServerMessage::Pong { nonce: n, .. } if n == nonce => return Ok(start.elapsed()),
                ServerMessage::Pong { .. } => continue,
                ServerMessage::Error { code, message } => {
                    return Err(self.rejected(code, message).await);
                }
                other => return Err(ClientError::Unexpected(other.name())),
            }
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        self.wire.send(msg).await
    }

    /// Receives the next server message (cancel-safe: usable in `select!`).
    pub async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        if let Some(msg) = self.pending.pop_front() {
            return Ok(msg);
        }
        self.wire.recv().await
    }

    /// Keeps `msg` for the next [`Client::recv`] (read while waiting for another).
    pub(crate) fn defer(&mut self, msg: ServerMessage) {
        self.pending.push_back(msg);
    }

    async fn recv_timed(&mut self) -> Result<ServerMessage, ClientError> {
        let t = self.timeout;
        tokio::time::timeout(t, self.recv())
            .await
            .map_err(|_| ClientError::Timeout(t))?
    }

    /// Builds the error for a server `Error`, waiting briefly for the close
    /// that follows it to learn its code.
    pub(crate) async fn rejected(&self, code: ErrorCode, message: String) -> ClientError {
        let close = tokio::time::timeout(Duration::from_secs(2), self.wire.closed())
            .await
            .ok()
            .and_then(|e| e.close_code());
        ClientError::Rejected {
            code,
            message,
            close,
        }
    }

    /// Authenticates with a JWT from the REST login; returns the user id.
    pub async fn authenticate(&mut self, token: &str) -> Result<uuid::Uuid, ClientError> {
        self.send(&ClientMessage::Authenticate {
            token: token.to_owned(),
        })
        .await?;
        loop {
            match self.recv_timed().await? {
                ServerMessage::Authenticated { user_id } => return Ok(user_id),
                ServerMessage::Error { code, message } => {
                    return Err(self.rejected(code, message).await);
                }
                ServerMessage::Pong { .. } | ServerMessage::Heartbeat { .. } => continue,
                other => return Err(ClientError::Unexpected(other.name())),
            }
        }
    }

    /// Creates a session (the world's start scene when `scene` is `None`) and joins it.
    pub async fn create_session(&mut self, scene: Option<&str>) -> Result<Joined, ClientError> {
        self.send(&ClientMessage::CreateSession {
            scene: scene.map(str::to_owned),
            world: None,
        })
        .await?;
        self.await_joined().await
    }

    /// Joins one of the caller's sessions; events after `last_seq` are resent.
    pub async fn join_session(
        &mut self,
        session_id: uuid::Uuid,
        last_seq: Option<u64>,
    ) -> Result<Joined, ClientError> {
        self.send(&ClientMessage::JoinSession {
            session_id,
            last_seq,
        })
        .await?;
        self.await_joined().await
    }

    async fn await_joined(&mut self) -> Result<Joined, ClientError> {
        loop {
            match self.recv_timed().await? {
                ServerMessage::SessionJoined {
                    session_id,
                    scene,
                    next_seq,
                    ended,
                    snapshot,
                } => {
                    return Ok(Joined {
                        session_id,
                        scene,
                        next_seq,
                        ended,
                        snapshot,
                    });
                }
                ServerMessage::Error { code, message } => {
                    // Codes that mirror a close code precede a close; the others
                    // (not found, busy, invalid request) keep the connection.
                    if u16::from(code) < 256 {
                        return Err(self.rejected(code, message).await);
                    }
                    return Err(ClientError::Rejected {
                        code,
                        message,
                        close: None,
                    });
                }
                // Traffic of the session this connection was in before.
                ServerMessage::Pong { .. }
                | ServerMessage::Heartbeat { .. }
                | ServerMessage::Event { .. }
                | ServerMessage::Ack { .. }
                | ServerMessage::Rejected { .. } => continue,
                other => return Err(ClientError::Unexpected(other.name())),
            }
        }
    }

    /// Sends a command for the joined session with `request_id` (answered later by
    /// `Ack` or `Rejected`, after the events it caused).
    pub async fn command(
        &mut self,
        request_id: u64,
        command: protocol::v2::GameCommand,
    ) -> Result<(), ClientError> {
        self.send(&ClientMessage::Command {
            request_id,
            command,
        })
        .await
    }

    /// The next server message within `timeout`.
    pub async fn recv_within(&mut self, timeout: Duration) -> Result<ServerMessage, ClientError> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Writes raw bytes on the stream (tests: malformed frames).
    /// Writes raw bytes (tests: malformed input): on the stream of QUIC, as one
    /// binary message on WebSocket.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.wire.send_raw(bytes).await
    }

    /// Waits until the connection closes and returns why.
    pub async fn closed(&self) -> ClientError {
        self.wire.closed().await
    }

    /// Closes the connection normally and waits (briefly) for the close to
    /// be delivered.
    pub async fn close(self) {
        self.wire.close(CloseCode::Normal).await;
    }
}
