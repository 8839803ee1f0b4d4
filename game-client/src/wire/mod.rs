//! The transports a [`Client`](crate::Client) speaks the game channel over, behind
//! one small interface ([`Wire`]: send a message, receive the next one, learn how the
//! connection ended, close it with a PixSim close code):
//!
//! - `quic`: raw QUIC, one length-prefixed stream and time-sync datagrams;
//! - `ws`: WebSocket, binary (`pixsim.v2`) or JSON (`pixsim.v2.json`) messages;
//! - `framed`: the length-prefixed decoding QUIC and WebTransport share.
//!
//! [`Transport`] is the user's choice (`--transport`), [`Target`] where and how to
//! connect with it.

mod framed;
pub(crate) mod quic;
pub(crate) mod ws;

use std::net::SocketAddr;

use protocol::CloseCode;
use protocol::v2::{ClientMessage, ServerMessage};

pub use ws::{WS_PATH, WsEncoding, websocket_url, ws_close_code};

use crate::error::ClientError;
use crate::tls::Trust;

/// The transports of the game channel, as named on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Transport {
    /// Raw QUIC (`--server`, trusted by `--fingerprint`/`--cert`).
    #[default]
    #[value(name = "quic")]
    Quic,
    /// WebSocket on the HTTP origin, binary messages (`pixsim.v2`).
    #[value(name = "websocket")]
    WebSocket,
    /// WebSocket on the HTTP origin, JSON text messages (`pixsim.v2.json`).
    #[value(name = "websocket-json")]
    WebSocketJson,
}

impl Transport {
    /// Every transport, in a fixed order.
    pub const ALL: [Transport; 3] = [
        Transport::Quic,
        Transport::WebSocket,
        Transport::WebSocketJson,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::WebSocket => "websocket",
            Transport::WebSocketJson => "websocket-json",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transport::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Transport::ALL.iter().map(|t| t.name()).collect();
                format!("unknown transport {s:?}; one of {}", names.join(", "))
            })
    }
}

/// Where and how to reach the game channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Raw QUIC at `addr`.
    Quic {
        /// UDP address.
        addr: SocketAddr,
        /// TLS server name (SNI; checked with [`Trust::CertFile`]).
        server_name: String,
        /// Which certificate to trust.
        trust: Trust,
    },
    /// WebSocket at `url` (`ws://host:port/api/v1/game/ws`).
    WebSocket {
        /// The socket's URL.
        url: String,
        /// The subprotocol and encoding.
        encoding: WsEncoding,
    },
}

impl Target {
    /// The WebSocket target on the HTTP origin `http` (e.g. `http://127.0.0.1:8080`).
    pub fn websocket(http: &str, encoding: WsEncoding) -> Result<Target, ClientError> {
        Ok(Target::WebSocket {
            url: websocket_url(http)?,
            encoding,
        })
    }

    /// The transport this target uses.
    pub fn transport(&self) -> Transport {
        match self {
            Target::Quic { .. } => Transport::Quic,
            Target::WebSocket {
                encoding: WsEncoding::Binary,
                ..
            } => Transport::WebSocket,
            Target::WebSocket {
                encoding: WsEncoding::Json,
                ..
            } => Transport::WebSocketJson,
        }
    }
}

/// One connection's transport.
pub(crate) enum Wire {
    Quic(quic::QuicWire),
    WebSocket(ws::WsWire),
}

impl Wire {
    pub(crate) fn remote_addr(&self) -> SocketAddr {
        match self {
            Wire::Quic(w) => w.remote_addr(),
            Wire::WebSocket(w) => w.remote_addr(),
        }
    }

    pub(crate) fn transport(&self) -> Transport {
        match self {
            Wire::Quic(_) => Transport::Quic,
            Wire::WebSocket(w) => match w.encoding() {
                WsEncoding::Binary => Transport::WebSocket,
                WsEncoding::Json => Transport::WebSocketJson,
            },
        }
    }

    /// The QUIC connection underneath, if there is one.
    pub(crate) fn quic_connection(&self) -> Option<&quinn::Connection> {
        match self {
            Wire::Quic(w) => Some(&w.conn),
            Wire::WebSocket(_) => None,
        }
    }

    pub(crate) async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        match self {
            Wire::Quic(w) => w.send(msg).await,
            Wire::WebSocket(w) => w.send(msg).await,
        }
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match self {
            Wire::Quic(w) => w.send_raw(bytes).await,
            Wire::WebSocket(w) => w.send_raw(bytes).await,
        }
    }

    /// The next server message; cancel-safe (used in `select!` loops).
    pub(crate) async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        match self {
            Wire::Quic(w) => w.recv().await,
            Wire::WebSocket(w) => w.recv().await,
        }
    }

    pub(crate) async fn closed(&self) -> ClientError {
        match self {
            Wire::Quic(w) => w.closed().await,
            Wire::WebSocket(w) => w.closed().await,
        }
    }

    pub(crate) async fn close(self, code: CloseCode) {
        match self {
            Wire::Quic(w) => w.close(code).await,
            Wire::WebSocket(w) => w.close(code).await,
        }
    }
}
