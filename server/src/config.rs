//! Configuration: defaults, then a TOML file (`--config`), then `PIXSIM_` environment
//! variables (`PIXSIM_HTTP__ADDR=0.0.0.0:8080`: sections joined by `__`), then the
//! conventional `DATABASE_URL` and `REDIS_URL`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the server keeps its state: embedded database, QUIC certificate, JWT key.
    pub state_dir: PathBuf,
    pub http: HttpConfig,
    pub quic: QuicConfig,
    pub webtransport: WebTransportConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub tick: TickConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub content: ContentConfig,
    pub generation: GenerationConfig,
    pub webhooks: WebhooksConfig,
    pub game: GameConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(".pixsim"),
            http: HttpConfig::default(),
            quic: QuicConfig::default(),
            webtransport: WebTransportConfig::default(),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            tick: TickConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            content: ContentConfig::default(),
            generation: GenerationConfig::default(),
            webhooks: WebhooksConfig::default(),
            game: GameConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationConfig {
    /// Workers run inside the server; 0 leaves jobs to `pixsim-server worker` processes.
    pub workers: usize,
    /// Jobs each worker runs at once.
    pub worker_concurrency: usize,
    /// Where generated and uploaded media are kept (default: state_dir/media).
    pub media_dir: Option<PathBuf>,
    /// Each provider's settings, keyed by provider id: `[generation.providers.<id>]`
    /// (`base_url`, timeouts, price estimates; see each provider's config struct).
    /// Provider base URLs are server configuration only (accounts cannot set one).
    pub providers: generation::provider::ProviderSettings,
    /// Older spelling of `providers.pixverse.base_url` (the entry wins when it sets it).
    pub pixverse_base_url: Option<String>,
    /// Older spelling of `providers.openai.base_url` (the entry wins when it sets it).
    pub openai_base_url: Option<String>,
    /// Let every outbound request (provider calls, downloads) reach private and
    /// loopback addresses (tests, local fakes). Off: the SSRF guard refuses them.
    #[serde(alias = "allow_private_downloads")]
    pub allow_private_outbound: bool,
    /// Host names outbound requests may reach whatever they resolve to (an on-prem
    /// provider or CDN); a redirect from them to another private address is refused.
    pub outbound_allow_hosts: Vec<String>,
    /// The key that seals provider API keys at rest: 64 hex digits or base64 of 32
    /// bytes. Default: generated once into `state_dir/secret-key` (mode 0600). Every
    /// process sharing the database (servers, `pixsim-server worker`) needs the same.
    pub secret_key: Option<String>,
    /// Most unfinished jobs one user may have.
    pub user_active_limit: Option<i64>,
    /// Largest file `POST /api/v1/assets/upload` accepts, in bytes.
    pub max_upload_bytes: u64,
    /// New attempts a job gets after a provider's moderation refused it
    /// (`content_filtered`; a new attempt may pass); 0 fails it at once.
    pub content_filtered_retries: u32,
    /// `/health` probes each provider's reachability at most this often (seconds; the
    /// answer is reused meanwhile); 0 (or less) turns the probes off.
    pub provider_probe_secs: f64,
    /// Scene media is generated ahead of the players: when a session comes within this
    /// many steps (moves the player makes) of a generation node whose media does not
    /// exist, its job is created at `pregenerate_priority`. 0 turns it off (only an
    /// entry into the node asks).
    pub pregenerate_steps: u32,
    /// The queue priority (0–10; ordinary jobs have 5) of scene media made ahead; the
    /// first entry into the node raises it to the spec's own.
    pub pregenerate_priority: i16,
    /// How similar (0–1) an existing asset must be to what a generation would make for
    /// a create with `reuse: "similar"` to reuse it (and for validate to list it).
    pub reuse_min_similarity: f32,
    /// What embeds assets for similarity search: `visual` (built in, offline: images
    /// and videos by their look), `openai` (an OpenAI-compatible embeddings server, see
    /// `embeddings_*`; also embeds search texts) or `none`.
    pub embedder: String,
    /// `embedder = "openai"`: the server's base URL (the path before `/embeddings`),
    /// reached through the SSRF guard.
    pub embeddings_url: Option<String>,
    /// `embedder = "openai"`: the model.
    pub embeddings_model: String,
    /// `embedder = "openai"`: sent as a bearer token when set.
    pub embeddings_api_key: Option<String>,
    /// `embedder = "openai"`: the model takes images too (as `data:` URLs), so assets
    /// are embedded; off, only texts are.
    pub embeddings_images: bool,
}

impl GenerationConfig {
    /// The provider entries handed to the pipeline: `providers`, with the older
    /// `pixverse_base_url` and `openai_base_url` keys folded in where the entry does
    /// not set `base_url` itself.
    pub fn provider_settings(&self) -> generation::provider::ProviderSettings {
        let mut s = self.providers.clone();
        for (id, url) in [
            ("pixverse", &self.pixverse_base_url),
            ("openai", &self.openai_base_url),
        ] {
            if let Some(url) = url
                && !s.has(id, "base_url")
            {
                s.set(id, "base_url", url.as_str());
            }
        }
        s
    }
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            worker_concurrency: 16,
            media_dir: None,
            providers: Default::default(),
            pixverse_base_url: None,
            openai_base_url: None,
            allow_private_outbound: false,
            outbound_allow_hosts: Vec::new(),
            secret_key: None,
            user_active_limit: Some(10),
            max_upload_bytes: 100 * 1024 * 1024,
            content_filtered_retries: 1,
            provider_probe_secs: 30.0,
            pregenerate_steps: 2,
            pregenerate_priority: 1,
            reuse_min_similarity: 0.8,
            embedder: "visual".into(),
            embeddings_url: None,
            embeddings_model: String::new(),
            embeddings_api_key: None,
            embeddings_images: true,
        }
    }
}

/// Webhook delivery (`[webhooks]`; see `POST /api/v1/webhooks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Seconds to wait before each retry of a message the receiver did not take (a
    /// 2xx answer); once used up, the message is `failed`. Default: 5 s, 30 s, 2 min,
    /// 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h (about a day, 11 attempts).
    pub retry_schedule_secs: Vec<f64>,
    /// One attempt's time limit.
    pub timeout_secs: f64,
    /// Attempts in flight at once per process.
    pub concurrency: usize,
    /// Endpoints one user may register.
    pub max_per_user: i64,
    /// Days delivered and failed messages (and their log) are kept.
    pub retention_days: f64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let d = generation::config::WebhookConfig::default();
        Self {
            retry_schedule_secs: d.retry_schedule.iter().map(|w| w.as_secs_f64()).collect(),
            timeout_secs: d.timeout.as_secs_f64(),
            concurrency: d.concurrency,
            max_per_user: d.max_endpoints_per_user,
            retention_days: d.retention.as_secs_f64() / 86_400.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_timeout_secs: u64,
    /// A request head must arrive complete within this long of the server waiting for
    /// it (on a new connection, and after each response on a kept-alive one).
    pub header_read_timeout_secs: f64,
    /// A connection with no request in its handler and no byte moved this long is
    /// closed.
    pub idle_timeout_secs: f64,
    /// Open connections in all; more are accepted and closed at once.
    pub max_connections: usize,
    /// Open connections from one IP address; more are accepted and closed at once.
    pub max_connections_per_ip: usize,
    /// Bearer token that may scrape `/metrics` (admins' tokens may too). Unset: only
    /// admins.
    pub metrics_token: Option<String>,
    /// WebSocket and SSE streams open per user; more are answered 429.
    pub max_streams_per_user: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_timeout_secs: 10,
            header_read_timeout_secs: 10.0,
            idle_timeout_secs: 60.0,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            metrics_token: None,
            max_streams_per_user: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuicConfig {
    pub addr: SocketAddr,
    /// PEM certificate chain; with `key`. Unset: a self-signed one kept in the state dir.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    /// Server messages queued per connection while the client is not reading;
    /// beyond that (for `game.send_wait_secs`) it is closed as a slow consumer.
    pub outbox_capacity: usize,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 4433)),
            cert: None,
            key: None,
            idle_timeout_secs: 30,
            max_connections: 10_000,
            outbox_capacity: 256,
        }
    }
}

/// The game channel over WebTransport (HTTP/3, for browsers), with a certificate the
/// server makes and rotates itself (clients pin its published hash). Connection
/// limits and timeouts are `[quic]`'s.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebTransportConfig {
    pub enabled: bool,
    /// UDP address of the endpoint; the session is at `https://<host>:<port>/game`.
    pub addr: SocketAddr,
    /// The host name clients reach the endpoint by, in the URL that
    /// `GET /api/v1/game/webtransport` gives (and in the certificates). Unset: the
    /// host of that request.
    pub public_host: Option<String>,
    /// Hours between certificate rotations (1 to 168; certificates are valid 10 days).
    pub rotate_hours: u64,
}

impl Default for WebTransportConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 4434)),
            public_host: None,
            rotate_hours: 120,
        }
    }
}

/// Game sessions (QUIC and the REST scene player).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GameConfig {
    /// Events kept per session for resend after a reconnect.
    pub resend_window: usize,
    /// Commands queued per session in the tick; more are answered `busy`.
    pub per_session_queue: usize,
    /// Commands awaiting their answer per QUIC connection; more are answered `busy`.
    pub max_inflight: usize,
    /// How long a connection's full send queue may wait for the client before it is
    /// closed as a slow consumer.
    pub send_wait_secs: f64,
    /// Ended sessions are dropped from memory this long after their end is committed.
    pub evict_ended_after_secs: f64,
    /// Sessions no client follows are saved and unloaded after this long idle.
    pub evict_idle_after_secs: f64,
    /// Live (in memory, not ended) sessions per user; creating or reloading one more is
    /// refused (REST 429, QUIC `invalid_request`).
    pub max_live_sessions_per_user: usize,
}

impl Default for GameConfig {
    fn default() -> Self {
        Self {
            resend_window: 1000,
            per_session_queue: 8,
            max_inflight: 32,
            send_wait_secs: 2.0,
            evict_ended_after_secs: 60.0,
            evict_idle_after_secs: 600.0,
            max_live_sessions_per_user: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A PostgreSQL URL (with pgvector). Unset: the embedded PostgreSQL is used.
    pub url: Option<String>,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// Port of the embedded PostgreSQL; 0 picks a free one.
    pub embedded_port: u16,
    /// Non-root user that runs the embedded PostgreSQL when the server runs as root.
    pub embedded_user: Option<String>,
    /// `shared_buffers` of the embedded PostgreSQL, in MB. Unset: a quarter of the
    /// machine's memory, between 128 MB and 1 GB (the similarity search's index should
    /// fit).
    pub embedded_shared_buffers_mb: Option<u64>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 20,
            connect_timeout_secs: 10,
            embedded_port: 0,
            embedded_user: None,
            embedded_shared_buffers_mb: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Optional; for multi-node work. Without it a single node loses nothing.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ContentConfig {
    /// The scene files and world config.
    pub scenes_dir: PathBuf,
    /// How often to look for changed files; 0 turns reloading off.
    pub reload_interval_ms: u64,
    /// The media files scenes name (`asset = "assets/door.mp4"`), served at
    /// `/assets/...`; default: `assets` beside the scenes directory.
    pub assets_dir: Option<PathBuf>,
}

impl Default for ContentConfig {
    fn default() -> Self {
        Self {
            scenes_dir: PathBuf::from("scenes"),
            reload_interval_ms: 1000,
            assets_dir: None,
        }
    }
}

impl ContentConfig {
    /// The assets directory: the configured one, else `assets` beside the scenes
    /// directory.
    pub fn assets_dir(&self) -> PathBuf {
        match &self.assets_dir {
            Some(dir) => dir.clone(),
            None => self
                .scenes_dir
                .parent()
                .map_or_else(|| PathBuf::from("assets"), |p| p.join("assets")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TickConfig {
    pub rate_hz: f64,
    /// Run commands in a command step as soon as they arrive, between ticks, instead
    /// of at the next tick (see ARCHITECTURE.md, "Answers within a tick").
    pub command_phase: bool,
    /// The least time between two command steps (and between a command step and the
    /// next tick): what arrives within it is batched into one step.
    pub command_gap_ms: f64,
}

impl Default for TickConfig {
    fn default() -> Self {
        Self {
            rate_hz: 20.0,
            command_phase: true,
            command_gap_ms: 1.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC key for tokens (≥ 32 bytes). Unset: a random key kept in the state dir.
    pub jwt_secret: Option<String>,
    pub token_ttl_secs: u64,
    /// Login attempts allowed per IP in a burst, then one per `ip_refill_secs`.
    pub ip_burst: u32,
    pub ip_refill_secs: f64,
    /// Failed logins allowed per account in a burst, then one per `account_refill_secs`.
    pub account_burst: u32,
    pub account_refill_secs: f64,
    /// Live login sessions per user; a login beyond it ends the user's oldest ones.
    pub max_sessions_per_user: usize,
    /// Registrations allowed per IP in a burst, then one per `register_ip_refill_secs`.
    pub register_ip_burst: u32,
    pub register_ip_refill_secs: f64,
    /// How long a password hash or check waits for a hashing slot (one per core,
    /// process-wide) before the request is answered 503 with `Retry-After`.
    pub hash_queue_timeout_secs: f64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            token_ttl_secs: 7 * 24 * 3600,
            ip_burst: 20,
            ip_refill_secs: 3.0,
            account_burst: 10,
            account_refill_secs: 60.0,
            max_sessions_per_user: 32,
            register_ip_burst: 10,
            register_ip_refill_secs: 60.0,
            hash_queue_timeout_secs: 5.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
    /// Lines in `log_entry` (the admin log) older than this are deleted.
    pub retention_days: u32,
    /// At most this many lines are kept in `log_entry`; the oldest go first.
    pub max_rows: u64,
    /// How often the retention purge runs.
    pub purge_interval_secs: f64,
    /// One successful request's `response` line in this many is stored in the admin
    /// log (1: all, 0: none); error answers (4xx, 5xx) always are. Every response is
    /// counted in a summary line written every `request_summary_secs`.
    pub request_sample: u32,
    pub request_summary_secs: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info,sqlx=warn,quinn=warn,web_transport_quinn=error,tower_http=warn".into(),
            retention_days: 14,
            max_rows: 1_000_000,
            purge_interval_secs: 600.0,
            request_sample: 100,
            request_summary_secs: 60.0,
        }
    }
}

/// Top-level keys of [`Config`]: the only ones `PIXSIM_` variables may set. Other
/// `PIXSIM_*` variables belong to other tools (the client, the test harness) and are
/// ignored here. Derived from the struct so the two cannot drift apart.
fn sections() -> Vec<String> {
    match figment::value::Value::serialize(Config::default()) {
        Ok(figment::value::Value::Dict(_, dict)) => dict.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

impl Config {
    /// Loads defaults → `file` → environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            fig = fig.merge(Toml::file_exact(path));
        }
        let sections = sections();
        let env = Env::prefixed("PIXSIM_").split("__").filter(move |key| {
            let first = key.as_str().split('.').next().unwrap_or_default();
            sections.iter().any(|s| first.eq_ignore_ascii_case(s))
        });
        fig = fig
            .merge(env)
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()));
        fig.extract().map_err(|e| ConfigError(Box::new(e)))
    }
}

#[cfg(test)]
// figment's Jail closures return its (large) error type by design.
#[allow(clippy::unwrap_used, clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn layers_defaults_file_then_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "pixsim.toml",
                "state_dir = \"/tmp/x\"\n[http]\naddr = \"0.0.0.0:9000\"\n[tick]\nrate_hz = 30.0\n",
            )?;
            jail.set_env("PIXSIM_TICK__RATE_HZ", "40");
            jail.set_env("PIXSIM_CONTENT__SCENES_DIR", "/x/scenes");
            jail.set_env("PIXSIM_CACHE_DIR", "/ignored/by/the/server");
            jail.set_env("DATABASE_URL", "postgres://u@h/db");
            let c = Config::load(Some(Path::new("pixsim.toml"))).unwrap();
            assert_eq!(c.state_dir, PathBuf::from("/tmp/x"));
            assert_eq!(c.http.addr, "0.0.0.0:9000".parse().unwrap());
            assert_eq!(c.tick.rate_hz, 40.0, "env wins over file");
            assert_eq!(c.content.scenes_dir, PathBuf::from("/x/scenes"));
            assert_eq!(c.database.url.as_deref(), Some("postgres://u@h/db"));
            assert_eq!(
                c.quic,
                QuicConfig::default(),
                "untouched sections keep defaults"
            );
            Ok(())
        });
    }

    #[test]
    fn every_section_can_be_set_from_the_environment() {
        let s = sections();
        for name in [
            "state_dir",
            "http",
            "quic",
            "webtransport",
            "database",
            "redis",
            "tick",
            "auth",
            "log",
            "content",
            "generation",
            "game",
        ] {
            assert!(s.iter().any(|x| x == name), "{name} missing from {s:?}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[http]\nadress = \"x\"\n")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
            assert!(err.to_string().contains("adress"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn provider_entries_are_a_map_by_id_and_the_older_base_url_keys_still_work() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                "[generation]\npixverse_base_url = \"http://old\"\nopenai_base_url = \"http://oa\"\n\
                 [generation.providers.pixverse]\nbase_url = \"http://new\"\npoll_interval_secs = 2.5\n\
                 [generation.providers.pixverse.credits_5s]\n\"360p\" = 7\n",
            )?;
            jail.set_env(
                "PIXSIM_GENERATION__PROVIDERS__OPENAI__REQUEST_TIMEOUT_SECS",
                "9",
            );
            let c = Config::load(Some(Path::new("p.toml"))).unwrap();
            let s = c.generation.provider_settings();
            let pv = s.entry("pixverse").unwrap();
            assert_eq!(pv["base_url"], "http://new", "the entry wins");
            assert_eq!(pv["poll_interval_secs"], 2.5);
            assert_eq!(pv["credits_5s"]["360p"], 7);
            let oa = s.entry("openai").unwrap();
            assert_eq!(oa["base_url"], "http://oa", "the older key still works");
            assert_eq!(oa["request_timeout_secs"], 9);
            // Each provider parses its own entry.
            let guard = generation::guard::Guard::new(Default::default());
            generation::provider::ProviderRegistry::built_in(&s, &guard).unwrap();
            Ok(())
        });
    }

    /// The README's configuration block is a configuration the server takes as it is,
    /// providers included, so the documentation cannot drift from the keys.
    #[test]
    fn the_readme_configuration_block_loads() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Configuration").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let block = &section[start..start + section[start..].find("```").unwrap()];
        figment::Jail::expect_with(|jail| {
            jail.create_file("readme.toml", block)?;
            let c = Config::load(Some(Path::new("readme.toml"))).unwrap();
            assert_eq!(
                c.http,
                HttpConfig::default(),
                "the block shows the defaults"
            );
            let s = c.generation.provider_settings();
            let guard = generation::guard::Guard::new(Default::default());
            generation::provider::ProviderRegistry::built_in(&s, &guard).unwrap();
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/pixsim.toml"))).is_err());
    }
}
