//! Shared state of the HTTP handlers.

use auth::AuthService;
use sqlx::PgPool;
use std::sync::Arc;
use tick::{TickControl, TickStats};

/// Everything a handler may reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: PgPool,
    pub auth: AuthService,
    pub tick: TickHandle,
    /// The Redis health check, when Redis is configured.
    pub redis: Option<HealthProbe>,
    pub info: Arc<ServerInfo>,
    pub content: ContentInfo,
    /// The tick inspector (answers on the tick thread).
    pub inspector: inspector::Inspector,
    /// Game sessions (shared with the QUIC channel).
    pub game: game::GameHandle,
    /// The generation pipeline: jobs, provider accounts, assets.
    pub generation: generation::GenerationService,
    /// Live figures published by other parts, for `/metrics`.
    pub gauges: Gauges,
    /// The bearer token that may scrape `/metrics` (`http.metrics_token`); admins'
    /// tokens may too.
    pub metrics_token: Option<ScrapeToken>,
    /// WebSocket and SSE streams open per user (`http.max_streams_per_user`).
    pub streams: crate::limits::UserSlots,
    /// The WebTransport endpoint, when it runs (`GET /api/v1/game/webtransport`).
    pub webtransport: Option<WebTransportDirectory>,
    /// The content's media files, served at `/assets/{path}` (`content.assets_dir`).
    pub assets_dir: Arc<std::path::PathBuf>,
    /// The game channel served over WebSocket (`/api/v1/game/ws`): the game's
    /// connection handler with its limits; `None` answers 503.
    pub game_ws: Option<channel::Channel>,
    /// `/health`'s recent database and Redis probes.
    pub health_probes: crate::routes::health::HealthProbes,
}

/// A secret bearer token; its `Debug` does not show it.
#[derive(Clone)]
pub struct ScrapeToken(Arc<str>);

impl ScrapeToken {
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken(..)")
    }
}

impl std::fmt::Debug for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauges")
            .field("sessions", &self.sessions)
            .field("extra", &self.extra.len())
            .finish_non_exhaustive()
    }
}

/// Figures other parts of the server publish for `/metrics`.
#[derive(Clone, Default)]
pub struct Gauges {
    /// Game sessions loaded in the simulation (written by the tick thread).
    pub sessions: Arc<std::sync::atomic::AtomicU64>,
    /// The QUIC endpoint's figures, when it runs.
    pub quic: Option<ChannelStats>,
    /// More metric families, in Prometheus text, from other parts (e.g. the job queue).
    pub extra: Vec<MetricsSource>,
}

/// Produces metric families in Prometheus text format (may query the database).
pub type MetricsSource = Arc<dyn Fn() -> BoxFuture<String> + Send + Sync>;

/// What narrative content is live, for health and operators.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ContentStatus {
    pub dir: String,
    /// Hash of the live content.
    pub version: String,
    pub scenes: usize,
    /// Why the last change on disk was refused (the old content stays live).
    pub last_error: Option<String>,
}

/// Shared, updatable [`ContentStatus`].
#[derive(Debug, Clone)]
pub struct ContentInfo(Arc<std::sync::Mutex<ContentStatus>>);

impl ContentInfo {
    pub fn new(dir: &std::path::Path, version: &str, scenes: usize) -> Self {
        Self(Arc::new(std::sync::Mutex::new(ContentStatus {
            dir: dir.display().to_string(),
            version: version.to_owned(),
            scenes,
            last_error: None,
        })))
    }

    pub fn get(&self) -> ContentStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_loaded(&self, version: &str, scenes: usize) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.version = version.to_owned();
        s.scenes = scenes;
        s.last_error = None;
    }

    pub fn set_error(&self, error: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).last_error = Some(error);
    }
}

/// Read and steer the tick loop from async code.
#[derive(Clone, Debug)]
pub struct TickHandle {
    pub stats: TickStats,
    pub control: TickControl,
}

/// Facts about this server shown by health and docs.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub version: String,
    pub quic_addr: Option<String>,
    pub quic_fingerprint: Option<String>,
}

/// A health check of an optional dependency (Redis): `Ok` when it answers in time,
/// else why not. The API only calls it; the server builds it over the real client.
#[derive(Clone)]
pub struct HealthProbe(Arc<dyn Fn() -> BoxFuture<Result<(), String>> + Send + Sync>);

/// A boxed, sendable future.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl HealthProbe {
    /// A probe running `check` on each health or readiness request.
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(check())))
    }

    /// Runs the check: `Ok` when up, else the error text.
    pub async fn check(&self) -> Result<(), String> {
        (self.0)().await
    }
}

impl std::fmt::Debug for HealthProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthProbe(..)")
    }
}

/// Figures of the game channel's transport (QUIC) at one moment, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelFigures {
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted since start.
    pub accepted_total: u64,
}

/// Reads the transport's [`ChannelFigures`] on each scrape (without blocking).
pub type ChannelStats = Arc<dyn Fn() -> ChannelFigures + Send + Sync>;

/// The certificates the endpoint holds at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebTransportCerts {
    /// SHA-256 of each certificate's DER: the current one first, then the next.
    pub sha256: Vec<[u8; 32]>,
    /// End of the current certificate's validity.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Reads the endpoint's [`WebTransportCerts`] on each request (without blocking).
pub type CertsSource = Arc<dyn Fn() -> WebTransportCerts + Send + Sync>;

/// Where the WebTransport endpoint listens and how to read its certificates.
#[derive(Clone)]
pub struct WebTransportDirectory {
    /// The endpoint's UDP port.
    pub port: u16,
    /// The session path (`/game`).
    pub path: String,
    /// The host name clients should use; `None`: the request's `Host`.
    pub public_host: Option<String>,
    /// The certificates now.
    pub certs: CertsSource,
}

impl std::fmt::Debug for WebTransportDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebTransportDirectory")
            .field("port", &self.port)
            .field("path", &self.path)
            .field("public_host", &self.public_host)
            .finish_non_exhaustive()
    }
}
