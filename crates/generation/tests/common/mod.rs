#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;
use std::time::Duration;

use domain::user::{Role, UserId};
use generation::model::{Actor, CreateGeneration, GenerationParams, NewProviderAccount, Operation};
use generation::provider::ProviderRegistry;
use generation::{GenerationService, PipelineConfig};
use store::testing::{TestDatabase, fresh_database};

pub struct Env {
    pub db: TestDatabase,
    pub svc: GenerationService,
    pub user: Actor,
    pub admin: Actor,
}

pub fn fast_config() -> PipelineConfig {
    let dir = std::env::temp_dir().join(format!("pixsim-gen-{}", uuid::Uuid::new_v4().simple()));
    let mut cfg = PipelineConfig::new(dir);
    cfg.lease = Duration::from_secs(5);
    cfg.heartbeat = Duration::from_millis(500);
    cfg.idle_poll = Duration::from_millis(50);
    cfg.reclaim_interval = Duration::from_millis(200);
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    cfg.account_wait = Duration::from_millis(20);
    cfg.rate_limit_cooldown = Duration::from_secs(60);
    cfg.guard.allow_private = true;
    cfg.providers
        .set("pixverse", "poll_interval_secs", 0.02)
        .set("pixverse", "request_timeout_secs", 2)
        .set("openai", "poll_interval_secs", 0.02)
        .set("openai", "request_timeout_secs", 2)
        .set("replicate", "poll_interval_secs", 0.02)
        .set("replicate", "request_timeout_secs", 2);
    cfg
}

pub async fn user(db: &TestDatabase, role: Role) -> UserId {
    let email = format!("{}@example.test", uuid::Uuid::new_v4().simple());
    store::users::create(
        &db.pool,
        store::users::NewUser {
            email: &email,
            password_hash: "x",
            display_name: None,
            role,
        },
    )
    .await
    .unwrap()
    .id
}

pub async fn env_with(cfg: PipelineConfig, registry: Option<ProviderRegistry>) -> Env {
    let db = fresh_database().await.unwrap();
    let registry = match registry {
        Some(r) => r,
        None => GenerationService::default_providers(&cfg).unwrap(),
    };
    let svc = GenerationService::with_providers(db.pool.clone(), cfg, registry).unwrap();
    let user = Actor::user(user(&db, Role::User).await);
    let admin = Actor::admin(user_id_admin(&db).await);
    Env {
        db,
        svc,
        user,
        admin,
    }
}

async fn user_id_admin(db: &TestDatabase) -> UserId {
    user(db, Role::Admin).await
}

/// `cfg` with its Pixverse base URL at a fake (server configuration: accounts have no
/// base URL of their own).
pub fn pixverse_at(mut cfg: PipelineConfig, base: &str) -> PipelineConfig {
    cfg.providers.set("pixverse", "base_url", base);
    cfg
}

/// `cfg` with its OpenAI base URL at a fake's `/v1`, taking jobs although the
/// provider is retired (the fake still serves its contract).
pub fn openai_at(mut cfg: PipelineConfig, base: &str) -> PipelineConfig {
    cfg.providers
        .set("openai", "base_url", format!("{base}/v1"))
        .set("openai", "accept_jobs", true);
    cfg
}

/// `cfg` with its Replicate base URL at a fake's `/v1`.
pub fn replicate_at(mut cfg: PipelineConfig, base: &str) -> PipelineConfig {
    cfg.providers
        .set("replicate", "base_url", format!("{base}/v1"));
    cfg
}

pub async fn env() -> Env {
    env_with(fast_config(), None).await
}

/// The default providers plus extra ones.
pub fn registry_with(
    cfg: &PipelineConfig,
    extra: Vec<Arc<dyn generation::provider::Provider>>,
) -> ProviderRegistry {
    let mut r = GenerationService::default_providers(cfg).unwrap();
    for p in extra {
        r.register(p);
    }
    r
}

pub fn t2v(provider: &str, prompt: &str) -> CreateGeneration {
    CreateGeneration {
        provider: Some(provider.into()),
        operation: Some(Operation::TextToVideo),
        params: GenerationParams {
            prompt: Some(prompt.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn account(provider: &str, key: &str) -> NewProviderAccount {
    NewProviderAccount {
        provider: provider.into(),
        label: format!("{provider} test"),
        api_key: key.into(),
        shared: true,
        priority: 0,
        credits: None,
        max_concurrent_jobs: Some(2),
        daily_limit: None,
    }
}
