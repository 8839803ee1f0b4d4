//! [`WtWire`]: the game channel over WebTransport (HTTP/3): a session at
//! `https://host:port/game`, the server pinned by the certificate hashes it publishes
//! (`GET /api/v1/game/webtransport`, as a browser's `serverCertificateHashes`), and one
//! client-opened bidirectional stream carrying the QUIC framing (length-prefixed
//! postcard payloads). The server closes the session with the PixSim close code as its
//! error code. No datagrams: the clock is synced with pings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::v2::{ClientMessage, ServerMessage};
use protocol::{CloseCode, encode_frame};
use web_transport_quinn::{SessionError, WebTransportError};

use super::framed::Framed;
use crate::error::ClientError;
use crate::tls::{self, TlsError};
use crate::transport::{CLIENT_IDLE_TIMEOUT, CLIENT_KEEP_ALIVE};

/// One WebTransport session and its game stream.
pub(crate) struct WtWire {
    /// The endpoint is this session's own (not shared): closing waits for it.
    own_endpoint: Option<quinn::Endpoint>,
    session: web_transport_quinn::Session,
    send: web_transport_quinn::SendStream,
    recv: web_transport_quinn::RecvStream,
    framed: Framed,
    remote: SocketAddr,
}

/// The quinn client configuration of a WebTransport session: HTTP/3's ALPN, the
/// server pinned by `hashes`, keep-alive and idle timeout as on raw QUIC.
fn client_config(hashes: Vec<[u8; 32]>) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = tls::rustls_config_pinned(hashes)?;
    tls.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    let idle = quinn::IdleTimeout::try_from(CLIENT_IDLE_TIMEOUT).map_err(|_| {
        TlsError::Config(format!("idle timeout {CLIENT_IDLE_TIMEOUT:?} out of range"))
    })?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(CLIENT_KEEP_ALIVE))
        .max_idle_timeout(Some(idle));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The UDP address a client endpoint binds to reach `url` (any port, the URL's
/// address family: loopback for a loopback host, else unspecified).
pub fn local_addr_for(url: &url::Url) -> SocketAddr {
    match url.host() {
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
        Some(url::Host::Ipv6(_)) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        Some(url::Host::Ipv4(_) | url::Host::Domain(_)) | None => {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        }
    }
}

impl WtWire {
    /// Opens a session at `url` trusting the certificates of `hashes` (through
    /// `endpoint` when given, else one of its own) and its game stream, within
    /// `timeout`.
    pub(crate) async fn connect(
        url: &str,
        hashes: &[[u8; 32]],
        endpoint: Option<quinn::Endpoint>,
        timeout: Duration,
    ) -> Result<WtWire, ClientError> {
        let parsed = url::Url::parse(url).map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
        let config = client_config(hashes.to_vec())?;
        let (endpoint, own) = match endpoint {
            Some(e) => (e, false),
            None => (quinn::Endpoint::client(local_addr_for(&parsed))?, true),
        };
        let client = web_transport_quinn::Client::new(endpoint.clone(), config);
        let session = match tokio::time::timeout(timeout, client.connect(parsed)).await {
            Err(_) => return Err(ClientError::Timeout(timeout)),
            Ok(Ok(session)) => session,
            Ok(Err(e)) => return Err(connect_error(e)),
        };
        let (send, recv) = session.open_bi().await.map_err(session_error)?;
        let remote = session.remote_address();
        Ok(WtWire {
            own_endpoint: own.then_some(endpoint),
            session,
            send,
            recv,
            framed: Framed::new(),
            remote,
        })
    }

    pub(crate) fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    pub(crate) async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let mut frame = Vec::new();
        encode_frame(msg, &mut frame)?;
        self.send_raw(&frame).await
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match self.send.write_all(bytes).await {
            Ok(()) => Ok(()),
            Err(web_transport_quinn::WriteError::SessionError(e)) => Err(session_error(e)),
            Err(other) => Err(ClientError::Io(std::io::Error::other(other))),
        }
    }

    /// The next server message (cancel-safe).
    pub(crate) async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        loop {
            if let Some(msg) = self.framed.pop() {
                return Ok(msg);
            }
            let read = match self.recv.read(&mut self.framed.buf).await {
                Ok(read) => read,
                Err(web_transport_quinn::ReadError::SessionError(e)) => {
                    return Err(session_error(e));
                }
                Err(other) => return Err(ClientError::Io(std::io::Error::other(other))),
            };
            let Some(n) = read else {
                // The server finished its side; the session's close usually follows.
                return Err(
                    match tokio::time::timeout(Duration::from_secs(1), self.session.closed()).await
                    {
                        Ok(e) => session_error(e),
                        Err(_) => ClientError::StreamEnded,
                    },
                );
            };
            self.framed.feed(n)?;
        }
    }

    pub(crate) async fn closed(&self) -> ClientError {
        session_error(self.session.closed().await)
    }

    pub(crate) async fn close(mut self, code: CloseCode) {
        let _ = self.send.finish();
        self.session.close(code.as_u32(), code.reason().as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(1), self.session.closed()).await;
        if let Some(endpoint) = self.own_endpoint {
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        }
    }
}

/// A session error as the client's: a session the server closed with a PixSim close
/// code is [`ClientError::Closed`].
fn session_error(e: SessionError) -> ClientError {
    if let SessionError::WebTransportError(WebTransportError::Closed(code, reason)) = &e
        && let Some(code) = CloseCode::from_u32(*code)
    {
        return ClientError::Closed {
            code,
            reason: reason.clone(),
        };
    }
    ClientError::WebTransport(Box::new(e))
}

/// A failed session setup; a certificate not pinned is
/// [`ClientError::UntrustedCertificate`].
fn connect_error(e: web_transport_quinn::ClientError) -> ClientError {
    if let web_transport_quinn::ClientError::Connection(quinn::ConnectionError::TransportError(t)) =
        &e
        && t.reason.contains("invalid peer certificate")
    {
        return ClientError::UntrustedCertificate(t.reason.clone());
    }
    ClientError::WebTransportConnect(Box::new(e))
}
