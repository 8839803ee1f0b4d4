//! Composition of the PixSim server: configuration, database (embedded or external),
//! the tick thread, the QUIC endpoint, the REST API, and an orderly shutdown.
//!
//! [`Server::start`] brings everything up and returns once both ports listen;
//! [`Server::shutdown`] stops in the reverse order. The binary (`main.rs`) and the
//! end-to-end tests both go through these two calls.
//!
//! This is the composition root, where the crates meet: `start` (the steps of
//! [`Server::start`]), `database`, `services` (auth, generation, content checks, HTTP
//! bounds), `secrets`, `game` (the game parts and their tunables), `game_channel` (the
//! game channel plugged into the `quic` endpoint, with auth), `adapters` (what the API
//! asks for, built over redis, quic, the log sink and the store), and the server's own
//! tasks (`http`, `logsink`, `media`, `narrative`, `revocations`, `telemetry`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use store::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod adapters;
pub mod config;
pub mod database;
pub mod game;
pub mod game_channel;
pub mod http;
pub mod logsink;
pub mod media;
pub mod narrative;
pub mod revocations;
mod secrets;
pub mod services;
mod start;
pub mod telemetry;
pub mod webtransport_channel;
pub mod worlds;

pub use config::Config;
pub use database::{Database, EMBEDDED_DATABASE, open_database, redact_url};
pub use services::{auth_service, connect_generation_nodes, content_checks, generation_service};

/// Version reported by REST, QUIC and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A running server.
pub struct Server {
    pub http_addr: SocketAddr,
    pub quic_addr: SocketAddr,
    pub quic_fingerprint: String,
    /// The WebTransport endpoint's address, when enabled.
    pub webtransport_addr: Option<SocketAddr>,
    /// Its certificates (their hashes are published; tests rotate them).
    pub webtransport_certs: Option<Arc<webtransport::CertStore>>,
    /// Where the database is (password removed).
    pub database: String,
    pub state: api::AppState,
    shutdown: CancellationToken,
    http_timeout: Duration,
    http: JoinHandle<std::io::Result<()>>,
    quic: JoinHandle<Result<(), quic::QuicError>>,
    webtransport: Option<JoinHandle<Result<(), webtransport::WebTransportError>>>,
    tick: tick::TickLoop,
    watcher: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    log_writer: JoinHandle<()>,
    game: ::game::GameHandle,
    game_persister: ::game::PersisterTask,
    pool: PgPool,
    embedded: Option<embedded::postgres::EmbeddedPostgres>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("http_addr", &self.http_addr)
            .field("quic_addr", &self.quic_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Brings the whole server up. On error, everything started so far is stopped.
    pub async fn start(cfg: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&cfg.state_dir)
            .with_context(|| format!("creating the state dir {}", cfg.state_dir.display()))?;
        let period = tick::period_from_rate(cfg.tick.rate_hz)?;
        let mut checks = content_checks(&cfg)?;
        let db = open_database(&cfg).await?;
        // Refuse invalid content (checked against the asset library too) before
        // starting anything else.
        let loaded = match narrative::library(&db.pool).await {
            Ok(lib) => {
                checks.library = Some(Arc::new(lib));
                narrative::load(&cfg.content.scenes_dir, &checks)
            }
            Err(e) => Err(e),
        };
        let content = match loaded {
            Ok(c) => c,
            Err(e) => {
                db.close().await.ok();
                return Err(e);
            }
        };
        match Self::start_with(cfg, db.pool.clone(), &db.url, period, content).await {
            Ok(mut server) => {
                server.embedded = db.embedded;
                Ok(server)
            }
            Err(e) => {
                db.close().await.ok();
                Err(e)
            }
        }
    }

    async fn start_with(
        cfg: Config,
        pool: PgPool,
        url: &str,
        period: Duration,
        content: Arc<domain::narrative::Content>,
    ) -> anyhow::Result<Server> {
        let auth = auth_service(&cfg, pool.clone())?;
        let redis = start::redis_health(&cfg).await?;
        let shutdown = CancellationToken::new();
        let core = start::core(&cfg, &pool, period, content, &shutdown).await?;
        logsink::set_request_sample(cfg.log.request_sample);
        let log_writer = logsink::spawn_writer(
            pool.clone(),
            logsink::Sink::register(10_000),
            logsink::WriterConfig::from_config(&cfg.log),
            shutdown.clone(),
        );
        let quic_server = start::bind_quic(&cfg, &core.game, &auth)?;
        let quic_addr = quic_server.local_addr();
        let quic_fingerprint = quic_server.fingerprint().to_owned();
        let wt_server = webtransport_channel::bind(&cfg, game::channel_handler(&core.game, &auth))?;
        let webtransport_addr = wt_server.as_ref().map(|s| s.local_addr());
        let webtransport_certs = wt_server.as_ref().map(|s| s.certificates());

        let listener = tokio::net::TcpListener::bind(cfg.http.addr)
            .await
            .with_context(|| format!("binding HTTP on {}", cfg.http.addr))?;
        let http_addr = listener.local_addr()?;

        let (generation, workers, media_metrics) =
            start::generation(&cfg, &pool, &auth, &core.game, &shutdown).await?;
        let game_ws = start::game_ws(&cfg, &core.game, &auth, &shutdown)?;
        let edges = start::Edges {
            auth,
            redis,
            quic: &quic_server,
            webtransport: wt_server
                .as_ref()
                .map(|s| webtransport_channel::api_parts(&cfg, s)),
            generation,
            game_ws,
            media_metrics,
        };
        let state = start::app_state(&cfg, &pool, &core, edges);
        let app = api::router(state.clone());
        let http = tokio::spawn(http::serve(
            listener,
            app,
            services::http_limits(&cfg.http)?,
            shutdown.clone(),
        ));
        let quic = tokio::spawn(quic_server.run(shutdown.clone().cancelled_owned()));
        let webtransport =
            wt_server.map(|s| tokio::spawn(s.run(shutdown.clone().cancelled_owned())));

        Ok(Server {
            http_addr,
            quic_addr,
            quic_fingerprint,
            webtransport_addr,
            webtransport_certs,
            database: redact_url(url),
            state,
            shutdown,
            http_timeout: Duration::from_secs(cfg.http.shutdown_timeout_secs),
            http,
            quic,
            webtransport,
            tick: core.tick,
            watcher: core.watcher,
            workers,
            log_writer,
            pool,
            game: core.game,
            game_persister: core.persister,
            embedded: None,
        })
    }

    /// A token that, when cancelled, starts the shutdown of the listeners.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, drains in-flight requests (bounded), closes QUIC connections
    /// with a reason, stops the tick, closes the pool and the embedded PostgreSQL.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        // Game first: refuse new commands, so every acknowledged one is flushed below.
        game::stop_accepting(&self.game);
        self.shutdown.cancel();
        let mut problems = Vec::new();
        let mut http = self.http;
        match tokio::time::timeout(self.http_timeout, &mut http).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => problems.push(format!("HTTP server: {e}")),
            Ok(Err(e)) => problems.push(format!("HTTP task: {e}")),
            Err(_) => {
                http.abort();
                tracing::warn!(
                    timeout_s = self.http_timeout.as_secs(),
                    "in-flight requests cut off at the drain timeout"
                );
            }
        }
        match self.quic.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(format!("QUIC endpoint: {e}")),
            Err(e) => problems.push(format!("QUIC task: {e}")),
        }
        if let Some(wt) = self.webtransport {
            match wt.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(format!("WebTransport endpoint: {e}")),
                Err(e) => problems.push(format!("WebTransport task: {e}")),
            }
        }
        if let Some(w) = self.watcher {
            let _ = w.await;
        }
        // Workers hand unfinished jobs back to the queue before they stop.
        for w in self.workers {
            let _ = w.await;
        }
        // Commit every game state change handed over so far, then stop the tick and
        // write whatever its last ticks produced.
        game::final_flush(&self.game).await;
        let tick = self.tick;
        if let Err(e) = tokio::task::spawn_blocking(move || tick.stop()).await? {
            problems.push(format!("tick: {e}"));
        }
        self.game_persister.stop().await;
        // Last: the final lines of the shutdown itself are stored too.
        let _ = self.log_writer.await;
        self.pool.close().await;
        if let Err(e) = database::stop_embedded(self.embedded).await {
            problems.push(format!("{e:#}"));
        }
        if problems.is_empty() {
            tracing::info!("shutdown complete");
            Ok(())
        } else {
            Err(anyhow!(
                "shutdown finished with errors: {}",
                problems.join("; ")
            ))
        }
    }
}

/// SIGINT and SIGTERM handlers. Install them before startup, so a signal that comes
/// at any moment after (even before "ready" is printed) leads to an orderly shutdown
/// instead of the default action, which would kill the process mid-way.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
