//! The services built from the configuration: auth, the generation pipeline (and its
//! link to other nodes), the content checks it implies, and the HTTP bounds.

use std::time::Duration;

use anyhow::Context;
use store::PgPool;

use crate::{Config, config, http, media, secrets};

/// The bounds of the HTTP accept loop (`[http]`).
pub(crate) fn http_limits(c: &config::HttpConfig) -> anyhow::Result<http::Limits> {
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
    let mut a = auth::AuthConfig::new(secrets::jwt_secret(cfg)?);
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

/// The generation pipeline under this configuration.
pub fn generation_service(
    cfg: &Config,
    pool: PgPool,
) -> anyhow::Result<generation::GenerationService> {
    let mut p = pipeline_config(cfg);
    p.webhooks = webhook_config(&cfg.webhooks)?;
    p.secret_key = secrets::secret_key(cfg)?;
    Ok(generation::GenerationService::new(pool, p)?)
}

/// Scene content checks beyond the content's own rules: every media node's generation
/// spec must be one the configured providers accept (see [`media::content_checks`]), and
/// every asset it names a media file in `content.assets_dir`.
pub fn content_checks(cfg: &Config) -> anyhow::Result<content::Checks> {
    let mut checks = media::content_checks(&pipeline_config(cfg))?;
    checks.assets_dir = Some(cfg.content.assets_dir());
    Ok(checks)
}

/// The pipeline's webhook settings from `[webhooks]`.
fn webhook_config(c: &config::WebhooksConfig) -> anyhow::Result<generation::config::WebhookConfig> {
    let secs = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .with_context(|| format!("webhooks.{name} must be a number of seconds, not {v}"))
    };
    let retry_schedule = c
        .retry_schedule_secs
        .iter()
        .map(|v| secs("retry_schedule_secs", *v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let timeout = secs("timeout_secs", c.timeout_secs)?;
    anyhow::ensure!(!timeout.is_zero(), "webhooks.timeout_secs must be positive");
    Ok(generation::config::WebhookConfig {
        retry_schedule,
        timeout,
        concurrency: c.concurrency.max(1),
        max_endpoints_per_user: c.max_per_user.max(0),
        retention: secs("retention_days", c.retention_days * 86_400.0)?,
        ..Default::default()
    })
}

fn pipeline_config(cfg: &Config) -> generation::PipelineConfig {
    let media = cfg
        .generation
        .media_dir
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join("media"));
    let mut p = generation::PipelineConfig::new(media);
    p.providers = cfg.generation.provider_settings();
    p.worker_concurrency = cfg.generation.worker_concurrency.max(1);
    p.guard.allow_private = cfg.generation.allow_private_outbound;
    p.guard.allow_hosts = cfg.generation.outbound_allow_hosts.clone();
    p.user_active_limit = cfg.generation.user_active_limit;
    p.max_upload_bytes = cfg.generation.max_upload_bytes;
    p.content_filtered_retries = cfg.generation.content_filtered_retries;
    p.reuse_min_similarity = cfg.generation.reuse_min_similarity.clamp(0.0, 1.0);
    p.provider_probe_interval =
        Duration::try_from_secs_f64(cfg.generation.provider_probe_secs).unwrap_or_default();
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
