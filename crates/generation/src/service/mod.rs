//! [`GenerationService`]: the facade the REST layer, the sim bridge and the workers
//! use. This file holds its construction and process-wide accessors; each concern is
//! a submodule adding methods to it: `jobs` (create, validate, list, cancel, retry, …),
//! `accounts` (provider accounts), `assets` (assets, files, uploads) and `spec` (scene
//! generation specs).

mod accounts;
mod assets;
pub(crate) mod budgets;
mod embeddings;
mod jobs;
pub mod library;
mod provider_webhooks;
mod providers;
pub mod queue;
pub use provider_webhooks::ProviderWebhook;
mod spec;

pub use assets::AssetFile;
pub use embeddings::{AssetSearch, SearchBy, SimilarAsset};
pub use providers::ProviderReachability;
pub use spec::{check_spec, spec_request};

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::PgPool;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::cluster::{RedisBridge, StartError};
use crate::config::PipelineConfig;
use crate::download::Downloader;
use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::guard::Guard;
use crate::media::MediaStore;
use crate::provider::ProviderRegistry;
use crate::shared::Shared;
use crate::worker::Worker;

/// The pipeline's API. Cheap to clone.
#[derive(Clone)]
pub struct GenerationService {
    pub(crate) shared: Arc<Shared>,
    /// The providers' cached reachability probes (`/health`).
    probes: Arc<providers::ProbeCache>,
}

impl std::fmt::Debug for GenerationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationService")
            .field("providers", &self.shared.providers)
            .finish()
    }
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// The page size of a list request: the default when not given, within bounds.
pub(crate) fn page_limit(l: Option<u32>) -> u32 {
    l.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

impl GenerationService {
    /// The built-in providers ([`crate::provider::BUILT_IN`]: `local`, `pixverse`,
    /// `replicate` and `openai` (retired)), each configured from its entry in
    /// `cfg.providers`.
    pub fn default_providers(cfg: &PipelineConfig) -> Result<ProviderRegistry, GenerationError> {
        let guard = Guard::new(cfg.guard.clone());
        Ok(ProviderRegistry::built_in(&cfg.providers, &guard)?)
    }

    /// A service with the built-in providers.
    pub fn new(pool: PgPool, cfg: PipelineConfig) -> Result<Self, GenerationError> {
        let providers = Self::default_providers(&cfg)?;
        Self::with_providers(pool, cfg, providers)
    }

    /// A service with the given providers.
    pub fn with_providers(
        pool: PgPool,
        cfg: PipelineConfig,
        providers: ProviderRegistry,
    ) -> Result<Self, GenerationError> {
        let downloader = Downloader::new(cfg.download.clone(), &Guard::new(cfg.guard.clone()))
            .map_err(|e| GenerationError::Io(std::io::Error::other(e)))?;
        let (events, _) = broadcast::channel(4096);
        let probes = Arc::new(providers::ProbeCache::new(&providers));
        Ok(GenerationService {
            probes,
            shared: Arc::new(Shared {
                pool,
                media: MediaStore::new(cfg.media_dir.clone()),
                cfg,
                providers,
                downloader,
                events,
                wake: Notify::new(),
                node_id: Uuid::new_v4(),
                outbox: OnceLock::new(),
                redis_dropped: AtomicU64::new(0),
                running: Mutex::new(HashMap::new()),
                polling: Mutex::new(HashMap::new()),
                queue_moved: Notify::new(),
                embedder: OnceLock::new(),
                webhook_keys: tokio::sync::Mutex::new(HashMap::new()),
                idle_workers: AtomicUsize::new(0),
                creates: OnceLock::new(),
                completions: OnceLock::new(),
                webhooks: Default::default(),
                budgets: Default::default(),
                transcodes: Default::default(),
            }),
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.shared.cfg
    }

    pub fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    pub fn media(&self) -> &MediaStore {
        &self.shared.media
    }

    pub fn providers(&self) -> &ProviderRegistry {
        &self.shared.providers
    }

    /// Receives every event of this process (job and asset events).
    pub fn subscribe(&self) -> broadcast::Receiver<GenerationEvent> {
        self.shared.events.subscribe()
    }

    /// The sender, to re-inject events received from other nodes.
    pub fn event_sender(&self) -> broadcast::Sender<GenerationEvent> {
        self.shared.events.clone()
    }

    /// Wakes idle workers of this process at once (creates, resumes and retries wake
    /// them already, and with [`Self::connect_redis`] those of every node).
    pub fn wake_workers(&self) {
        self.shared.wake_local();
    }

    /// Joins the nodes sharing this Redis (see [`crate::cluster`]): job wake-ups,
    /// events and cancels go to every node from now on. Returns at once; the bridge
    /// connects (and reconnects) in the background until `shutdown` resolves. Without
    /// it the service works alone, as a single node.
    ///
    /// Errors: `invalid_parameters` for an invalid URL, `conflict` when already
    /// connected.
    pub fn connect_redis(
        &self,
        url: &str,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<RedisBridge, GenerationError> {
        crate::cluster::start(self.shared.clone(), url, shutdown).map_err(|e| match e {
            StartError::AlreadyConnected => GenerationError::Conflict(e.to_string()),
            StartError::Url(_) => {
                GenerationError::invalid("redis_url", "invalid_value", e.to_string())
            }
        })
    }

    /// This node's id in cross-node messages.
    pub fn node_id(&self) -> Uuid {
        self.shared.node_id
    }

    /// Workers of this process waiting for work right now.
    pub fn idle_workers(&self) -> usize {
        self.shared.idle_workers.load(Ordering::Relaxed)
    }

    /// Job attempts running in this process right now.
    pub fn running_jobs(&self) -> usize {
        self.shared.running.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Cross-node messages dropped so far because Redis could not keep up.
    pub fn redis_dropped(&self) -> u64 {
        self.shared.redis_dropped.load(Ordering::Relaxed)
    }

    /// A worker with a unique id; see [`Worker::run`].
    pub fn worker(&self) -> Worker {
        Worker::new(self.shared.clone(), None)
    }

    /// A worker with a chosen id (tests, logs).
    pub fn worker_named(&self, id: impl Into<String>) -> Worker {
        Worker::new(self.shared.clone(), Some(id.into()))
    }
}
