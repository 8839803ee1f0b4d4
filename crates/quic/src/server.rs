//! The endpoint: binding (certificate, transport limits), the accept loop and the
//! graceful shutdown. What it shares with the connection tasks is a
//! [`channel::Channel`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use channel::{BasicHandler, Channel, ConnectionHandler};
use protocol::CloseCode;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::conn::{DATAGRAM_RECEIVE_BUFFER, serve};
use crate::{QuicConfig, QuicError, QuicStats, cert, idle};

/// A bound QUIC endpoint, ready to [`run`](QuicServer::run).
pub struct QuicServer {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    fingerprint: String,
    cert_source: cert::CertSource,
    cfg: QuicConfig,
    stats: QuicStats,
    handler: Arc<dyn ConnectionHandler>,
}

impl std::fmt::Debug for QuicServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicServer")
            .field("local_addr", &self.local_addr)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl QuicServer {
    /// Loads or generates the certificate and binds the UDP socket. Must be
    /// called inside a tokio runtime. Logs the certificate fingerprint.
    pub fn bind(cfg: QuicConfig) -> Result<Self, QuicError> {
        if cfg.max_connections == 0 {
            return Err(QuicError::Config("max_connections must be > 0".into()));
        }
        if cfg.outbox_capacity == 0 {
            return Err(QuicError::Config("outbox_capacity must be > 0".into()));
        }
        let material = cert::load_or_generate(
            cfg.cert_path.as_deref(),
            cfg.key_path.as_deref(),
            &cfg.state_dir,
            &cfg.server_names,
        )?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(material.chain, material.key)?;
        tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| QuicError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(idle(cfg.idle_timeout + Duration::from_secs(5))?))
            .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1))
            .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
            .datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER));
        server_config.transport_config(Arc::new(transport));

        let endpoint =
            quinn::Endpoint::server(server_config, cfg.bind).map_err(|source| QuicError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let local_addr = endpoint.local_addr().map_err(|source| QuicError::Bind {
            addr: cfg.bind,
            source,
        })?;
        match &material.source {
            cert::CertSource::Configured => tracing::info!(
                %local_addr,
                fingerprint = %material.fingerprint,
                "QUIC endpoint bound with configured certificate"
            ),
            cert::CertSource::Generated(dir) | cert::CertSource::Reused(dir) => tracing::info!(
                %local_addr,
                fingerprint = %material.fingerprint,
                dir = %dir.display(),
                generated = matches!(material.source, cert::CertSource::Generated(_)),
                "QUIC endpoint bound with self-signed certificate"
            ),
        }
        Ok(QuicServer {
            endpoint,
            local_addr,
            fingerprint: material.fingerprint,
            cert_source: material.source,
            cfg,
            stats: QuicStats::default(),
            handler: Arc::new(BasicHandler),
        })
    }

    /// Replaces the connection handler (default: [`BasicHandler`]).
    pub fn with_handler(mut self, handler: Arc<dyn ConnectionHandler>) -> Self {
        self.handler = handler;
        self
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 of the leaf certificate, `aa:bb:...` lowercase.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Where the certificate came from.
    pub fn cert_source(&self) -> &cert::CertSource {
        &self.cert_source
    }

    /// Connections currently established.
    pub fn connections(&self) -> usize {
        self.stats.connections()
    }

    /// A cloneable handle on the live counters, valid after `run` starts.
    pub fn stats(&self) -> QuicStats {
        self.stats.clone()
    }

    /// Accepts and serves connections until `shutdown` completes, then
    /// stops accepting, closes every connection with
    /// [`CloseCode::ServerShutdown`] and waits (bounded by
    /// `shutdown_timeout`) for the closes to be delivered.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), QuicError> {
        let QuicServer {
            endpoint,
            local_addr,
            cfg,
            stats,
            handler,
            ..
        } = self;
        let shutdown_timeout = cfg.shutdown_timeout;
        let channel = Channel::new(cfg.channel(), handler, stats)
            .map_err(|e| QuicError::Config(e.to_string()))?;
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        tracing::info!(%local_addr, "QUIC endpoint accepting connections");

        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    log_join(done, "QUIC");
                }
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let id = channel.next_id();
                    let span = tracing::info_span!("quic_conn", id, remote = %incoming.remote_address());
                    tasks.spawn(tracing::Instrument::instrument(
                        serve(incoming, id, channel.clone()),
                        span,
                    ));
                }
            }
        }

        drain_endpoint(&endpoint, &channel, tasks, shutdown_timeout, "QUIC").await;
        Ok(())
    }
}

/// The graceful shutdown of a quinn endpoint serving `channel` (the QUIC endpoint's and
/// the WebTransport endpoint's): no new connections, every connection told to close
/// (`ServerShutdown`) and given until `shutdown_timeout` to finish, then whatever is left
/// closed at once. `what` names the endpoint in the log.
pub async fn drain_endpoint(
    endpoint: &quinn::Endpoint,
    channel: &Channel,
    mut tasks: JoinSet<()>,
    shutdown_timeout: Duration,
    what: &'static str,
) {
    tracing::info!(
        connections = channel.stats().connections(),
        "{what} endpoint shutting down"
    );
    endpoint.set_server_config(None);
    channel.stop();
    let deadline = Instant::now() + shutdown_timeout;
    let drained = timeout_at(deadline, async {
        while let Some(done) = tasks.join_next().await {
            log_join(done, what);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "{what} connections still open after grace period"
        );
    }
    // Backstop: anything still open (or mid-handshake) is closed now.
    endpoint.close(
        crate::close_varint(CloseCode::ServerShutdown),
        CloseCode::ServerShutdown.reason().as_bytes(),
    );
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let remaining = deadline.saturating_duration_since(Instant::now());
    if timeout(
        remaining.max(Duration::from_millis(100)),
        endpoint.wait_idle(),
    )
    .await
    .is_err()
    {
        tracing::warn!("{what} endpoint did not become idle in time");
    }
    tracing::info!("{what} endpoint stopped");
}

/// Logs a connection task of the `what` endpoint that panicked.
pub fn log_join(done: Result<(), tokio::task::JoinError>, what: &str) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "{what} connection task panicked");
    }
}
