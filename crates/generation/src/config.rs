//! Pipeline settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::download::DownloadConfig;
use crate::guard::GuardConfig;
use crate::provider::ProviderSettings;
use crate::secrets::SecretKey;

/// Settings of the service and its workers.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Content-addressed media files live here (e.g. `<state dir>/media`).
    pub media_dir: PathBuf,
    /// Provider used when a request names none.
    pub default_provider: String,
    /// Jobs one worker runs at once.
    pub worker_concurrency: usize,
    /// Jobs claimed per query.
    pub claim_batch: i64,
    /// Lease length; a worker silent for this long loses its jobs.
    pub lease: Duration,
    /// Heartbeat period (well under `lease`).
    pub heartbeat: Duration,
    /// Queue poll period when idle and not woken.
    pub idle_poll: Duration,
    /// After a wake-up, wait this long before claiming so that a burst of creates is
    /// claimed in one batch. Default 0: claim at once (creates that arrive while a claim
    /// runs are taken by the next one); a wait adds its length to every job's start.
    pub wake_coalesce: Duration,
    /// How often a worker reclaims expired leases (and reconciles account counters).
    pub reclaim_interval: Duration,
    /// How often a worker recomputes account slot counters from the jobs (drift repair).
    pub reconcile_interval: Duration,
    /// Deadline of one attempt, from claim to completion.
    pub job_timeout: Duration,
    /// Default failed attempts allowed (per job overridable).
    pub max_retries: u32,
    /// New attempts a job gets after a provider's moderation refused it
    /// (`content_filtered`): a new attempt may pass. Counted apart from `max_retries`;
    /// once spent, the job fails with `content_filtered`. 0: it fails at once.
    pub content_filtered_retries: u32,
    /// How often at most each provider's reachability is probed for `/health` (its
    /// answer is reused meanwhile); zero turns the probes off.
    pub provider_probe_interval: Duration,
    /// Per-user limit on pending + processing + paused jobs (`None`: none).
    pub user_active_limit: Option<i64>,
    /// Backoff of transient failures: base · 2^retries, capped, with jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Requeue delay while no account is free.
    pub account_wait: Duration,
    /// Cooldown of a rate-limited account without Retry-After.
    pub rate_limit_cooldown: Duration,
    /// Consecutive transient poll errors tolerated before the attempt is requeued.
    pub max_poll_errors: u32,
    /// Largest upload accepted by `upload_asset`.
    pub max_upload_bytes: u64,
    /// Grace for in-flight jobs when a worker shuts down (then their leases are released).
    pub shutdown_grace: Duration,
    /// Group commit of keyless creates and of completions: at most this many per
    /// statement …
    pub write_batch: usize,
    /// … and at most this many such statements of each kind at once (each holds a
    /// connection). Fewer slots make larger batches and less contention in
    /// PostgreSQL; more keep one slow statement from holding up the others.
    pub write_slots: usize,
    /// The Redis pub/sub channel of the nodes sharing one database (see
    /// [`crate::GenerationService::connect_redis`]).
    pub redis_channel: String,
    pub download: DownloadConfig,
    /// Destinations every outbound request may reach besides public addresses
    /// (provider calls, downloads): see [`crate::guard`].
    pub guard: GuardConfig,
    /// Seals provider API keys at rest ([`crate::secrets`]). Every process sharing a
    /// database needs the same key; the server keeps it in its state dir or config.
    pub secret_key: SecretKey,
    /// Each provider's configuration entry, keyed by provider id (base URLs, timeouts,
    /// price estimates: server configuration, never an account's). Each provider parses
    /// its own entry (see [`crate::provider::registry`]); one not listed runs on its
    /// defaults.
    pub providers: ProviderSettings,
    /// Webhook delivery ([`crate::webhooks`]).
    pub webhooks: WebhookConfig,
    /// How similar (0–1) an existing asset must be to what a create would make for
    /// `reuse: "similar"` to reuse it, and for validate to name it (the request may ask
    /// for more).
    pub reuse_min_similarity: f32,
}

/// How webhook messages are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// The waits between attempts of one message: after the first failed attempt the
    /// first wait, and so on; once they are used up the message is `failed`. The
    /// default spans about a day (11 attempts).
    pub retry_schedule: Vec<Duration>,
    /// One attempt's time limit (connect, send, answer).
    pub timeout: Duration,
    /// Attempts in flight at once, per process.
    pub concurrency: usize,
    /// Endpoints one user may register.
    pub max_endpoints_per_user: i64,
    /// How often the dispatcher looks for due messages when nothing woke it.
    pub poll: Duration,
    /// How often the set of users with endpoints is read again (an endpoint registered
    /// on another node is seen after at most this long).
    pub refresh: Duration,
    /// Delivered and failed messages (and their log) are kept this long.
    pub retention: Duration,
    /// Events waiting to be written to the outbox; beyond it they are dropped and
    /// counted (the database is not keeping up).
    pub queue_capacity: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let s = Duration::from_secs;
        WebhookConfig {
            retry_schedule: vec![
                s(5),
                s(30),
                s(120),
                s(600),
                s(1800),
                s(3600),
                s(2 * 3600),
                s(4 * 3600),
                s(8 * 3600),
                s(8 * 3600),
            ],
            timeout: s(10),
            concurrency: 32,
            max_endpoints_per_user: 10,
            poll: Duration::from_millis(500),
            refresh: s(2),
            retention: s(7 * 24 * 3600),
            queue_capacity: 65_536,
        }
    }
}

impl PipelineConfig {
    /// Defaults with the given media dir and a random secret key (set
    /// `secret_key` to share a database with other processes).
    pub fn new(media_dir: impl Into<PathBuf>) -> Self {
        PipelineConfig {
            media_dir: media_dir.into(),
            default_provider: "local".into(),
            worker_concurrency: 16,
            claim_batch: 16,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            idle_poll: Duration::from_millis(500),
            wake_coalesce: Duration::ZERO,
            reclaim_interval: Duration::from_secs(5),
            reconcile_interval: Duration::from_secs(60),
            job_timeout: Duration::from_secs(30 * 60),
            max_retries: 3,
            content_filtered_retries: 1,
            provider_probe_interval: Duration::from_secs(30),
            user_active_limit: Some(20),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            account_wait: Duration::from_secs(3),
            rate_limit_cooldown: Duration::from_secs(60),
            max_poll_errors: 5,
            max_upload_bytes: 100 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            redis_channel: "pixsim:generation".into(),
            write_batch: 64,
            write_slots: 2,
            download: DownloadConfig::default(),
            guard: GuardConfig::default(),
            secret_key: SecretKey::random(),
            providers: ProviderSettings::default(),
            webhooks: WebhookConfig::default(),
            reuse_min_similarity: 0.8,
        }
    }
}
