//! Composition of the PixSim server: configuration, database (embedded or external),
//! the tick thread, the QUIC endpoint, the REST API, and an orderly shutdown.
//!
//! [`Server::start`] brings everything up and returns once both ports listen;
//! [`Server::shutdown`] stops in the reverse order. The binary (`main.rs`) and the
//! end-to-end tests both go through these two calls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod config;
pub mod game;
pub mod http;
pub mod logsink;
pub mod media;
pub mod narrative;
pub mod revocations;
pub mod telemetry;

pub use config::Config;

/// Version reported by REST, QUIC and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Name of the database the server creates in the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "pixsim";

/// A running server.
pub struct Server {
    pub http_addr: SocketAddr,
    pub quic_addr: SocketAddr,
    pub quic_fingerprint: String,
    /// Where the database is (password removed).
    pub database: String,
    pub state: api::AppState,
    shutdown: CancellationToken,
    http_timeout: Duration,
    http: JoinHandle<std::io::Result<()>>,
    quic: JoinHandle<Result<(), quic::QuicError>>,
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

/// The database the server talks to, and the embedded cluster when it owns one.
pub struct Database {
    pub pool: PgPool,
    pub url: String,
    pub embedded: Option<embedded::postgres::EmbeddedPostgres>,
}

impl Database {
    /// Closes the pool and stops the embedded cluster, if any.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        stop_embedded(self.embedded).await
    }
}

/// Stops the embedded cluster if this process started it. One it adopted (started by
/// another process on the same state dir, e.g. a running server when this is
/// `pixsim-server migrate`) is left running: `EmbeddedPostgres::stop` never stops it.
async fn stop_embedded(pg: Option<embedded::postgres::EmbeddedPostgres>) -> anyhow::Result<()> {
    if let Some(pg) = pg {
        let adopted = pg.adopted();
        tokio::task::spawn_blocking(move || pg.stop())
            .await
            .context("stopping the embedded PostgreSQL")??;
        if adopted {
            tracing::info!("embedded PostgreSQL left running (another process started it)");
        } else {
            tracing::info!("embedded PostgreSQL stopped");
        }
    }
    Ok(())
}

/// Removes the password from a database URL for display.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn euid_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Starts the embedded cluster for `state_dir`, falling back to a root-owned location
/// when run as root from a directory the postgres user cannot reach.
fn start_embedded_blocking(cfg: &Config) -> anyhow::Result<embedded::postgres::EmbeddedPostgres> {
    use embedded::postgres::{EmbeddedPostgres, PgOptions};
    let cache_dir = embedded::default_cache_dir();
    let make = |data_dir: PathBuf| {
        let mut opts = PgOptions::new(data_dir);
        opts.cache_dir = cache_dir.clone();
        opts.port = cfg.database.embedded_port;
        opts.run_as = cfg.database.embedded_user.clone();
        opts.start_timeout = Duration::from_secs(60);
        opts
    };
    let state_dir = absolute(&cfg.state_dir)?;
    match EmbeddedPostgres::start(make(state_dir.join("postgres"))) {
        Err(embedded::EmbeddedError::NotTraversable { dir, .. }) if euid_is_root() => {
            use sha2::Digest;
            let hash =
                hex::encode(&sha2::Sha256::digest(state_dir.as_os_str().as_encoded_bytes())[..6]);
            let fallback = PathBuf::from("/var/lib/pixsim").join(hash).join("postgres");
            tracing::warn!(
                unreachable = %dir.display(),
                data_dir = %fallback.display(),
                "the PostgreSQL user cannot reach the state dir; keeping the database elsewhere"
            );
            Ok(EmbeddedPostgres::start(make(fallback))?)
        }
        other => Ok(other?),
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(p)
        .with_context(|| format!("creating the state dir {}", p.display()))?;
    p.canonicalize()
        .with_context(|| format!("resolving the state dir {}", p.display()))
}

/// Connects to `database.url`, or starts the embedded PostgreSQL, then migrates.
pub async fn open_database(cfg: &Config) -> anyhow::Result<Database> {
    let (url, embedded) = match &cfg.database.url {
        Some(url) => (url.clone(), None),
        None => {
            tracing::info!("DATABASE_URL is unset: starting the embedded PostgreSQL");
            let c = cfg.clone();
            let pg = tokio::task::spawn_blocking(move || start_embedded_blocking(&c))
                .await
                .context("starting the embedded PostgreSQL")??;
            tracing::info!(port = pg.port(), data_dir = %pg.data_dir().display(), "embedded PostgreSQL ready");
            if pg.adopted() {
                tracing::info!(
                    pid = pg.pid(),
                    "the embedded PostgreSQL was already running (another process on this \
                     state dir started it): using it, and leaving it running on exit"
                );
            }
            let admin = pg.url("postgres");
            if let Err(e) = create_database_if_missing(&admin, EMBEDDED_DATABASE).await {
                stop_embedded(Some(pg)).await.ok();
                return Err(e);
            }
            (pg.url(EMBEDDED_DATABASE), Some(pg))
        }
    };
    let pool = match connect_and_migrate(cfg, &url).await {
        Ok(pool) => pool,
        Err(e) => {
            stop_embedded(embedded).await.ok();
            return Err(e);
        }
    };
    Ok(Database {
        pool,
        url,
        embedded,
    })
}

async fn create_database_if_missing(admin_url: &str, name: &str) -> anyhow::Result<()> {
    if store::create_database_if_missing(admin_url, name)
        .await
        .context("creating the database on the embedded PostgreSQL")?
    {
        tracing::info!(database = name, "created database");
    }
    Ok(())
}

async fn connect_and_migrate(cfg: &Config, url: &str) -> anyhow::Result<PgPool> {
    let pool = store::connect(&store::PoolConfig {
        url: url.to_owned(),
        max_connections: cfg.database.max_connections,
        acquire_timeout: Duration::from_secs(cfg.database.connect_timeout_secs),
    })
    .await
    .with_context(|| format!("cannot reach the database at {}", redact_url(url)))?;
    store::migrate(&pool)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}

/// The token key: configured, or generated once and kept in the state dir (0600).
fn jwt_secret(cfg: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &cfg.auth.jwt_secret {
        if s.len() < 32 {
            bail!("auth.jwt_secret must be at least 32 characters");
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = cfg.state_dir.join("jwt-secret");
    let secret = state_secret(&path)?;
    if secret.len() < 32 {
        bail!(
            "{} is shorter than 32 characters; delete it to make a new one",
            path.display()
        );
    }
    Ok(secret.into_bytes())
}

/// A secret kept in a file of the state dir: read (trimmed), or made once (32 random
/// bytes as hex) and written 0600 through a temporary file, so a reader never sees
/// half of it and, when two processes start at once, the first one's stays.
fn state_secret(path: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(s) => return Ok(s.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(secret.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a secret");
            Ok(secret)
        }
        // Another process made it first: its secret stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_owned())
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// The bounds of the HTTP accept loop (`[http]`).
fn http_limits(c: &config::HttpConfig) -> anyhow::Result<http::Limits> {
    let secs = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("http.{name} must be a positive number of seconds, not {v}"))
    };
    Ok(http::Limits {
        header_read_timeout: secs("header_read_timeout_secs", c.header_read_timeout_secs)?,
        idle_timeout: secs("idle_timeout_secs", c.idle_timeout_secs)?,
        max_connections: c.max_connections.max(1),
        max_connections_per_ip: c.max_connections_per_ip.max(1),
    })
}

/// The auth service for a pool under this configuration.
pub fn auth_service(cfg: &Config, pool: PgPool) -> anyhow::Result<auth::AuthService> {
    let mut a = auth::AuthConfig::new(jwt_secret(cfg)?);
    a.token_ttl = Duration::from_secs(cfg.auth.token_ttl_secs.max(60));
    a.ip_burst = cfg.auth.ip_burst;
    a.ip_refill = Duration::from_secs_f64(cfg.auth.ip_refill_secs.max(0.001));
    a.account_burst = cfg.auth.account_burst;
    a.account_refill = Duration::from_secs_f64(cfg.auth.account_refill_secs.max(0.001));
    a.max_sessions_per_user = cfg.auth.max_sessions_per_user.max(1);
    a.register_burst = cfg.auth.register_ip_burst;
    a.register_refill = Duration::try_from_secs_f64(cfg.auth.register_ip_refill_secs.max(0.001))
        .context("auth.register_ip_refill_secs must be a number of seconds")?;
    a.hash_queue_timeout = Duration::try_from_secs_f64(cfg.auth.hash_queue_timeout_secs.max(0.001))
        .context("auth.hash_queue_timeout_secs must be a number of seconds")?;
    Ok(auth::AuthService::new(pool, &a)?)
}

impl Server {
    /// Brings the whole server up. On error, everything started so far is stopped.
    pub async fn start(cfg: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&cfg.state_dir)
            .with_context(|| format!("creating the state dir {}", cfg.state_dir.display()))?;
        let period = tick::period_from_rate(cfg.tick.rate_hz)?;
        // Refuse invalid content before starting anything.
        let content = narrative::load(&cfg.content.scenes_dir, &content_checks(&cfg)?)?;
        let db = open_database(&cfg).await?;
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
        let redis = match &cfg.redis.url {
            Some(u) => Some(
                api::RedisProbe::new(u, Duration::from_secs(1))
                    .with_context(|| format!("invalid REDIS_URL {u}"))?,
            ),
            None => None,
        };
        if let Some(r) = &redis
            && let Err(e) = r.ping().await
        {
            tracing::warn!(error = %e, "Redis is configured but unreachable: running degraded");
        }

        let content_info = api::ContentInfo::new(
            &cfg.content.scenes_dir,
            &content.version,
            content.scenes.len(),
        );
        let game::GameParts {
            handle: game_handle,
            plugin: game_plugin,
            persister: game_persister,
        } = game::start(pool.clone(), content.clone(), &cfg.game, period)?;
        let (reload_tx, reload_rx) = std::sync::mpsc::channel();
        let (inspector, inspector_plugin) = inspector::channel(64);
        let sessions_gauge = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sessions = sessions_gauge.clone();
        // Batches logged but not applied before a crash go into the tables before
        // anything reads them.
        let replayed = store::game::replay(&pool)
            .await
            .context("applying the game batches logged before the last stop")?;
        if replayed > 0 {
            tracing::info!(
                batches = replayed,
                "applied game batches logged before the last stop"
            );
        }
        // World time resumes where the stored events left it (never backwards).
        let start_ms = store::game::latest_world_time(&pool)
            .await
            .context("reading the latest world time")?;
        let tick = tick::TickLoop::spawn(cfg.tick.rate_hz, move || {
            let mut app = bevy_app::App::new();
            narrative::configure(&mut app, content, period, start_ms, reload_rx, sessions);
            app.add_plugins(inspector_plugin);
            app.add_plugins(game_plugin);
            app
        })?;
        let shutdown = CancellationToken::new();
        logsink::set_request_sample(cfg.log.request_sample);
        let log_writer = logsink::spawn_writer(
            pool.clone(),
            logsink::Sink::register(10_000),
            logsink::WriterConfig::from_config(&cfg.log),
            shutdown.clone(),
        );
        let watcher = (cfg.content.reload_interval_ms > 0).then(|| {
            narrative::spawn_watcher(
                cfg.content.scenes_dir.clone(),
                Duration::from_millis(cfg.content.reload_interval_ms),
                content_checks(&cfg),
                reload_tx,
                content_info.clone(),
                game_handle.content_cell().clone(),
                shutdown.clone(),
            )
        });

        let mut qcfg = quic::QuicConfig::new(
            cfg.quic.addr,
            cfg.state_dir.clone(),
            format!("pixsim-server {VERSION}"),
        );
        qcfg.cert_path = cfg.quic.cert.clone();
        qcfg.key_path = cfg.quic.key.clone();
        qcfg.idle_timeout = Duration::from_secs(cfg.quic.idle_timeout_secs.max(1));
        qcfg.max_connections = cfg.quic.max_connections;
        qcfg.outbox_capacity = cfg.quic.outbox_capacity;
        let quic_handler = game::quic_handler(&game_handle, &auth);
        let quic_server = quic::QuicServer::bind(qcfg)
            .with_context(|| format!("starting QUIC on udp://{}", cfg.quic.addr))?
            .with_handler(quic_handler);
        let quic_addr = quic_server.local_addr();
        let quic_fingerprint = quic_server.fingerprint().to_owned();

        let listener = tokio::net::TcpListener::bind(cfg.http.addr)
            .await
            .with_context(|| format!("binding HTTP on {}", cfg.http.addr))?;
        let http_addr = listener.local_addr()?;

        let generation = generation_service(&cfg, pool.clone())?;
        let sealed = generation
            .seal_stored_keys()
            .await
            .context("sealing provider API keys stored in plaintext")?;
        if sealed > 0 {
            tracing::info!(sealed, "sealed provider API keys stored in plaintext");
        }
        connect_generation_nodes(&cfg, &generation, shutdown.clone().cancelled_owned())?;
        if let Some(url) = &cfg.redis.url {
            // Ended sessions reach the live connections of every node.
            revocations::connect(url, auth.revocations(), shutdown.clone().cancelled_owned())
                .with_context(|| format!("invalid REDIS_URL {url}"))?;
        }
        let mut workers: Vec<JoinHandle<()>> = (0..cfg.generation.workers)
            .map(|i| {
                let worker = generation.worker_named(format!("server-{i}"));
                let stop = shutdown.clone().cancelled_owned();
                tokio::spawn(worker.run(stop))
            })
            .collect();
        // Scene media: generation specs of nodes players enter become jobs, and their
        // assets are pushed into the simulation.
        if let Some(wanted) = game_handle.take_media_requests() {
            workers.push(tokio::spawn(media::run(
                game_handle.clone(),
                generation.clone(),
                wanted,
                shutdown.clone(),
            )));
        }
        let state = api::AppState {
            db: pool.clone(),
            auth,
            tick: api::TickHandle {
                stats: tick.stats().clone(),
                control: tick.control().clone(),
            },
            redis,
            info: Arc::new(api::ServerInfo {
                version: VERSION.to_owned(),
                quic_addr: Some(quic_addr.to_string()),
                quic_fingerprint: Some(quic_fingerprint.clone()),
            }),
            content: content_info,
            inspector,
            game: game_handle.clone(),
            generation,
            gauges: api::Gauges {
                sessions: sessions_gauge,
                quic: Some(quic_server.stats()),
                extra: vec![
                    log_metrics(),
                    generation_metrics(pool.clone()),
                    game::metrics(&game_handle),
                ],
            },
            metrics_token: cfg
                .http
                .metrics_token
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(api::ScrapeToken::new),
            streams: api::limits::UserSlots::new(
                "open event streams",
                cfg.http.max_streams_per_user,
            ),
        };

        let app = api::router(state.clone());
        let http = tokio::spawn(http::serve(
            listener,
            app,
            http_limits(&cfg.http)?,
            shutdown.clone(),
        ));
        let quic = tokio::spawn(quic_server.run(shutdown.clone().cancelled_owned()));

        Ok(Server {
            http_addr,
            quic_addr,
            quic_fingerprint,
            database: redact_url(url),
            state,
            shutdown,
            http_timeout: Duration::from_secs(cfg.http.shutdown_timeout_secs),
            http,
            quic,
            tick,
            watcher,
            workers,
            log_writer,
            pool,
            game: game_handle,
            game_persister,
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
        if let Err(e) = stop_embedded(self.embedded).await {
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

/// `pixsim_log_lines_dropped_total` for `/metrics`.
fn log_metrics() -> api::MetricsSource {
    Arc::new(|| {
        Box::pin(async {
            format!(
                "# HELP pixsim_log_lines_dropped_total Log lines not stored because the writer was behind.\n\
                 # TYPE pixsim_log_lines_dropped_total counter\n\
                 pixsim_log_lines_dropped_total {}\n",
                logsink::dropped()
            )
        })
    })
}

/// Jobs by status and provider calls by outcome and error class, for `/metrics`.
fn generation_metrics(pool: PgPool) -> api::MetricsSource {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            use std::fmt::Write as _;
            let mut out = String::new();
            if let Ok(rows) = store::generation::metrics::jobs_by_status(&pool).await {
                out.push_str("# HELP pixsim_generation_jobs Generation jobs by status.\n# TYPE pixsim_generation_jobs gauge\n");
                for (status, n) in rows {
                    let _ = writeln!(out, "pixsim_generation_jobs{{status=\"{status}\"}} {n}");
                }
            }
            if let Ok(rows) = store::generation::metrics::provider_calls(&pool).await {
                out.push_str("# HELP pixsim_provider_calls_total Provider submissions by provider, outcome and error class.\n# TYPE pixsim_provider_calls_total counter\n");
                for (provider, status, class, n) in rows {
                    let _ = writeln!(
                        out,
                        "pixsim_provider_calls_total{{provider=\"{provider}\",status=\"{status}\",error_class=\"{class}\"}} {n}"
                    );
                }
            }
            out
        })
    })
}

/// The generation pipeline under this configuration.
pub fn generation_service(
    cfg: &Config,
    pool: PgPool,
) -> anyhow::Result<generation::GenerationService> {
    let mut p = pipeline_config(cfg);
    p.secret_key = secret_key(cfg)?;
    Ok(generation::GenerationService::new(pool, p)?)
}

/// The key sealing provider API keys: configured, or generated once and kept in the
/// state dir (0600).
fn secret_key(cfg: &Config) -> anyhow::Result<generation::secrets::SecretKey> {
    use generation::secrets::SecretKey;
    if let Some(s) = &cfg.generation.secret_key {
        return SecretKey::parse(s).context("generation.secret_key");
    }
    let path = cfg.state_dir.join("secret-key");
    SecretKey::parse(&state_secret(&path)?).with_context(|| format!("reading {}", path.display()))
}

/// Scene content checks that need the pipeline: every media node's generation spec must
/// be one the configured providers accept (see [`media::content_checks`]).
pub fn content_checks(cfg: &Config) -> anyhow::Result<content::Checks> {
    media::content_checks(&pipeline_config(cfg))
}

fn pipeline_config(cfg: &Config) -> generation::PipelineConfig {
    let media = cfg
        .generation
        .media_dir
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join("media"));
    let mut p = generation::PipelineConfig::new(media);
    p.providers = cfg.generation.provider_settings();
    p.guard.allow_private = cfg.generation.allow_private_outbound;
    p.guard.allow_hosts = cfg.generation.outbound_allow_hosts.clone();
    p.user_active_limit = cfg.generation.user_active_limit;
    p.max_upload_bytes = cfg.generation.max_upload_bytes;
    p
}

/// With `redis.url` set, joins the other nodes of this database over Redis: job
/// wake-ups, generation events and cancels reach every node (see
/// `GenerationService::connect_redis`). The link runs in the background, reconnecting
/// as needed, until `shutdown` resolves. Without Redis the node works alone.
pub fn connect_generation_nodes(
    cfg: &Config,
    service: &generation::GenerationService,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(url) = &cfg.redis.url {
        service
            .connect_redis(url, shutdown)
            .with_context(|| format!("invalid REDIS_URL {url}"))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::{redact_url, state_secret};

    #[test]
    fn a_state_secret_is_made_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("pixsim-secret-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("secret-key");
        let first = state_secret(&path).expect("made");
        assert_eq!(first.len(), 64);
        assert_eq!(state_secret(&path).expect("read back"), first);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(generation::secrets::SecretKey::parse(&first).is_ok());
        let left = std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(left, 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }
}
