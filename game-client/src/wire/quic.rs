//! [`QuicWire`]: the game channel over raw QUIC: one client-opened bidirectional
//! stream of length-prefixed postcard payloads (time sync by datagrams, in
//! [`crate::timesync`]); a close is the connection closed with the PixSim close code
//! as its application error code.

use std::net::SocketAddr;
use std::time::Duration;

use protocol::v2::{ClientMessage, ServerMessage};
use protocol::{CloseCode, encode_frame};

use super::framed::Framed;
use crate::error::ClientError;
use crate::tls::Trust;
use crate::transport::{client_config, close_connection};

/// One QUIC connection and its game stream.
pub(crate) struct QuicWire {
    endpoint: quinn::Endpoint,
    /// The endpoint is this connection's own (not shared): closing waits for it.
    own_endpoint: bool,
    pub(crate) conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    framed: Framed,
}

impl QuicWire {
    /// Connects to `addr` (through `endpoint` when given, else a new one of its own)
    /// and opens the game stream, within `timeout`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        server_name: &str,
        trust: &Trust,
        endpoint: Option<quinn::Endpoint>,
        timeout: Duration,
    ) -> Result<QuicWire, ClientError> {
        let config = client_config(trust)?;
        let local: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let (endpoint, own_endpoint) = match endpoint {
            Some(e) => (e, false),
            None => (quinn::Endpoint::client(local)?, true),
        };
        let connecting = endpoint.connect_with(config, addr, server_name)?;
        let conn = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(ClientError::Timeout(timeout)),
            Ok(Err(quinn::ConnectionError::TransportError(e)))
                if e.reason.contains("invalid peer certificate") =>
            {
                return Err(ClientError::UntrustedCertificate(e.reason));
            }
            Ok(r) => r?,
        };
        let (send, recv) = conn.open_bi().await?;
        Ok(QuicWire {
            endpoint,
            own_endpoint,
            conn,
            send,
            recv,
            framed: Framed::new(),
        })
    }

    pub(crate) fn remote_addr(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    pub(crate) async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let mut frame = Vec::new();
        encode_frame(msg, &mut frame)?;
        self.send_raw(&frame).await
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.send.write_all(bytes).await?;
        Ok(())
    }

    /// The next server message (cancel-safe).
    pub(crate) async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        loop {
            if let Some(msg) = self.framed.pop() {
                return Ok(msg);
            }
            let Some(n) = self.recv.read(&mut self.framed.buf).await? else {
                // The server finished its side; a close usually follows.
                return Err(
                    match tokio::time::timeout(Duration::from_secs(1), self.conn.closed()).await {
                        Ok(e) => e.into(),
                        Err(_) => ClientError::StreamEnded,
                    },
                );
            };
            self.framed.feed(n)?;
        }
    }

    pub(crate) async fn closed(&self) -> ClientError {
        self.conn.closed().await.into()
    }

    pub(crate) async fn close(mut self, code: CloseCode) {
        let _ = self.send.finish();
        close_connection(&self.conn, code);
        if self.own_endpoint {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        }
    }
}
