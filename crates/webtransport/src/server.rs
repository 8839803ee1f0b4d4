//! The endpoint: binding (TLS with the rotating certificate, HTTP/3 ALPN, transport
//! limits), the accept loop with the rotation timer, and the graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tokio::time::Instant;

use channel::{Channel, ConnectionHandler, ConnectionStats};

use crate::rotation::{CertStore, Resolver, check_period};
use crate::session::serve;
use crate::{SESSION_PATH, WebTransportConfig, WebTransportError};

/// How long after a failed rotation the endpoint tries again.
const ROTATION_RETRY: Duration = Duration::from_secs(60);

/// A bound WebTransport endpoint, ready to [`run`](WebTransportServer::run).
pub struct WebTransportServer {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    certs: Arc<CertStore>,
    cfg: WebTransportConfig,
    channel: Channel,
}

impl std::fmt::Debug for WebTransportServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebTransportServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl WebTransportServer {
    /// Makes the certificates and binds the UDP socket; the game protocol on each
    /// session is `channel`'s driver with `handler`. Must be called inside a tokio
    /// runtime.
    pub fn bind(
        cfg: WebTransportConfig,
        handler: Arc<dyn ConnectionHandler>,
    ) -> Result<Self, WebTransportError> {
        check_period(cfg.rotation)?;
        let channel = Channel::new(cfg.channel(), handler, ConnectionStats::default())
            .map_err(|e| WebTransportError::Config(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = Arc::new(CertStore::new(
            cfg.rotation,
            cfg.server_names.clone(),
            Arc::clone(&provider),
        )?);
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(Arc::clone(&certs))));
        tls.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| {
            WebTransportError::Config(format!("TLS configuration unusable for QUIC: {e}"))
        })?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let quic_idle = cfg.idle_timeout + Duration::from_secs(5);
        let idle = quinn::IdleTimeout::try_from(quic_idle).map_err(|_| {
            WebTransportError::Config(format!("idle timeout {quic_idle:?} out of range"))
        })?;
        let mut transport = quinn::TransportConfig::default();
        // The QUIC idle timeout is above the channel's own, which closes with a reason.
        // Bidirectional: the CONNECT request and the game stream. Unidirectional: the
        // HTTP/3 control stream and the two QPACK streams (and one spare).
        transport
            .max_idle_timeout(Some(idle))
            .max_concurrent_bidi_streams(quinn::VarInt::from_u32(2))
            .max_concurrent_uni_streams(quinn::VarInt::from_u32(4));
        server_config.transport_config(Arc::new(transport));
        let endpoint = quinn::Endpoint::server(server_config, cfg.bind).map_err(|source| {
            WebTransportError::Bind {
                addr: cfg.bind,
                source,
            }
        })?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|source| WebTransportError::Bind {
                addr: cfg.bind,
                source,
            })?;
        tracing::info!(
            %local_addr,
            current = %crate::rotation::hex(&certs.current().sha256()),
            "WebTransport endpoint bound"
        );
        Ok(WebTransportServer {
            endpoint,
            local_addr,
            certs,
            cfg,
            channel,
        })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The certificates (to publish their hashes, or rotate them in tests).
    pub fn certificates(&self) -> Arc<CertStore> {
        Arc::clone(&self.certs)
    }

    /// A cloneable handle on the live counters.
    pub fn stats(&self) -> ConnectionStats {
        self.channel.stats()
    }

    /// Accepts and serves sessions, rotating the certificate when due, until
    /// `shutdown` completes; then stops accepting, tells every session to close
    /// ([`CloseCode::ServerShutdown`]) and waits (bounded by `shutdown_timeout`).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), WebTransportError> {
        let WebTransportServer {
            endpoint,
            local_addr,
            certs,
            cfg,
            channel,
        } = self;
        let mut tasks = JoinSet::new();
        // After a failed rotation: when to try again (the current certificate stays).
        let mut retry_at: Option<Instant> = None;
        tokio::pin!(shutdown);
        tracing::info!(%local_addr, "WebTransport endpoint accepting sessions");
        loop {
            let rotate_at = retry_at.unwrap_or_else(|| {
                let due = certs.next_rotation().duration_since(SystemTime::now());
                Instant::now() + due.unwrap_or(Duration::ZERO)
            });
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(rotate_at) => {
                    retry_at = match certs.rotate_now() {
                        Ok(()) => None,
                        Err(e) => {
                            tracing::error!(error = %e, "WebTransport certificate rotation failed; retrying in a minute");
                            Some(Instant::now() + ROTATION_RETRY)
                        }
                    };
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => quic::log_join(done, "WebTransport"),
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let id = channel.next_id();
                    let span = tracing::info_span!("wt_conn", id, remote = %incoming.remote_address());
                    tasks.spawn(tracing::Instrument::instrument(
                        serve(incoming, channel.clone(), SESSION_PATH),
                        span,
                    ));
                }
            }
        }
        quic::drain_endpoint(
            &endpoint,
            &channel,
            tasks,
            cfg.shutdown_timeout,
            "WebTransport",
        )
        .await;
        Ok(())
    }
}
