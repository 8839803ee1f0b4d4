//! [`GenerationService`]: the facade the REST layer, the sim bridge and the workers use.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::PgPool;
use store::StoreError;
use store::generation::accounts::{self, AccountPatch, NewAccount};
use store::generation::assets::{self, AssetRow, Completion, NewAsset};
use store::generation::jobs::{self, InsertOutcome, JobFilter, JobRow, NewJob, Transition};
use store::generation::submissions;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::batch::{Batcher, CallError};
use crate::cluster::{Message, Outbox, RedisBridge, StartError};
use crate::config::PipelineConfig;
use crate::download::Downloader;
use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::guard::Guard;
use crate::incoming::Incoming;
use crate::media::MediaStore;
use crate::model::{
    AccountStatus, Actor, Asset, AssetFilter, AssetLineage, AssetOrigin, CreateGeneration,
    Generation, GenerationFilter, GenerationParams, InputRef, JobStatus, NewProviderAccount,
    Operation, Page, ParamIssue, ProviderAccount, ProviderAccountPatch, Submission,
    ValidationReport,
};
use crate::params::{InputInfo, Issues, check_inputs, params_hash};
use crate::provider::local::LocalProvider;
use crate::provider::openai::OpenAiProvider;
use crate::provider::pixverse::PixverseProvider;
use crate::provider::{Credentials, ProviderError, ProviderRegistry};
use crate::secrets;
use crate::worker::Worker;

/// State shared by the service and its workers.
pub(crate) struct Shared {
    pub pool: PgPool,
    pub cfg: PipelineConfig,
    pub providers: ProviderRegistry,
    pub media: MediaStore,
    pub downloader: Downloader,
    pub events: broadcast::Sender<GenerationEvent>,
    pub wake: Notify,
    /// This node's id in cross-node messages.
    pub node_id: Uuid,
    /// Set once Redis is connected (see [`crate::cluster`]).
    pub outbox: OnceLock<Arc<Outbox>>,
    /// Cross-node messages dropped because Redis could not keep up.
    pub redis_dropped: AtomicU64,
    /// Attempts running in this process: job id → (attempt, its stop signal).
    pub running: Mutex<HashMap<Uuid, (i32, Arc<Notify>)>>,
    /// Workers of this process waiting for work right now.
    pub idle_workers: AtomicUsize,
    /// Group commit of keyless creates and of completions (started on first use).
    pub creates: OnceLock<CreateBatcher>,
    pub completions: OnceLock<CompleteBatcher>,
}

pub(crate) type CreateBatcher = Batcher<(NewJob, Option<i64>), Result<InsertOutcome, StoreError>>;
pub(crate) type CompleteBatcher =
    Batcher<Completion, Result<Option<(JobRow, AssetRow)>, StoreError>>;

impl Shared {
    /// Emits an event of this node: on the local broadcast and, with Redis, to the
    /// other nodes.
    pub fn emit(&self, ev: GenerationEvent) {
        if let Some(o) = self.outbox.get() {
            o.send(
                self,
                Message::Event {
                    event: Box::new(ev.clone()),
                },
            );
        }
        // No subscribers is fine.
        let _ = self.events.send(ev);
    }

    /// Wakes the idle workers of this process.
    pub fn wake_local(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    /// A job became due: wakes the workers of this process and, with Redis, of every
    /// node.
    pub fn signal_work(&self) {
        self.wake_local();
        if let Some(o) = self.outbox.get() {
            o.wake();
        }
    }

    /// Stops the attempt of `job` running in this process, if any (it was cancelled).
    pub fn stop_running(&self, job: Uuid) {
        if let Ok(r) = self.running.lock()
            && let Some((_, stop)) = r.get(&job)
        {
            stop.notify_one();
        }
    }

    /// Registers a running attempt; its stop signal fires on cancel.
    pub fn register_running(&self, job: Uuid, attempt: i32) -> Arc<Notify> {
        let stop = Arc::new(Notify::new());
        if let Ok(mut r) = self.running.lock() {
            r.insert(job, (attempt, stop.clone()));
        }
        stop
    }

    /// Inserts a keyless job together with the others being created right now (one
    /// statement for all; see [`crate::batch`]).
    pub async fn insert_job(
        &self,
        job: NewJob,
        limit: Option<i64>,
    ) -> Result<InsertOutcome, StoreError> {
        let batcher = self.creates.get_or_init(|| {
            let pool = self.pool.clone();
            Batcher::start(self.cfg.write_batch, self.cfg.write_slots, move |batch| {
                let pool = pool.clone();
                async move {
                    let (jobs, limits): (Vec<NewJob>, Vec<Option<i64>>) = batch.into_iter().unzip();
                    match jobs::insert_batch(&pool, &jobs, &limits).await {
                        Ok(out) => out.into_iter().map(Ok).collect(),
                        Err(e) => {
                            // One bad row fails the statement: write each alone.
                            tracing::debug!("batched create failed, writing one by one: {e}");
                            let mut out = Vec::with_capacity(jobs.len());
                            for (job, limit) in jobs.iter().zip(limits) {
                                out.push(jobs::insert(&pool, job, limit).await);
                            }
                            out
                        }
                    }
                }
            })
        });
        match batcher.call((job, limit)).await {
            Ok(r) => r,
            Err(CallError::Unsent((job, limit))) => jobs::insert(&self.pool, &job, limit).await,
            Err(CallError::Lost) => Err(StoreError::Corrupt(
                "the batched create was interrupted".into(),
            )),
        }
    }

    /// Completes a job attempt together with the others completing right now (one
    /// statement for all; see [`crate::batch`]).
    pub async fn complete_job(
        &self,
        c: Completion,
    ) -> Result<Option<(JobRow, AssetRow)>, StoreError> {
        let batcher = self.completions.get_or_init(|| {
            let pool = self.pool.clone();
            Batcher::start(self.cfg.write_batch, self.cfg.write_slots, move |batch| {
                let pool = pool.clone();
                async move {
                    match assets::complete_jobs(&pool, &batch).await {
                        Ok(out) => out.into_iter().map(Ok).collect(),
                        Err(e) => {
                            tracing::debug!("batched completion failed, writing one by one: {e}");
                            let mut out = Vec::with_capacity(batch.len());
                            for c in &batch {
                                out.push(
                                    assets::complete_jobs(&pool, std::slice::from_ref(c))
                                        .await
                                        .map(|mut v| v.pop().flatten()),
                                );
                            }
                            out
                        }
                    }
                }
            })
        });
        match batcher.call(c).await {
            Ok(r) => r,
            Err(CallError::Unsent(c)) => {
                assets::complete_jobs(&self.pool, std::slice::from_ref(&c))
                    .await
                    .map(|mut v| v.pop().flatten())
            }
            // Unknown: the lease will expire and the job be reclaimed if nothing was written.
            Err(CallError::Lost) => Ok(None),
        }
    }

    pub fn unregister_running(&self, job: Uuid, stop: &Arc<Notify>) {
        if let Ok(mut r) = self.running.lock()
            && r.get(&job).is_some_and(|(_, s)| Arc::ptr_eq(s, stop))
        {
            r.remove(&job);
        }
    }
}

/// The pipeline's API. Cheap to clone.
#[derive(Clone)]
pub struct GenerationService {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for GenerationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationService")
            .field("providers", &self.shared.providers)
            .finish()
    }
}

/// A stored file to serve (the REST layer handles Range on it).
#[derive(Debug, Clone)]
pub struct AssetFile {
    pub asset: Asset,
    pub path: PathBuf,
    pub mime: String,
    pub size: u64,
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

fn page_limit(l: Option<u32>) -> u32 {
    l.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// The rules of an account's fields, for those given (create gives them all).
fn account_rules(
    issues: &mut Issues,
    label: Option<&str>,
    api_key: Option<&str>,
    max_concurrent_jobs: Option<i32>,
    daily_limit: Option<i32>,
) {
    if label.is_some_and(|l| l.trim().is_empty()) {
        issues.push("label", "required", "a label is required");
    }
    if api_key.is_some_and(|k| k.trim().is_empty()) {
        issues.push("api_key", "required", "an API key is required");
    }
    if max_concurrent_jobs.is_some_and(|m| !(0..=1000).contains(&m)) {
        issues.push("max_concurrent_jobs", "out_of_range", "0 to 1000");
    }
    if daily_limit.is_some_and(|m| m < 0) {
        issues.push("daily_limit", "out_of_range", "at least 0");
    }
}

/// A request that passed validation.
struct Checked {
    provider: String,
    operation: Operation,
    params: GenerationParams,
    inputs: Vec<InputRef>,
    hash: String,
    estimated_credits: i64,
    owner: Uuid,
}

impl GenerationService {
    /// The built-in providers: `local`, `pixverse` and `openai` (legacy), configured
    /// from `cfg`.
    pub fn default_providers(cfg: &PipelineConfig) -> Result<ProviderRegistry, GenerationError> {
        let mut r = ProviderRegistry::new();
        r.register(Arc::new(LocalProvider));
        let guard = Guard::new(cfg.guard.clone());
        r.register(Arc::new(
            PixverseProvider::new(cfg.pixverse.clone(), &guard)
                .map_err(|e| GenerationError::Io(std::io::Error::other(e)))?,
        ));
        r.register(Arc::new(
            OpenAiProvider::new(cfg.openai.clone(), &guard)
                .map_err(|e| GenerationError::Io(std::io::Error::other(e)))?,
        ));
        Ok(r)
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
        Ok(GenerationService {
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
                idle_workers: AtomicUsize::new(0),
                creates: OnceLock::new(),
                completions: OnceLock::new(),
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

    // ----- generations -----

    /// Validates a request. `report_reuse`: look up the asset a create would reuse (for
    /// validate; create's insert does that lookup itself, in the same statement).
    async fn check(
        &self,
        actor: Actor,
        req: &CreateGeneration,
        report_reuse: bool,
    ) -> Result<(ValidationReport, Option<Checked>), GenerationError> {
        let mut issues = Issues::default();
        let provider_id = req
            .provider
            .clone()
            .unwrap_or_else(|| self.shared.cfg.default_provider.clone());
        let provider = self.shared.providers.get(&provider_id);
        if provider.is_none() {
            issues.push(
                "provider",
                "unknown_provider",
                format!(
                    "unknown provider {provider_id:?}; known: {}",
                    self.shared.providers.ids().join(", ")
                ),
            );
        }
        if req.operation.is_none() {
            issues.push("operation", "required", "an operation is required");
        }
        if let Some(p) = req.priority
            && !(0..=10).contains(&p)
        {
            issues.push("priority", "out_of_range", "0 to 10");
        }
        if let Some(m) = req.max_retries
            && m > 20
        {
            issues.push("max_retries", "out_of_range", "at most 20");
        }
        if let Some(k) = &req.idempotency_key
            && (k.is_empty() || k.len() > 200)
        {
            issues.push("idempotency_key", "invalid_value", "1 to 200 characters");
        }
        if let Some(m) = &req.metadata
            && !m.is_object()
        {
            issues.push("metadata", "invalid_value", "must be an object");
        }
        // The owner of the job: the actor (inputs must be theirs, or any for admins).
        let owner = actor.user_id.0;
        if let Some(pid) = req.parent_generation_id {
            match jobs::get(&self.shared.pool, pid).await {
                Ok(j) if actor.may_see(j.user_id) => {}
                Ok(_) | Err(StoreError::NotFound(_)) => {
                    issues.push("parent_generation_id", "not_found", "no such generation")
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(aid) = req.preferred_account_id {
            match accounts::get(&self.shared.pool, aid).await {
                Ok(a)
                    if a.provider == provider_id
                        && (actor.is_admin || a.owner_id.is_none_or(|o| o == owner)) => {}
                Ok(_) | Err(StoreError::NotFound(_)) => issues.push(
                    "preferred_account_id",
                    "not_found",
                    format!("no {provider_id} account with this id"),
                ),
                Err(e) => return Err(e.into()),
            }
        }
        let ids: Vec<Uuid> = req.inputs.iter().map(|i| i.asset_id).collect();
        let found = if ids.is_empty() {
            Vec::new()
        } else {
            assets::get_many(&self.shared.pool, &ids)
                .await?
                .into_iter()
                .map(|r| r.fields)
                .collect()
        };
        let info: Vec<Option<InputInfo>> = req
            .inputs
            .iter()
            .map(|i| {
                found
                    .iter()
                    .find(|a| a.id == i.asset_id && actor.may_read_asset(a.owner_id))
                    .map(|a| InputInfo {
                        asset_id: a.id,
                        media_type: a.media_type,
                        content_hash: a.content_hash.clone(),
                    })
            })
            .collect();
        let mut checked = None;
        let mut canonical = None;
        let mut hash = None;
        let mut reusable_asset_id = None;
        if let (Some(p), Some(op)) = (provider, req.operation) {
            let inputs = check_inputs(&mut issues, op, &req.inputs, &info, p.max_inputs(op));
            let params = p.validate(op, &req.params, &inputs, &mut issues);
            if p.requires_account()
                && !accounts::any_could_qualify(&self.shared.pool, &provider_id, owner).await?
            {
                issues.push(
                    "provider",
                    "no_account_available",
                    format!("no {provider_id} account can run jobs for this user"),
                );
            }
            if issues.is_empty() {
                let h = params_hash(&provider_id, op, &params, &inputs, &info);
                if report_reuse && !req.force_new {
                    reusable_asset_id = jobs::find_reusable(&self.shared.pool, owner, &h)
                        .await?
                        .and_then(|j| j.asset_id);
                }
                canonical = serde_json::to_value(&params).ok();
                hash = Some(h.clone());
                checked = Some(Checked {
                    provider: provider_id.clone(),
                    operation: op,
                    estimated_credits: p.estimated_credits(op, &params),
                    params,
                    inputs,
                    hash: h,
                    owner,
                });
            }
        }
        let report = ValidationReport {
            valid: issues.is_empty(),
            provider: provider_id,
            operation: req.operation,
            canonical_params: canonical,
            params_hash: hash,
            issues: issues.0,
            reusable_asset_id,
        };
        Ok((report, checked))
    }

    /// Validates a request exactly as [`Self::create`] would, without creating.
    pub async fn validate(
        &self,
        actor: Actor,
        req: &CreateGeneration,
    ) -> Result<ValidationReport, GenerationError> {
        Ok(self.check(actor, req, true).await?.0)
    }

    /// Creates a job (or returns the job already holding the idempotency key). With the
    /// same parameter hash as a completed job of the user and not `force_new`, the new
    /// job is created completed with that asset (`reused_from` set), paying nothing.
    /// The key lookup, the reuse lookup and the insert are one statement (one round
    /// trip; with a per-user limit, inside a transaction holding the user's lock).
    ///
    /// Errors: `invalid_parameters`, `no_account_available`, `limit_exceeded`,
    /// `conflict` (idempotency key reused with other parameters).
    pub async fn create(
        &self,
        actor: Actor,
        req: CreateGeneration,
    ) -> Result<Generation, GenerationError> {
        let (report, checked) = self.check(actor, &req, false).await?;
        let Some(c) = checked else {
            if report
                .issues
                .iter()
                .any(|i| i.code == "no_account_available")
                && report.issues.len() == 1
            {
                return Err(GenerationError::NoAccountAvailable(report.provider));
            }
            return Err(GenerationError::InvalidParameters(report.issues));
        };
        let new = NewJob {
            id: Uuid::now_v7(),
            user_id: c.owner,
            provider: c.provider,
            operation: c.operation,
            params: serde_json::to_value(&c.params)
                .map_err(|e| GenerationError::Conflict(e.to_string()))?,
            inputs: serde_json::to_value(&c.inputs)
                .map_err(|e| GenerationError::Conflict(e.to_string()))?,
            params_hash: c.hash.clone(),
            priority: req.priority.unwrap_or(5),
            scheduled_at: req.scheduled_at,
            idempotency_key: req.idempotency_key.clone(),
            force_new: req.force_new,
            preferred_account_id: req.preferred_account_id,
            parent_generation_id: req.parent_generation_id,
            max_retries: req
                .max_retries
                .map(|m| m as i32)
                .unwrap_or(self.shared.cfg.max_retries as i32),
            metadata: req
                .metadata
                .clone()
                .unwrap_or_else(|| serde_json::json!({})),
            estimated_credits: c.estimated_credits,
        };
        let limit = if actor.is_admin {
            None
        } else {
            self.shared.cfg.user_active_limit
        };
        let inserted = if new.idempotency_key.is_some() {
            jobs::insert(&self.shared.pool, &new, limit).await?
        } else {
            self.shared.insert_job(new, limit).await?
        };
        match inserted {
            InsertOutcome::Created(row) => {
                let g: Generation = row.try_into()?;
                tracing::info!(
                    job_id = %g.id,
                    user_id = %g.user_id.0,
                    provider = %g.provider,
                    operation = g.operation.as_str(),
                    status = g.status.as_str(),
                    "job created"
                );
                self.shared.emit(GenerationEvent::JobCreated {
                    generation: g.clone(),
                });
                if g.status == JobStatus::Completed {
                    if let Some(aid) = g.asset_id {
                        let asset: Asset = assets::get(&self.shared.pool, aid).await?.try_into()?;
                        self.shared.emit(GenerationEvent::JobCompleted {
                            generation: g.clone(),
                            asset,
                        });
                    }
                } else {
                    self.shared.signal_work();
                }
                Ok(g)
            }
            InsertOutcome::Existing(row) => {
                if row.params_hash != c.hash {
                    return Err(GenerationError::Conflict(
                        "the idempotency key was used with other parameters".into(),
                    ));
                }
                Ok(row.try_into()?)
            }
            InsertOutcome::LimitExceeded { active } => Err(GenerationError::LimitExceeded {
                active,
                limit: limit.unwrap_or(0),
            }),
        }
    }

    /// Creates a job from a scene node's generation spec (`operation`, `prompt`, free-form
    /// `params`, which may also name `provider`, `priority`, `idempotency_key` and
    /// `inputs`; see [`spec_request`]). `metadata` travels with the job and its events
    /// (e.g. scene and node ids).
    pub async fn create_from_spec(
        &self,
        actor: Actor,
        spec: &domain::narrative::scene::GenerationSpec,
        metadata: serde_json::Value,
    ) -> Result<Generation, GenerationError> {
        let mut req = spec_request(spec)?;
        req.metadata = Some(metadata);
        self.create(actor, req).await
    }

    async fn visible_job(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        let row = jobs::get(&self.shared.pool, id).await?;
        if !actor.may_see(row.user_id) {
            return Err(GenerationError::NotFound("generation"));
        }
        Ok(row.try_into()?)
    }

    pub async fn get(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        self.visible_job(actor, id).await
    }

    /// Newest first. Users see their own jobs; admins all (or `filter.user_id`'s).
    pub async fn list(
        &self,
        actor: Actor,
        filter: &GenerationFilter,
    ) -> Result<Page<Generation>, GenerationError> {
        let limit = page_limit(filter.limit);
        let user_id = if actor.is_admin {
            filter.user_id
        } else {
            Some(actor.user_id.0)
        };
        let f = JobFilter {
            user_id,
            statuses: filter.status.clone(),
            provider: filter.provider.clone(),
            operation: filter.operation,
            created_after: filter.created_after,
            created_before: filter.created_before,
            before: None,
            offset: filter.offset as i64,
            limit: limit as i64,
        };
        let (rows, total) = jobs::list(&self.shared.pool, &f).await?;
        let items = rows
            .into_iter()
            .map(Generation::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            total,
            offset: filter.offset,
            limit,
        })
    }

    /// The provider submissions of a job (one per attempt at most).
    pub async fn submissions(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<Vec<Submission>, GenerationError> {
        self.visible_job(actor, id).await?;
        Ok(submissions::list_for_job(&self.shared.pool, id)
            .await?
            .into_iter()
            .map(Submission::from)
            .collect())
    }

    async fn transition(
        &self,
        actor: Actor,
        id: Uuid,
        t: Transition,
    ) -> Result<Generation, GenerationError> {
        self.visible_job(actor, id).await?;
        let g: Generation = jobs::transition(&self.shared.pool, id, t)
            .await?
            .try_into()?;
        if t == Transition::Cancel {
            // The attempt running it (here or, through Redis, on another node) stops now
            // instead of at its next heartbeat.
            self.shared.stop_running(id);
            if let Some(o) = self.shared.outbox.get() {
                o.send(&self.shared, Message::Cancel { job_id: id });
            }
            self.shared.emit(GenerationEvent::JobFailed {
                generation: g.clone(),
            });
        } else {
            self.shared.emit(GenerationEvent::JobUpdated {
                generation: g.clone(),
            });
        }
        if matches!(t, Transition::Resume | Transition::Retry) {
            self.shared.signal_work();
        }
        Ok(g)
    }

    /// pending, paused or processing → cancelled, once: the account slot is given back
    /// at once, the running attempt stops polling (at once in this process or, with
    /// Redis, on any node; else at its next heartbeat), asks the provider to stop where
    /// its contract has a call for it, and writes nothing more, even if the provider
    /// finishes meanwhile.
    pub async fn cancel(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        self.transition(actor, id, Transition::Cancel).await
    }

    /// pending → paused.
    pub async fn pause(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        self.transition(actor, id, Transition::Pause).await
    }

    /// paused → pending.
    pub async fn resume(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        self.transition(actor, id, Transition::Resume).await
    }

    /// failed or cancelled → pending, retries reset. Like [`Self::create`], refused with
    /// [`GenerationError::LimitExceeded`] when the user (not an admin) already has
    /// `user_active_limit` unfinished jobs.
    pub async fn retry(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        let limit = if actor.is_admin {
            None
        } else {
            self.shared.cfg.user_active_limit
        };
        let Some(limit) = limit else {
            return self.transition(actor, id, Transition::Retry).await;
        };
        let job = self.visible_job(actor, id).await?;
        let g: Generation =
            match jobs::retry_within_limit(&self.shared.pool, id, job.user_id.0, limit).await? {
                jobs::RetryOutcome::Retried(row) => (*row).try_into()?,
                jobs::RetryOutcome::LimitExceeded { active } => {
                    return Err(GenerationError::LimitExceeded { active, limit });
                }
            };
        self.shared.emit(GenerationEvent::JobUpdated {
            generation: g.clone(),
        });
        self.shared.signal_work();
        Ok(g)
    }

    /// Deletes a job that is not processing (its asset stays).
    pub async fn delete(&self, actor: Actor, id: Uuid) -> Result<(), GenerationError> {
        self.visible_job(actor, id).await?;
        jobs::delete(&self.shared.pool, id).await?;
        Ok(())
    }

    // ----- provider accounts -----

    /// Creates an account. Users own theirs; admins may create shared ones.
    pub async fn create_account(
        &self,
        actor: Actor,
        new: NewProviderAccount,
    ) -> Result<ProviderAccount, GenerationError> {
        if new.shared && !actor.is_admin {
            return Err(GenerationError::Forbidden(
                "only admins create shared accounts",
            ));
        }
        let mut issues = Issues::default();
        if self.shared.providers.get(&new.provider).is_none() {
            issues.push("provider", "unknown_provider", "unknown provider");
        }
        account_rules(
            &mut issues,
            Some(&new.label),
            Some(&new.api_key),
            new.max_concurrent_jobs,
            new.daily_limit,
        );
        if !issues.is_empty() {
            return Err(GenerationError::InvalidParameters(issues.0));
        }
        let id = Uuid::now_v7();
        let row = accounts::create(
            &self.shared.pool,
            &NewAccount {
                id,
                api_key_hint: secrets::hint(&new.api_key),
                api_key: self.shared.cfg.secret_key.seal(id, &new.api_key),
                provider: new.provider,
                label: new.label,
                owner_id: if new.shared {
                    None
                } else {
                    Some(actor.user_id.0)
                },
                status: AccountStatus::Active,
                priority: new.priority,
                credits: new.credits,
                max_concurrent_jobs: new.max_concurrent_jobs.unwrap_or(2),
                daily_limit: new.daily_limit,
            },
        )
        .await?;
        Ok(row.try_into()?)
    }

    /// Accounts the actor can see (own and shared; all for admins).
    pub async fn list_accounts(
        &self,
        actor: Actor,
        provider: Option<&str>,
    ) -> Result<Vec<ProviderAccount>, GenerationError> {
        let visible = if actor.is_admin {
            None
        } else {
            Some(actor.user_id.0)
        };
        accounts::list(&self.shared.pool, provider, visible)
            .await?
            .into_iter()
            .map(|r| ProviderAccount::try_from(r).map_err(GenerationError::from))
            .collect()
    }

    pub async fn get_account(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<ProviderAccount, GenerationError> {
        let row = accounts::get(&self.shared.pool, id).await?;
        if !(actor.is_admin || row.owner_id.is_none() || row.owner_id == Some(actor.user_id.0)) {
            return Err(GenerationError::NotFound("provider account"));
        }
        Ok(row.try_into()?)
    }

    async fn editable_account(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<store::generation::accounts::AccountRow, GenerationError> {
        let row = accounts::get(&self.shared.pool, id).await?;
        match row.owner_id {
            _ if actor.is_admin => Ok(row),
            Some(o) if o == actor.user_id.0 => Ok(row),
            None => Err(GenerationError::Forbidden(
                "only admins change shared accounts",
            )),
            Some(_) => Err(GenerationError::NotFound("provider account")),
        }
    }

    pub async fn update_account(
        &self,
        actor: Actor,
        id: Uuid,
        patch: ProviderAccountPatch,
    ) -> Result<ProviderAccount, GenerationError> {
        self.editable_account(actor, id).await?;
        // The rules create applies, to the fields given.
        let mut issues = Issues::default();
        account_rules(
            &mut issues,
            patch.label.as_deref(),
            patch.api_key.as_deref(),
            patch.max_concurrent_jobs,
            patch.daily_limit,
        );
        if !issues.is_empty() {
            return Err(GenerationError::InvalidParameters(issues.0));
        }
        let row = accounts::update(
            &self.shared.pool,
            id,
            &AccountPatch {
                label: patch.label,
                api_key: patch
                    .api_key
                    .map(|k| (self.shared.cfg.secret_key.seal(id, &k), secrets::hint(&k))),
                status: patch.status,
                priority: patch.priority,
                credits: patch.credits.map(Some),
                max_concurrent_jobs: patch.max_concurrent_jobs,
                daily_limit: patch.daily_limit.map(Some),
                cooldown_until: if patch.clear_cooldown {
                    Some(None)
                } else {
                    None
                },
            },
        )
        .await?;
        // A refilled or re-enabled account may unblock waiting jobs.
        self.shared.signal_work();
        Ok(row.try_into()?)
    }

    pub async fn delete_account(&self, actor: Actor, id: Uuid) -> Result<(), GenerationError> {
        self.editable_account(actor, id).await?;
        accounts::delete(&self.shared.pool, id).await?;
        Ok(())
    }

    /// Reads the account's balance from its provider's documented balance endpoint
    /// (Pixverse: monthly plus package credits) and records it in `credits`: at zero
    /// the account becomes `exhausted`, and an exhausted account with credits again
    /// `active`. Same permissions as changing the account.
    ///
    /// Errors: `unsupported` (the provider has no balance endpoint),
    /// `provider_refused` (the key was refused: the account is marked `error`),
    /// `provider_unavailable` (any other failure).
    pub async fn refresh_account(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<ProviderAccount, GenerationError> {
        let row = self.editable_account(actor, id).await?;
        let provider = self
            .shared
            .providers
            .get(&row.provider)
            .ok_or_else(|| GenerationError::UnknownProvider(row.provider.clone()))?;
        let creds = Credentials::open(&row, &self.shared.cfg.secret_key)
            .map_err(|e| GenerationError::ProviderRefused(e.public_message()))?;
        match provider.balance(&creds).await {
            Ok(Some(balance)) => {
                let row = accounts::set_balance(&self.shared.pool, id, balance).await?;
                // Credits may let waiting jobs run.
                self.shared.signal_work();
                Ok(row.try_into()?)
            }
            Ok(None) => Err(GenerationError::Unsupported(format!(
                "{} has no balance endpoint",
                row.provider
            ))),
            Err(e @ ProviderError::Auth { .. }) => {
                tracing::warn!(account_id = %id, "balance refresh refused: {e}");
                let msg = e.public_message();
                accounts::set_status(
                    &self.shared.pool,
                    id,
                    AccountStatus::Error,
                    Some(&msg),
                    None,
                )
                .await?;
                Err(GenerationError::ProviderRefused(msg))
            }
            Err(e) => {
                tracing::warn!(account_id = %id, "balance refresh failed: {e}");
                Err(GenerationError::ProviderUnavailable(e.public_message()))
            }
        }
    }

    /// Seals the provider API keys still stored in plaintext (rows written before keys
    /// were sealed). Run at startup; returns how many it sealed.
    pub async fn seal_stored_keys(&self) -> Result<usize, GenerationError> {
        let key = &self.shared.cfg.secret_key;
        let mut sealed = 0;
        for (id, plain) in accounts::unsealed_keys(&self.shared.pool).await? {
            if accounts::seal_key(&self.shared.pool, id, &plain, &key.seal(id, &plain)).await? {
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    // ----- assets -----

    /// Newest first; users see their own assets, admins all (or `filter.owner_id`'s).
    pub async fn list_assets(
        &self,
        actor: Actor,
        filter: &AssetFilter,
    ) -> Result<Page<Asset>, GenerationError> {
        let limit = page_limit(filter.limit);
        let owner = if actor.is_admin {
            filter.owner_id
        } else {
            Some(actor.user_id.0)
        };
        let (rows, total) = assets::list(
            &self.shared.pool,
            &store::generation::assets::AssetFilter {
                owner_id: owner,
                media_type: filter.media_type,
                origin: filter.origin,
                provider: filter.provider.clone(),
                source_generation_id: filter.source_generation_id,
                content_hash: filter.content_hash.clone(),
                offset: filter.offset as i64,
                limit: limit as i64,
            },
        )
        .await?;
        Ok(Page {
            items: rows
                .into_iter()
                .map(Asset::try_from)
                .collect::<Result<Vec<_>, _>>()?,
            total,
            offset: filter.offset,
            limit,
        })
    }

    async fn visible_asset_row(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<store::generation::assets::AssetRow, GenerationError> {
        let row = assets::get(&self.shared.pool, id).await?;
        if !actor.may_read_asset(row.fields.owner_id) {
            return Err(GenerationError::NotFound("asset"));
        }
        Ok(row)
    }

    pub async fn get_asset(&self, actor: Actor, id: Uuid) -> Result<Asset, GenerationError> {
        Ok(self.visible_asset_row(actor, id).await?.try_into()?)
    }

    /// The file of an asset, for `GET /assets/{id}/file` (serve it with Range support).
    pub async fn asset_file(&self, actor: Actor, id: Uuid) -> Result<AssetFile, GenerationError> {
        let row = self.visible_asset_row(actor, id).await?;
        let path = self.shared.media.path(&row.fields.path)?;
        let size = tokio::fs::metadata(&path).await?.len();
        let mime = row.fields.mime.clone();
        Ok(AssetFile {
            asset: row.try_into()?,
            path,
            mime,
            size,
        })
    }

    /// The PNG thumbnail of an asset, when it has one.
    pub async fn asset_thumbnail(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<AssetFile, GenerationError> {
        let row = self.visible_asset_row(actor, id).await?;
        let rel = row
            .fields
            .thumbnail_path
            .clone()
            .ok_or(GenerationError::NotFound("thumbnail"))?;
        let path = self.shared.media.path(&rel)?;
        let size = tokio::fs::metadata(&path).await?.len();
        Ok(AssetFile {
            asset: row.try_into()?,
            path,
            mime: "image/png".into(),
            size,
        })
    }

    /// Direct parents and children of an asset. Edges to assets the actor cannot see
    /// are left out.
    pub async fn asset_lineage(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<AssetLineage, GenerationError> {
        self.visible_asset_row(actor, id).await?;
        let (parents, children) = assets::lineage(&self.shared.pool, id).await?;
        let mut others: Vec<Uuid> = parents.iter().map(|e| e.parent_asset_id).collect();
        others.extend(children.iter().map(|e| e.child_asset_id));
        let visible: Vec<Uuid> = assets::get_many(&self.shared.pool, &others)
            .await?
            .into_iter()
            .filter(|a| actor.may_read_asset(a.fields.owner_id))
            .map(|a| a.fields.id)
            .collect();
        Ok(AssetLineage {
            asset_id: id,
            parents: parents
                .into_iter()
                .filter(|e| visible.contains(&e.parent_asset_id))
                .map(Into::into)
                .collect(),
            children: children
                .into_iter()
                .filter(|e| visible.contains(&e.child_asset_id))
                .map(Into::into)
                .collect(),
        })
    }

    /// Stores `bytes` as an asset of `actor` (see [`Self::upload_incoming`] for
    /// uploads that stream in).
    pub async fn upload_asset(
        &self,
        actor: Actor,
        bytes: &[u8],
        declared_mime: Option<&str>,
    ) -> Result<Asset, GenerationError> {
        let mut up = self.shared.media.incoming().await?;
        up.write(bytes).await?;
        self.upload_incoming(actor, up, declared_mime).await
    }

    /// Finishes an upload that was streamed into the media store (never held in
    /// memory): checks its size and content, moves it into place and records the
    /// asset. The caller enforces `max_upload_bytes` while it streams; this checks it
    /// again.
    pub async fn upload_incoming(
        &self,
        actor: Actor,
        mut up: Incoming,
        declared_mime: Option<&str>,
    ) -> Result<Asset, GenerationError> {
        let max = self.shared.cfg.max_upload_bytes;
        if up.size() > max {
            return Err(GenerationError::InvalidMedia(format!(
                "the file exceeds {max} bytes"
            )));
        }
        if up.size() == 0 {
            return Err(GenerationError::InvalidMedia("the file is empty".into()));
        }
        let got = up.finish().await?.ok_or_else(|| {
            GenerationError::InvalidMedia("not a known image, video or audio format".into())
        })?;
        let kind = got.kind;
        if let Some(d) = declared_mime {
            let top = d.split('/').next().unwrap_or("");
            let expected = kind.mime.split('/').next().unwrap_or("");
            if !d.is_empty() && d != "application/octet-stream" && top != expected {
                return Err(GenerationError::InvalidMedia(format!(
                    "declared {d} but the content is {}",
                    kind.mime
                )));
            }
        }
        let p = got.probe;
        let stored = up.commit(kind.ext).await?;
        let row = assets::insert(
            &self.shared.pool,
            &NewAsset {
                id: Uuid::now_v7(),
                owner_id: actor.user_id.0,
                media_type: kind.media_type,
                mime: kind.mime.into(),
                content_hash: stored.hash,
                size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
                width: p.width_i32(),
                height: p.height_i32(),
                duration_ms: p.duration_ms_i64(),
                path: stored.rel_path,
                thumbnail_path: None,
                origin: AssetOrigin::Uploaded,
                provider: None,
                remote_id: None,
                remote_url: None,
                source_generation_id: None,
                operation: None,
                prompt: None,
            },
        )
        .await?;
        let asset: Asset = row.try_into()?;
        self.shared.emit(GenerationEvent::AssetCreated {
            asset: asset.clone(),
        });
        Ok(asset)
    }
}

fn spec_issue(field: &str, e: impl std::fmt::Display) -> GenerationError {
    GenerationError::invalid(field, "invalid_value", e.to_string())
}

/// The create request a scene node's generation spec stands for: `params` are the
/// provider parameters, except `provider`, `priority`, `idempotency_key` and `inputs`,
/// which are taken out into the request's own fields; the prompt joins the parameters.
pub fn spec_request(
    spec: &domain::narrative::scene::GenerationSpec,
) -> Result<CreateGeneration, GenerationError> {
    let mut params = spec.params.clone();
    let provider = params
        .remove("provider")
        .and_then(|v| v.as_str().map(str::to_owned));
    let priority = params
        .remove("priority")
        .and_then(|v| v.as_i64())
        .map(|p| p as i16);
    let idempotency_key = params
        .remove("idempotency_key")
        .and_then(|v| v.as_str().map(str::to_owned));
    let inputs: Vec<InputRef> = match params.remove("inputs") {
        Some(v) => serde_json::from_value(v).map_err(|e| spec_issue("inputs", e))?,
        None => Vec::new(),
    };
    params.insert(
        "prompt".into(),
        serde_json::Value::String(spec.prompt.clone()),
    );
    let params: GenerationParams =
        serde_json::from_value(serde_json::Value::Object(params.into_iter().collect()))
            .map_err(|e| spec_issue("params", e))?;
    let operation = spec
        .operation
        .parse::<Operation>()
        .map_err(|e| spec_issue("operation", e))?;
    Ok(CreateGeneration {
        provider,
        operation: Some(operation),
        params,
        inputs,
        priority,
        idempotency_key,
        ..Default::default()
    })
}

/// Checks a scene node's generation spec without a database: its shape
/// ([`spec_request`]), that the provider (named, else `default_provider`) exists and that
/// its parameter rules hold. Input assets are checked only when the job is created.
/// Returns the problems as `field: message` lines (empty: fine).
pub fn check_spec(
    providers: &ProviderRegistry,
    default_provider: &str,
    spec: &domain::narrative::scene::GenerationSpec,
) -> Vec<String> {
    let req = match spec_request(spec) {
        Ok(r) => r,
        Err(GenerationError::InvalidParameters(issues)) => {
            return issues.iter().map(ParamIssue::to_string).collect();
        }
        Err(e) => return vec![e.to_string()],
    };
    let id = req.provider.as_deref().unwrap_or(default_provider);
    let Some(provider) = providers.get(id) else {
        return vec![format!(
            "provider: unknown provider {id:?}; known: {}",
            providers.ids().join(", ")
        )];
    };
    let Some(op) = req.operation else {
        return vec!["operation: an operation is required".into()];
    };
    let mut issues = Issues::default();
    provider.validate(op, &req.params, &req.inputs, &mut issues);
    issues.0.iter().map(ParamIssue::to_string).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(user: Uuid, i: u32) -> NewJob {
        NewJob {
            id: Uuid::now_v7(),
            user_id: user,
            provider: "local".into(),
            operation: Operation::TextToVideo,
            params: serde_json::json!({"prompt": format!("p{i}")}),
            inputs: serde_json::json!([]),
            params_hash: format!("h{i}"),
            priority: 5,
            scheduled_at: None,
            idempotency_key: None,
            force_new: false,
            preferred_account_id: None,
            parent_generation_id: None,
            max_retries: 3,
            metadata: serde_json::json!({}),
            estimated_credits: 0,
        }
    }

    /// One row the database refuses (a foreign key) fails the shared statement: every
    /// request is then written alone, so only that one fails.
    #[tokio::test]
    async fn a_refused_row_fails_alone_in_a_batch() {
        let db = store::testing::fresh_database().await.unwrap();
        let user = store::users::create(
            &db.pool,
            store::users::NewUser {
                email: "batch@example.test",
                password_hash: "x",
                display_name: None,
                role: domain::user::Role::User,
            },
        )
        .await
        .unwrap()
        .id;
        let dir = std::env::temp_dir().join(format!("pixsim-unit-{}", Uuid::new_v4().simple()));
        let svc = GenerationService::new(db.pool.clone(), PipelineConfig::new(&dir)).unwrap();
        let jobs: Vec<NewJob> = (0..12)
            .map(|i| {
                let mut j = job(user.0, i);
                if i == 5 {
                    j.parent_generation_id = Some(Uuid::now_v7());
                }
                j
            })
            .collect();
        let results =
            futures::future::join_all(jobs.into_iter().map(|j| svc.shared.insert_job(j, None)))
                .await;
        for (i, r) in results.into_iter().enumerate() {
            match (i, r) {
                (5, Err(StoreError::Db(_))) => {}
                (5, other) => panic!("{other:?}"),
                (_, Ok(InsertOutcome::Created(row))) => assert_eq!(row.status, JobStatus::Pending),
                (_, other) => panic!("{other:?}"),
            }
        }
    }
}
