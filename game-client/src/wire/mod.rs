//! The transports a [`Client`](crate::Client) speaks the game channel over, behind
//! one small interface ([`Wire`]: send a message, receive the next one, learn how the
//! connection ended, close it with a PixSim close code):
//!
//! - `quic`: raw QUIC, one length-prefixed stream and time-sync datagrams;
//! - `ws`: WebSocket, binary (`pixsim.v2`) or JSON (`pixsim.v2.json`) messages;
//! - `wt`: WebTransport, a session pinned by certificate hashes and one stream with
//!   the QUIC framing;
//! - `framed`: the length-prefixed decoding QUIC and WebTransport share.
//!
//! [`Transport`] is the user's choice (`--transport`), [`Target`] where and how to
//! connect with it ([`Target::webtransport`] asks the HTTP origin for the
//! WebTransport URL and certificate hashes).

mod framed;
pub(crate) mod quic;
pub(crate) mod ws;
pub(crate) mod wt;

use std::net::SocketAddr;

use protocol::CloseCode;
use protocol::v2::{ClientMessage, ServerMessage};

pub use ws::{WS_PATH, WsEncoding, websocket_url, ws_close_code};
pub use wt::local_addr_for;

use crate::error::ClientError;
use crate::rest::{Rest, RestError};
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
    /// WebTransport (HTTP/3): the URL and certificate hashes the HTTP origin
    /// publishes (`GET /api/v1/game/webtransport`).
    #[value(name = "webtransport")]
    WebTransport,
}

impl Transport {
    /// Every transport, in a fixed order.
    pub const ALL: [Transport; 4] = [
        Transport::Quic,
        Transport::WebSocket,
        Transport::WebSocketJson,
        Transport::WebTransport,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::WebSocket => "websocket",
            Transport::WebSocketJson => "websocket-json",
            Transport::WebTransport => "webtransport",
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
    /// WebTransport session at `url` (`https://host:port/game`).
    WebTransport {
        /// The session's URL.
        url: String,
        /// SHA-256 of each server certificate to accept (DER).
        certificate_hashes: Vec<[u8; 32]>,
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

    /// The WebTransport target the HTTP origin of `rest` publishes (its URL and
    /// the hashes of the current and next certificates).
    pub async fn webtransport(rest: &Rest) -> Result<Target, RestError> {
        let info = rest.webtransport().await?;
        Ok(Target::WebTransport {
            url: info.url,
            certificate_hashes: info.certificate_hashes,
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
            Target::WebTransport { .. } => Transport::WebTransport,
        }
    }

    /// The UDP address a client endpoint shared by connections to this target binds
    /// (`None`: the transport is not over QUIC).
    pub fn local_udp_addr(&self) -> Result<Option<SocketAddr>, ClientError> {
        match self {
            Target::Quic { addr, .. } => Ok(Some(if addr.is_ipv6() {
                (std::net::Ipv6Addr::LOCALHOST, 0).into()
            } else {
                (std::net::Ipv4Addr::LOCALHOST, 0).into()
            })),
            Target::WebSocket { .. } => Ok(None),
            Target::WebTransport { url, .. } => {
                let url =
                    url::Url::parse(url).map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
                Ok(Some(local_addr_for(&url)))
            }
        }
    }
}

/// One connection's transport.
pub(crate) enum Wire {
    Quic(quic::QuicWire),
    WebSocket(ws::WsWire),
    WebTransport(Box<wt::WtWire>),
}

impl Wire {
    pub(crate) fn remote_addr(&self) -> SocketAddr {
        match self {
            Wire::Quic(w) => w.remote_addr(),
            Wire::WebSocket(w) => w.remote_addr(),
            Wire::WebTransport(w) => w.remote_addr(),
        }
    }

    pub(crate) fn transport(&self) -> Transport {
        match self {
            Wire::Quic(_) => Transport::Quic,
            Wire::WebSocket(w) => match w.encoding() {
                WsEncoding::Binary => Transport::WebSocket,
                WsEncoding::Json => Transport::WebSocketJson,
            },
            Wire::WebTransport(_) => Transport::WebTransport,
        }
    }

    /// The QUIC connection underneath, if there is one.
    pub(crate) fn quic_connection(&self) -> Option<&quinn::Connection> {
        match self {
            Wire::Quic(w) => Some(&w.conn),
            // A WebTransport session runs on a QUIC connection, but the game's
            // datagrams are raw QUIC's only.
            Wire::WebSocket(_) | Wire::WebTransport(_) => None,
        }
    }

    pub(crate) async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        match self {
            Wire::Quic(w) => w.send(msg).await,
            Wire::WebSocket(w) => w.send(msg).await,
            Wire::WebTransport(w) => w.send(msg).await,
        }
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match self {
            Wire::Quic(w) => w.send_raw(bytes).await,
            Wire::WebSocket(w) => w.send_raw(bytes).await,
            Wire::WebTransport(w) => w.send_raw(bytes).await,
        }
    }

    /// The next server message; cancel-safe (used in `select!` loops).
    pub(crate) async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        match self {
            Wire::Quic(w) => w.recv().await,
            Wire::WebSocket(w) => w.recv().await,
            Wire::WebTransport(w) => w.recv().await,
        }
    }

    pub(crate) async fn closed(&self) -> ClientError {
        match self {
            Wire::Quic(w) => w.closed().await,
            Wire::WebSocket(w) => w.closed().await,
            Wire::WebTransport(w) => w.closed().await,
        }
    }

    pub(crate) async fn close(self, code: CloseCode) {
        match self {
            Wire::Quic(w) => w.close(code).await,
            Wire::WebSocket(w) => w.close(code).await,
            Wire::WebTransport(w) => w.close(code).await,
        }
    }
}
