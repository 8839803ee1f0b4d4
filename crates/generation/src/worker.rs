//! Workers: claim jobs from the durable queue, run them against their provider, store
//! the result and create the asset.
//!
//! Guarantees: a job is leased to one attempt at a time (`FOR UPDATE SKIP LOCKED` +
//! lease); a heartbeat keeps the lease, and every write is fenced by `(id, attempt,
//! owner)`, so an attempt that lost its lease (crash, pause, cancel) changes nothing.
//! A submission row is written before each provider submit, unique per attempt: one
//! submission per attempt at most. A new attempt first *adopts* an earlier attempt's
//! accepted, unfinished submission (polling it instead of paying again). An accepted
//! submission is charged the provider's price in the statement that records it; a
//! cancel stops the attempt through its stop signal (see [`Worker::execute`]).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use store::generation::accounts::{self, AccountRow};
use store::generation::assets::{self, Completion, NewAsset, NewEdge};
use store::generation::jobs::{self, Finish, JobRow};
use store::generation::submissions::{self, Ending};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::media::{probe, sniff};
use crate::model::{
    AccountStatus, Asset, AssetOrigin, Generation, GenerationParams, InputRef, JobStatus, Operation,
};
use crate::params::default_role;
use crate::provider::{
    Credentials, InputMedia, MediaResult, PollResult, Provider, ProviderError, RemoteInput,
    RemoteStatus, SubmitRequest, public_code,
};
use crate::service::Shared;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        asset_id: Uuid,
    },
    /// Terminal failure (also: retries spent).
    Failed {
        code: String,
    },
    /// Back in the queue (later attempt).
    Requeued {
        code: String,
    },
    /// The lease was lost (reclaimed, or cancelled without this process knowing):
    /// nothing was written.
    LeaseLost,
    /// The job was cancelled while this attempt ran: polling stopped, the provider was
    /// asked to stop where it can be, and nothing else was written.
    Cancelled,
}

/// What [`Worker::try_execute_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    Ran { job_id: Uuid, outcome: Outcome },
    EmptyQueue,
}

/// A job leased to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    row: JobRow,
}

impl ClaimedJob {
    pub fn id(&self) -> Uuid {
        self.row.id
    }
    pub fn attempt(&self) -> i32 {
        self.row.attempt
    }
}

/// One worker (many jobs at once in [`Worker::run`]). Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
    id: Arc<str>,
    in_flight: Arc<Mutex<HashSet<(Uuid, i32)>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("id", &self.id).finish()
    }
}

/// What one attempt runs with, once its account is chosen and its inputs loaded.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    provider: &'a dyn Provider,
    creds: Option<&'a Credentials>,
    account: Option<&'a AccountRow>,
    row: &'a JobRow,
    op: Operation,
    params: &'a GenerationParams,
    inputs: &'a [InputMedia],
}

enum Followed {
    Done(Outcome),
    /// The remote job is gone (adoption impossible): submit anew.
    Gone,
}

/// Counts a worker as idle while it lives.
struct IdleGuard<'a>(&'a AtomicUsize);

impl<'a> IdleGuard<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        IdleGuard(n)
    }
}

impl Drop for IdleGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A panic's message, for the log.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::rng().random_range(0.5..=1.0);
    d.mul_f64(f)
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>, id: Option<String>) -> Self {
        let id = id.unwrap_or_else(|| {
            format!(
                "worker-{}-{}",
                std::process::id(),
                &Uuid::new_v4().simple().to_string()[..8]
            )
        });
        Worker {
            shared,
            id: id.into(),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The lease owner name.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn emit_job(&self, row: JobRow, failed: bool) {
        match Generation::try_from(row) {
            Ok(g) => self.shared.emit(if failed {
                GenerationEvent::JobFailed { generation: g }
            } else {
                GenerationEvent::JobUpdated { generation: g }
            }),
            Err(e) => tracing::warn!("event for a corrupt job row: {e}"),
        }
    }

    /// Claims up to `n` due jobs (leased to this worker).
    pub async fn claim(&self, n: i64) -> Result<Vec<ClaimedJob>, GenerationError> {
        let rows = jobs::claim(&self.shared.pool, &self.id, self.shared.cfg.lease, n).await?;
        Ok(rows.into_iter().map(|row| ClaimedJob { row }).collect())
    }

    /// Returns jobs with expired leases to the queue (their account slots too).
    pub async fn reclaim_expired(&self) -> Result<usize, GenerationError> {
        let rows = jobs::reclaim_expired(&self.shared.pool).await?;
        let n = rows.len();
        for row in rows {
            tracing::info!(job_id = %row.id, attempt = row.attempt, "lease expired; job requeued");
            let failed = row.status == JobStatus::Failed;
            self.emit_job(row, failed);
        }
        Ok(n)
    }

    /// Claims one job and runs it to the end of its attempt (deterministic tests).
    pub async fn try_execute_once(&self) -> Result<Executed, GenerationError> {
        let mut claimed = self.claim(1).await?;
        match claimed.pop() {
            None => Ok(Executed::EmptyQueue),
            Some(job) => {
                let job_id = job.id();
                let outcome = self.execute(job).await;
                Ok(Executed::Ran { job_id, outcome })
            }
        }
    }

    /// Runs until `shutdown` resolves: claims jobs (woken at once by creates, resumes
    /// and retries in this process, or on any node through Redis; else every
    /// `idle_poll`), runs up to `worker_concurrency` at a time,
    /// reclaims expired leases every `reclaim_interval`. On shutdown, in-flight jobs get
    /// `shutdown_grace`, then are aborted and their leases released (a later attempt
    /// adopts their provider submissions).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let cfg = &self.shared.cfg;
        let sem = Arc::new(Semaphore::new(cfg.worker_concurrency.max(1)));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut last_reclaim: Option<Instant> = None;
        let mut last_reconcile: Option<Instant> = None;
        tracing::info!(worker = %self.id, "generation worker started");
        loop {
            if last_reclaim.is_none_or(|t| t.elapsed() >= cfg.reclaim_interval) {
                last_reclaim = Some(Instant::now());
                if let Err(e) = self.reclaim_expired().await {
                    tracing::warn!("reclaim failed: {e}");
                }
            }
            if last_reconcile.is_none_or(|t| t.elapsed() >= cfg.reconcile_interval) {
                last_reconcile = Some(Instant::now());
                match accounts::reconcile(&self.shared.pool).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!("repaired the slot counters of {n} accounts"),
                    Err(e) => tracing::warn!("account reconcile failed: {e}"),
                }
            }
            while tasks.try_join_next().is_some() {}
            // Register for wake-ups before looking at the queue, so none is missed.
            let notified = self.shared.wake.notified();
            let free = sem.available_permits();
            let mut full_batch = false;
            if free > 0 {
                let want = (free as i64).min(cfg.claim_batch.max(1));
                match self.claim(want).await {
                    Ok(jobs) => {
                        full_batch = jobs.len() as i64 == want;
                        for job in jobs {
                            let Ok(permit) = sem.clone().acquire_owned().await else {
                                break;
                            };
                            let w = self.clone();
                            tasks.spawn(async move {
                                let _permit = permit;
                                w.execute(job).await;
                            });
                        }
                    }
                    Err(e) => tracing::warn!("claim failed: {e}"),
                }
            }
            if full_batch && sem.available_permits() > 0 {
                continue;
            }
            let saturated = sem.available_permits() == 0;
            let _idle = (!saturated).then(|| IdleGuard::enter(&self.shared.idle_workers));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = notified => {
                    if !cfg.wake_coalesce.is_zero() {
                        tokio::time::sleep(cfg.wake_coalesce).await;
                    }
                }
                _ = tokio::time::sleep(cfg.idle_poll) => {}
                Some(_) = tasks.join_next(), if saturated => {}
            }
        }
        tracing::info!(worker = %self.id, in_flight = tasks.len(), "generation worker stopping");
        let grace = tokio::time::sleep(cfg.shutdown_grace);
        let mut grace = std::pin::pin!(grace);
        loop {
            tokio::select! {
                r = tasks.join_next() => if r.is_none() { break },
                _ = &mut grace => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let left: Vec<(Uuid, i32)> = match self.in_flight.lock() {
            Ok(mut s) => s.drain().collect(),
            Err(_) => Vec::new(),
        };
        for (id, attempt) in left {
            let how = Finish::Requeue {
                delay: Duration::ZERO,
                count_retry: false,
                code: "worker_shutdown".into(),
                message: "the worker stopped; the job was handed back".into(),
            };
            match jobs::finish(&self.shared.pool, id, attempt, &self.id, &how).await {
                Ok(Some(row)) => self.emit_job(row, false),
                Ok(None) => {}
                Err(e) => tracing::warn!(job_id = %id, "could not release the lease: {e}"),
            }
        }
    }

    async fn heartbeat_until_lost(&self, id: Uuid, attempt: i32) {
        let cfg = &self.shared.cfg;
        loop {
            tokio::time::sleep(cfg.heartbeat).await;
            match jobs::heartbeat(&self.shared.pool, id, attempt, &self.id, cfg.lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(job_id = %id, "heartbeat failed: {e}"),
            }
        }
    }

    /// Runs one claimed attempt to its end (while heartbeating its lease). A cancel of
    /// the job stops it at once (see [`crate::GenerationService::cancel`]). Every line
    /// of the attempt carries `job_id`, `attempt` and `provider` (and `account_id` once
    /// an account is reserved) from its span, so the admin log finds a job's whole life
    /// by `job_id`.
    pub async fn execute(&self, job: ClaimedJob) -> Outcome {
        let span = tracing::info_span!(
            "job",
            job_id = %job.row.id,
            attempt = job.row.attempt,
            provider = %job.row.provider,
            account_id = tracing::field::Empty,
        );
        tracing::Instrument::instrument(self.execute_in_span(job), span).await
    }

    async fn execute_in_span(&self, job: ClaimedJob) -> Outcome {
        let row = job.row;
        tracing::info!(worker = %self.id, "attempt started");
        let key = (row.id, row.attempt);
        if let Ok(mut s) = self.in_flight.lock() {
            s.insert(key);
        }
        let stop = self.shared.register_running(row.id, row.attempt);
        self.emit_job(row.clone(), false);
        let timeout = self.shared.cfg.job_timeout;
        // A panic in the attempt (a bug) fails the job at once, instead of leaving it
        // leased until its lease expires.
        let attempt =
            futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(self.process(&row)));
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, attempt) => match r {
                Ok(Ok(Ok(o))) => o,
                Ok(Err(panic)) => self.panicked(&row, &panic_text(&*panic)).await,
                Ok(Ok(Err(e))) => {
                    tracing::warn!(job_id = %row.id, "attempt failed internally: {e}");
                    self.requeue(&row, true, "internal", &e.to_string(), None).await
                }
                Err(_) => {
                    self.requeue(&row, true, "timeout", "the attempt exceeded the job timeout", None)
                        .await
                }
            },
            _ = self.heartbeat_until_lost(row.id, row.attempt) => {
                // Cancelled elsewhere without a signal reaching this process?
                match jobs::get(&self.shared.pool, row.id).await {
                    Ok(now) if now.status == JobStatus::Cancelled && now.attempt == row.attempt => {
                        self.stop_remote(&row).await;
                        Outcome::Cancelled
                    }
                    _ => Outcome::LeaseLost,
                }
            }
            _ = stop.notified() => {
                self.stop_remote(&row).await;
                Outcome::Cancelled
            }
        };
        self.shared.unregister_running(row.id, &stop);
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(&key);
        }
        tracing::info!(?outcome, "attempt ended");
        outcome
    }

    /// After a panic in an attempt: fails the job for good (which releases its account
    /// slot) and closes its open submission. The panic's text goes to the log only.
    async fn panicked(&self, row: &JobRow, what: &str) -> Outcome {
        tracing::error!(job_id = %row.id, attempt = row.attempt, "the attempt panicked: {what}");
        let msg = "the attempt stopped on an internal error";
        let outcome = self.fail(row, "internal_panic", msg).await;
        if matches!(outcome, Outcome::Failed { .. }) {
            let pool = &self.shared.pool;
            let closed = match submissions::open_for_attempt(pool, row.id, row.attempt).await {
                Ok(Some(sub)) => submissions::finish(
                    pool,
                    sub.id,
                    Ending {
                        status: "failed",
                        error_class: Some("internal"),
                        error_code: Some("internal_panic"),
                        error_message: Some(msg),
                        refund: false,
                    },
                )
                .await
                .map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = closed {
                tracing::warn!(job_id = %row.id, "cannot close the panicked submission: {e}");
            }
        }
        outcome
    }

    /// After a cancel: asks the provider to stop the attempt's submission (where its
    /// contract has a call for it) and closes the submission as cancelled. The job row
    /// and the account slot were settled by the cancel itself.
    async fn stop_remote(&self, row: &JobRow) {
        let pool = &self.shared.pool;
        let sub = match submissions::open_for_attempt(pool, row.id, row.attempt).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(job_id = %row.id, "cannot look up the cancelled submission: {e}");
                return;
            }
        };
        let mut note = "cancelled before the provider accepted it".to_owned();
        if let (Some(provider), Some(remote_id)) = (
            self.shared.providers.get(&row.provider),
            sub.remote_id.as_deref(),
        ) {
            let account = match sub.account_id {
                Some(a) => accounts::get(pool, a).await.ok(),
                None => None,
            };
            let creds = account
                .as_ref()
                .and_then(|a| Credentials::open(a, &self.shared.cfg.secret_key).ok());
            note = match provider.cancel(creds.as_ref(), remote_id).await {
                Ok(true) => "cancelled; the provider was asked to stop".into(),
                Ok(false) => "cancelled; the provider has no call to stop it".into(),
                Err(e) => {
                    tracing::warn!(job_id = %row.id, remote_id, "provider cancel failed: {e}");
                    format!(
                        "cancelled; the provider's cancel failed: {}",
                        e.public_message()
                    )
                }
            };
        }
        if let Err(e) = submissions::finish(
            pool,
            sub.id,
            Ending::plain("cancelled", Some("cancelled"), Some(&note)),
        )
        .await
        {
            tracing::warn!(job_id = %row.id, "cannot close the cancelled submission: {e}");
        }
    }

    async fn end(&self, row: &JobRow, how: Finish) -> Outcome {
        match jobs::finish(&self.shared.pool, row.id, row.attempt, &self.id, &how).await {
            Ok(Some(r)) => {
                let failed = r.status == JobStatus::Failed;
                let code = r.error_code.clone().unwrap_or_default();
                self.emit_job(r, failed);
                if failed {
                    Outcome::Failed { code }
                } else {
                    Outcome::Requeued { code }
                }
            }
            Ok(None) => Outcome::LeaseLost,
            Err(e) => {
                // The lease will expire and the job be reclaimed.
                tracing::warn!(job_id = %row.id, "could not finish the attempt: {e}");
                Outcome::LeaseLost
            }
        }
    }

    async fn fail(&self, row: &JobRow, code: &str, message: &str) -> Outcome {
        self.end(
            row,
            Finish::Fail {
                code: code.into(),
                message: message.into(),
            },
        )
        .await
    }

    async fn requeue(
        &self,
        row: &JobRow,
        count_retry: bool,
        code: &str,
        message: &str,
        delay: Option<Duration>,
    ) -> Outcome {
        let cfg = &self.shared.cfg;
        let delay = delay.unwrap_or_else(|| {
            let exp = cfg
                .backoff_base
                .saturating_mul(1u32 << row.retry_count.clamp(0, 16));
            jitter(exp.min(cfg.backoff_max))
        });
        self.end(
            row,
            Finish::Requeue {
                delay,
                count_retry,
                code: code.into(),
                message: message.into(),
            },
        )
        .await
    }

    async fn load_inputs(
        &self,
        refs: &[InputRef],
        op: Operation,
    ) -> Result<Vec<InputMedia>, String> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = refs.iter().map(|r| r.asset_id).collect();
        let rows: Vec<_> = assets::get_many(&self.shared.pool, &ids)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| r.fields)
            .collect();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let a = rows
                .iter()
                .find(|a| a.id == r.asset_id)
                .ok_or_else(|| format!("input asset {} no longer exists", r.asset_id))?;
            let bytes = self
                .shared
                .media
                .read(&a.path)
                .await
                .map_err(|e| format!("input asset {} unreadable: {e}", a.id))?;
            let role = r
                .role
                .or(default_role(op))
                .ok_or_else(|| "an input without a role".to_string())?;
            out.push(InputMedia {
                asset_id: a.id,
                role,
                ref_name: r.ref_name.clone(),
                media_type: a.media_type,
                mime: a.mime.clone(),
                bytes: Arc::new(bytes),
                origin_provider: a.provider.clone(),
                origin_remote_id: a.remote_id.clone(),
                remote: None,
            });
        }
        Ok(out)
    }

    async fn process(&self, row: &JobRow) -> Result<Outcome, GenerationError> {
        let pool = &self.shared.pool;
        let Some(provider) = self.shared.providers.get(&row.provider) else {
            return Ok(self
                .fail(
                    row,
                    "unknown_provider",
                    &format!("no provider {}", row.provider),
                )
                .await);
        };
        let parsed = (|| -> Result<(Operation, GenerationParams, Vec<InputRef>), String> {
            let op: Operation = row.operation;
            let params = serde_json::from_value(row.params.clone()).map_err(|e| e.to_string())?;
            let refs = serde_json::from_value(row.inputs.clone()).map_err(|e| e.to_string())?;
            Ok((op, params, refs))
        })();
        let (op, params, refs) = match parsed {
            Ok(x) => x,
            Err(e) => return Ok(self.fail(row, "invalid_job", &e).await),
        };
        let mut inputs = match self.load_inputs(&refs, op).await {
            Ok(i) => i,
            Err(e) => return Ok(self.fail(row, "input_missing", &e).await),
        };

        let prior = if row.attempt > 1 {
            submissions::in_flight(pool, row.id, row.attempt)
                .await?
                .filter(|s| s.provider == row.provider)
        } else {
            None
        };

        let mut account: Option<AccountRow> = None;
        if provider.requires_account() {
            if let Some(aid) = prior.as_ref().and_then(|s| s.account_id) {
                account = accounts::reserve_specific(pool, aid, row.id, row.attempt).await?;
            }
            if account.is_none() {
                let est = provider.estimated_credits(op, &params);
                account = accounts::reserve(
                    pool,
                    &row.provider,
                    row.user_id,
                    est,
                    row.preferred_account_id,
                    row.id,
                    row.attempt,
                )
                .await?;
            }
            if account.is_none() {
                if !accounts::any_could_qualify(pool, &row.provider, row.user_id).await? {
                    return Ok(self
                        .fail(
                            row,
                            "no_account_available",
                            &format!("no {} account can run this job", row.provider),
                        )
                        .await);
                }
                let wait = jitter(self.shared.cfg.account_wait);
                return Ok(self
                    .requeue(
                        row,
                        false,
                        "waiting_for_account",
                        "every account is busy",
                        Some(wait),
                    )
                    .await);
            }
        }
        if let Some(a) = &account {
            tracing::Span::current().record("account_id", tracing::field::display(a.id));
        }
        let creds = match account
            .as_ref()
            .map(|a| Credentials::open(a, &self.shared.cfg.secret_key))
            .transpose()
        {
            Ok(c) => c,
            Err(e) => return Ok(self.on_provider_error(row, account.as_ref(), e).await),
        };

        if let Some(s) = prior {
            let same_account = s.account_id == account.as_ref().map(|a| a.id);
            if let (true, Some(remote_id)) = (same_account, s.remote_id.as_deref()) {
                tracing::info!(job_id = %row.id, attempt = row.attempt, remote_id, "adopting an earlier submission");
                let at = Attempt {
                    provider: &*provider,
                    creds: creds.as_ref(),
                    account: account.as_ref(),
                    row,
                    op,
                    params: &params,
                    inputs: &inputs,
                };
                match self.follow(&at, remote_id, s.id, false).await? {
                    Followed::Done(o) => return Ok(o),
                    Followed::Gone => {}
                }
            }
            submissions::finish(
                pool,
                s.id,
                Ending::plain("abandoned", None, Some("not adoptable")),
            )
            .await?;
        }

        for input in inputs.iter_mut() {
            if !provider.needs_upload(input) {
                continue;
            }
            let scope = creds
                .as_ref()
                .map(|c| c.account_id.to_string())
                .unwrap_or_else(|| "*".into());
            if let Some(u) = assets::use_upload(pool, input.asset_id, provider.id(), &scope).await?
            {
                input.remote = Some(RemoteInput {
                    remote_id: u.remote_id,
                    url: u.remote_url,
                });
                continue;
            }
            match provider.upload_input(creds.as_ref(), input).await {
                Ok(remote) => {
                    assets::put_upload(
                        pool,
                        input.asset_id,
                        provider.id(),
                        &scope,
                        &remote.remote_id,
                        remote.url.as_deref(),
                    )
                    .await?;
                    input.remote = Some(remote);
                }
                Err(e) => return Ok(self.on_provider_error(row, account.as_ref(), e).await),
            }
        }

        let req = SubmitRequest {
            job_id: row.id,
            attempt: row.attempt,
            operation: op,
            params: params.clone(),
            inputs: inputs.clone(),
        };
        let account_id = account.as_ref().map(|a| a.id);
        let begin = || {
            submissions::begin(
                pool,
                row.id,
                row.attempt,
                &self.id,
                provider.id(),
                account_id,
            )
        };
        // The submission row is the idempotency record, written before the call; a
        // synchronous provider (free, answering at once) gets it with the completion.
        let synchronous = provider.is_synchronous();
        let early = if synchronous {
            None
        } else {
            match begin().await? {
                Some(sub) => Some(sub),
                None => return Ok(Outcome::LeaseLost),
            }
        };
        let submitted = match provider.submit(creds.as_ref(), &req).await {
            Ok(s) => s,
            Err(e) => {
                let sub = match early {
                    Some(sub) => Some(sub),
                    None => begin().await?,
                };
                if let Some(sub) = sub {
                    self.close_submission(sub.id, &e).await?;
                }
                return Ok(self.on_provider_error(row, account.as_ref(), e).await);
            }
        };
        let mut immediate = submitted.immediate;
        let sub_id = match early {
            None if immediate.is_some() => None,
            Some(sub) => Some(sub.id),
            None => match begin().await? {
                Some(sub) => Some(sub.id),
                None => return Ok(Outcome::LeaseLost),
            },
        };
        if let Some(sub_id) = sub_id {
            // Accepted: the account pays the provider's price (once per submission).
            let cost = if synchronous {
                0
            } else {
                provider.estimated_credits(op, &params)
            };
            submissions::accepted(pool, sub_id, &submitted.remote_id, cost).await?;
            tracing::info!(remote_id = %submitted.remote_id, credits = cost, "the provider accepted the job");
        }
        let at = Attempt {
            provider: &*provider,
            creds: creds.as_ref(),
            account: account.as_ref(),
            row,
            op,
            params: &params,
            inputs: &inputs,
        };
        if let Some(media) = immediate.take() {
            return self
                .complete(&at, sub_id, &submitted.remote_id, media)
                .await;
        }
        let Some(sub_id) = sub_id else {
            return Ok(Outcome::LeaseLost);
        };
        match self.follow(&at, &submitted.remote_id, sub_id, true).await? {
            Followed::Done(o) => Ok(o),
            Followed::Gone => {
                submissions::finish(pool, sub_id, Ending::plain("cancelled", Some("gone"), None))
                    .await?;
                Ok(self
                    .requeue(row, true, "remote_gone", "the provider lost the job", None)
                    .await)
            }
        }
    }

    /// Polls a submission to a terminal status and completes the job.
    async fn follow(
        &self,
        at: &Attempt<'_>,
        remote_id: &str,
        sub_id: Uuid,
        wait_first: bool,
    ) -> Result<Followed, GenerationError> {
        let Attempt {
            provider,
            creds,
            account,
            row,
            ..
        } = *at;
        let pool = &self.shared.pool;
        let mut errors = 0u32;
        let mut last_progress: Option<f32> = None;
        let mut wait = if wait_first {
            Some(provider.poll_interval())
        } else {
            None
        };
        loop {
            if let Some(w) = wait.take() {
                tokio::time::sleep(w).await;
            }
            let poll: PollResult = match provider.poll(creds, remote_id).await {
                Ok(p) => {
                    errors = 0;
                    p
                }
                Err(e) if e.is_retryable() && errors < self.shared.cfg.max_poll_errors => {
                    errors += 1;
                    let backoff =
                        jitter(Duration::from_millis(250).saturating_mul(1 << errors.min(8)));
                    wait = Some(
                        e.retry_after()
                            .unwrap_or(backoff)
                            .max(provider.poll_interval()),
                    );
                    continue;
                }
                Err(e) if e.is_retryable() => {
                    // The submission stays `submitted`: the next attempt adopts it.
                    return Ok(Followed::Done(
                        self.on_provider_error(row, account, e).await,
                    ));
                }
                Err(e) => {
                    self.close_submission(sub_id, &e).await?;
                    return Ok(Followed::Done(
                        self.on_provider_error(row, account, e).await,
                    ));
                }
            };
            match poll.status {
                RemoteStatus::Queued | RemoteStatus::Processing => {
                    if let Some(p) = poll.progress
                        && last_progress.is_none_or(|l| (p - l).abs() >= 0.05)
                    {
                        last_progress = Some(p);
                        if jobs::set_progress(pool, row.id, row.attempt, &self.id, p).await? {
                            let mut r = row.clone();
                            r.progress = Some(p);
                            self.emit_job(r, false);
                        }
                    }
                    wait = Some(poll.next_poll.unwrap_or_else(|| provider.poll_interval()));
                }
                RemoteStatus::Succeeded => {
                    let mut tries = 0;
                    let media = loop {
                        match provider
                            .download(creds, remote_id, &poll, &self.shared.downloader)
                            .await
                        {
                            Ok(m) => break m,
                            Err(e) if e.is_retryable() && tries < 3 => {
                                tries += 1;
                                tokio::time::sleep(jitter(Duration::from_millis(500) * tries))
                                    .await;
                            }
                            Err(e) => {
                                if !e.is_retryable() {
                                    self.close_submission(sub_id, &e).await?;
                                }
                                return Ok(Followed::Done(
                                    self.on_provider_error(row, account, e).await,
                                ));
                            }
                        }
                    };
                    let mut media = media;
                    if media.remote_url.is_none() {
                        media.remote_url = poll.result_url.clone();
                    }
                    return Ok(Followed::Done(
                        self.complete(at, Some(sub_id), remote_id, media).await?,
                    ));
                }
                status @ (RemoteStatus::Filtered | RemoteStatus::Failed) => {
                    let filtered = status == RemoteStatus::Filtered;
                    let (sub_status, class, default_msg) = if filtered {
                        (
                            "filtered",
                            "moderation",
                            "the provider's moderation refused the content",
                        )
                    } else {
                        (
                            "failed",
                            "provider_failed",
                            "the provider reported a failure",
                        )
                    };
                    // The provider's own text goes to the admin log only; users see a
                    // fixed sentence and the provider's code when it is a short token.
                    if let Some(detail) = &poll.error_message {
                        tracing::warn!(job_id = %row.id, class, "provider reported: {detail}");
                    }
                    let msg = match poll.error_code.as_deref().and_then(public_code) {
                        Some(c) => format!("{default_msg} (code {c})"),
                        None => default_msg.to_owned(),
                    };
                    let refunded = submissions::finish(
                        pool,
                        sub_id,
                        Ending {
                            status: sub_status,
                            error_class: Some(class),
                            error_code: poll.error_code.as_deref(),
                            error_message: Some(&msg),
                            refund: provider.refunds(status),
                        },
                    )
                    .await?;
                    if refunded > 0 {
                        tracing::info!(job_id = %row.id, refunded, "the provider refunded the submission");
                    }
                    return Ok(Followed::Done(if filtered {
                        self.fail(row, "content_filtered", &msg).await
                    } else {
                        self.requeue(row, true, "provider_failed", &msg, None).await
                    }));
                }
                RemoteStatus::Cancelled | RemoteStatus::Deleted => return Ok(Followed::Gone),
            }
        }
    }

    /// The account's balance according to its provider (`None`: no balance endpoint,
    /// or it failed).
    async fn provider_balance(&self, row: &JobRow, account: &AccountRow) -> Option<i64> {
        let provider = self.shared.providers.get(&row.provider)?;
        let creds = Credentials::open(account, &self.shared.cfg.secret_key).ok()?;
        match provider.balance(&creds).await {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(account_id = %account.id, "balance refresh failed: {e}");
                None
            }
        }
    }

    /// Ends a submission the provider refused or that failed with `e`.
    async fn close_submission(
        &self,
        sub_id: Uuid,
        e: &ProviderError,
    ) -> Result<(), GenerationError> {
        let msg = e.public_message();
        let status = if matches!(e, ProviderError::Moderation { .. }) {
            "filtered"
        } else {
            "failed"
        };
        submissions::finish(
            &self.shared.pool,
            sub_id,
            Ending {
                status,
                error_class: Some(e.class()),
                error_code: e.code(),
                error_message: Some(&msg),
                refund: false,
            },
        )
        .await?;
        Ok(())
    }

    /// Applies a provider failure class: requeue with backoff, cool down or retire the
    /// account, or fail for good.
    async fn on_provider_error(
        &self,
        row: &JobRow,
        account: Option<&AccountRow>,
        e: ProviderError,
    ) -> Outcome {
        let pool = &self.shared.pool;
        let cfg = &self.shared.cfg;
        // The whole error (the provider's text included) goes to the admin log; the
        // job, its submission and the account keep only the public message.
        let msg = e.public_message();
        tracing::warn!(
            job_id = %row.id,
            account_id = account.map(|a| tracing::field::display(a.id)),
            attempt = row.attempt,
            class = e.class(),
            "provider error: {e}"
        );
        match &e {
            ProviderError::Transient { retry_after, .. } => {
                let d = retry_after.map(|r| r.max(jitter(cfg.backoff_base)));
                self.requeue(row, true, "provider_unavailable", &msg, d)
                    .await
            }
            ProviderError::Timeout(_) => self.requeue(row, true, "timeout", &msg, None).await,
            ProviderError::ConcurrencyLimit { retry_after, .. } => {
                let d = retry_after.unwrap_or_else(|| jitter(cfg.account_wait));
                self.requeue(row, false, "concurrency_limit", &msg, Some(d))
                    .await
            }
            ProviderError::RateLimited { retry_after, .. } => {
                let cool = retry_after.unwrap_or(cfg.rate_limit_cooldown);
                if let Some(a) = account {
                    let until = chrono::Utc::now()
                        + chrono::Duration::from_std(cool).unwrap_or(chrono::Duration::seconds(60));
                    if let Err(err) = accounts::set_status(
                        pool,
                        a.id,
                        AccountStatus::RateLimited,
                        Some(&msg),
                        Some(until),
                    )
                    .await
                    {
                        tracing::warn!("could not cool the account down: {err}");
                    }
                    // Another account may take it at once.
                    self.requeue(
                        row,
                        false,
                        "rate_limited",
                        &msg,
                        Some(Duration::from_millis(50)),
                    )
                    .await
                } else {
                    self.requeue(row, false, "rate_limited", &msg, Some(cool))
                        .await
                }
            }
            ProviderError::OutOfCredits { .. } | ProviderError::Auth { .. } => {
                let (status, code) = if matches!(e, ProviderError::OutOfCredits { .. }) {
                    (AccountStatus::Exhausted, "out_of_credits")
                } else {
                    (AccountStatus::Error, "account_error")
                };
                if let Some(a) = account {
                    let retired = if status == AccountStatus::Exhausted {
                        // Record what the provider says is left (its balance endpoint,
                        // where it has one).
                        let balance = self.provider_balance(row, a).await;
                        accounts::exhaust(pool, a.id, balance, &msg).await
                    } else {
                        accounts::set_status(pool, a.id, status, Some(&msg), None).await
                    };
                    if let Err(err) = retired {
                        tracing::warn!("could not retire the account: {err}");
                    }
                    self.requeue(row, false, code, &msg, Some(Duration::ZERO))
                        .await
                } else {
                    self.fail(row, code, &msg).await
                }
            }
            ProviderError::Moderation { .. } => self.fail(row, "content_filtered", &msg).await,
            ProviderError::InvalidRequest { .. } | ProviderError::Unsupported(_) => {
                self.fail(row, "provider_rejected", &msg).await
            }
            ProviderError::Download(d) if d.is_transient() => {
                self.requeue(row, true, "download_failed", &msg, None).await
            }
            ProviderError::Download(_) => self.fail(row, "download_rejected", &msg).await,
            ProviderError::Blocked(_) => self.fail(row, "destination_blocked", &msg).await,
        }
    }

    /// Stores the result, creates the asset with lineage and completes the job.
    async fn complete(
        &self,
        at: &Attempt<'_>,
        sub_id: Option<Uuid>,
        remote_id: &str,
        media: MediaResult,
    ) -> Result<Outcome, GenerationError> {
        let Attempt {
            row,
            op,
            params,
            inputs,
            ..
        } = *at;
        let provider = at.provider.id();
        let Some(kind) = sniff(&media.bytes) else {
            return Ok(self
                .fail(
                    row,
                    "download_rejected",
                    "the result is not a known media format",
                )
                .await);
        };
        let p = probe(&media.bytes, &kind);
        let stored = self.shared.media.put(&media.bytes, kind.ext).await?;
        let thumbnail_path = match media
            .thumbnail
            .as_deref()
            .and_then(|t| sniff(t).map(|k| (t, k)))
        {
            Some((t, k)) => Some(self.shared.media.put(t, k.ext).await?.rel_path),
            None => None,
        };
        let new = NewAsset {
            id: Uuid::now_v7(),
            owner_id: row.user_id,
            media_type: kind.media_type,
            mime: kind.mime.into(),
            content_hash: stored.hash,
            size_bytes: stored.size as i64,
            width: p.width_i32(),
            height: p.height_i32(),
            duration_ms: p.duration_ms_i64(),
            path: stored.rel_path,
            thumbnail_path,
            origin: AssetOrigin::Generated,
            provider: Some(provider.to_owned()),
            remote_id: Some(remote_id.to_owned()),
            remote_url: media.remote_url.clone(),
            source_generation_id: Some(row.id),
            operation: Some(op),
            prompt: params.prompt.clone(),
        };
        let edges: Vec<NewEdge> = inputs
            .iter()
            .enumerate()
            .map(|(i, inp)| NewEdge {
                parent_asset_id: inp.asset_id,
                relation: inp.role.as_str().into(),
                operation: op.as_str().into(),
                sequence: i as i32,
            })
            .collect();
        match self
            .shared
            .complete_job(Completion {
                job_id: row.id,
                attempt: row.attempt,
                owner: self.id.to_string(),
                submission_id: sub_id,
                asset: new,
                edges,
            })
            .await?
        {
            Some((job, asset)) => {
                let asset_id = asset.fields.id;
                let asset: Asset = asset.try_into()?;
                let generation: Generation = job.try_into()?;
                self.shared.emit(GenerationEvent::AssetCreated {
                    asset: asset.clone(),
                });
                self.shared
                    .emit(GenerationEvent::JobCompleted { generation, asset });
                Ok(Outcome::Completed { asset_id })
            }
            None => Ok(Outcome::LeaseLost),
        }
    }
}
