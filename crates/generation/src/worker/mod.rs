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
//!
//! Modules: this one holds the claim loop ([`Worker::run`]); `attempt` one attempt's
//! life (lease, heartbeat, cancel, timeout, panic, how it ends); `process` the steps
//! of an attempt (inputs, account, adoption, uploads); `submit` the submission and its
//! charge; `follow` polling and
//! download; `failure` the retry policy of provider errors; `complete` storing the
//! result as an asset.

mod attempt;
mod complete;
mod failure;
mod follow;
mod process;
mod submit;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use store::generation::accounts;
use store::generation::jobs::{self, Finish, JobRow};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::model::{Generation, JobStatus};
use crate::outbox::Message;
use crate::shared::Shared;

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

fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::rng().random_range(0.5..=1.0);
    d.mul_f64(f)
}

/// When the worker last ran its periodic chores.
#[derive(Default)]
struct Chores {
    last_reclaim: Option<Instant>,
    last_reconcile: Option<Instant>,
}

/// Whether a job that left `processing` under its current attempt was ended by that
/// attempt itself (completed; failed or requeued with the attempt's own error code) and
/// not by a reclaim of its expired lease (which leaves no code, or `lease_expired`) or a
/// cancel.
fn ended_by_attempt(status: JobStatus, error_code: Option<&str>) -> bool {
    match status {
        JobStatus::Completed => true,
        JobStatus::Failed | JobStatus::Pending => error_code.is_some_and(|c| c != "lease_expired"),
        JobStatus::Processing | JobStatus::Paused | JobStatus::Cancelled => false,
    }
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
                GenerationEvent::JobFailed {
                    generation: Box::new(g),
                }
            } else {
                GenerationEvent::JobUpdated {
                    generation: Box::new(g),
                }
            }),
            Err(e) => tracing::warn!("event for a corrupt job row: {e}"),
        }
    }

    /// Claims up to `n` due jobs (leased to this worker).
    pub async fn claim(&self, n: i64) -> Result<Vec<ClaimedJob>, GenerationError> {
        let rows = jobs::claim(&self.shared.pool, &self.id, self.shared.cfg.lease, n).await?;
        if !rows.is_empty() {
            // The jobs behind these moved up: their places are announced soon.
            self.shared.queue_moved.notify_one();
        }
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
        let mut chores = Chores::default();
        tracing::info!(worker = %self.id, "generation worker started");
        loop {
            self.housekeeping(&mut chores).await;
            while tasks.try_join_next().is_some() {}
            // Register for wake-ups before looking at the queue, so none is missed.
            let notified = self.shared.wake.notified();
            let full_batch = self.claim_and_spawn(&sem, &mut tasks).await;
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
        self.drain(tasks).await;
        self.release_leases().await;
    }

    /// Reclaims expired leases and cancels the jobs past their deadline every
    /// `reclaim_interval`, and repairs account slot counters every `reconcile_interval`.
    async fn housekeeping(&self, chores: &mut Chores) {
        let cfg = &self.shared.cfg;
        if chores
            .last_reclaim
            .is_none_or(|t| t.elapsed() >= cfg.reclaim_interval)
        {
            chores.last_reclaim = Some(Instant::now());
            if let Err(e) = self.reclaim_expired().await {
                tracing::warn!("reclaim failed: {e}");
            }
            if let Err(e) = self.cancel_past_deadline().await {
                tracing::warn!("deadline sweep failed: {e}");
            }
        }
        if chores
            .last_reconcile
            .is_none_or(|t| t.elapsed() >= cfg.reconcile_interval)
        {
            chores.last_reconcile = Some(Instant::now());
            match accounts::reconcile(&self.shared.pool).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!("repaired the slot counters of {n} accounts"),
                Err(e) => tracing::warn!("account reconcile failed: {e}"),
            }
        }
    }

    /// Cancels the jobs past their deadline (see [`jobs::cancel_past_deadline`]): those
    /// not started, and the processing ones whose provider can stop a submission, whose
    /// attempt is then stopped as for a user's cancel (here, or through Redis on the node
    /// running it), asking the provider to stop. Each is announced as `job:failed`, like
    /// a cancel. Returns how many were cancelled.
    pub async fn cancel_past_deadline(&self) -> Result<usize, GenerationError> {
        let providers = &self.shared.providers;
        let cancellable: Vec<String> = providers
            .ids()
            .into_iter()
            .filter(|id| providers.get(id).is_some_and(|p| p.can_cancel()))
            .collect();
        let rows = jobs::cancel_past_deadline(&self.shared.pool, &cancellable).await?;
        let n = rows.len();
        for row in rows {
            tracing::info!(job_id = %row.id, attempt = row.attempt, "deadline passed; job cancelled");
            // A job that ran (now, or in an earlier attempt) may have an attempt to stop.
            if row.started_at.is_some() {
                self.shared.stop_running(row.id);
                self.shared.publish(Message::Cancel { job_id: row.id });
            }
            self.emit_job(row, true);
        }
        Ok(n)
    }

    /// Claims as many jobs as there are free slots (at most `claim_batch`) and starts
    /// each; true when the batch came back full (more may be due at once).
    async fn claim_and_spawn(&self, sem: &Arc<Semaphore>, tasks: &mut JoinSet<()>) -> bool {
        let free = sem.available_permits();
        if free == 0 {
            return false;
        }
        let want = (free as i64).min(self.shared.cfg.claim_batch.max(1));
        let jobs = match self.claim(want).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!("claim failed: {e}");
                return false;
            }
        };
        let full_batch = jobs.len() as i64 == want;
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
        full_batch
    }

    /// Gives the in-flight attempts `shutdown_grace` to end, then aborts them.
    async fn drain(&self, mut tasks: JoinSet<()>) {
        let grace = tokio::time::sleep(self.shared.cfg.shutdown_grace);
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
    }

    /// Hands the leases of aborted attempts back to the queue (a later attempt adopts
    /// their provider submissions).
    async fn release_leases(&self) {
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

    /// Keeps the attempt's lease until it is lost (another attempt took the job, or it
    /// was cancelled). The attempt's own end also takes the job out of `processing`,
    /// committed a moment before the attempt learns of it (the completion goes through
    /// a batch): a heartbeat landing in between must not end the attempt, or its end
    /// would be reported as a lost lease and its events never sent. So a job found
    /// ended by this attempt ([`ended_by_attempt`]) keeps this future pending, and the
    /// attempt ends on its own.
    async fn heartbeat_until_lost(&self, id: Uuid, attempt: i32) {
        let cfg = &self.shared.cfg;
        loop {
            tokio::time::sleep(cfg.heartbeat).await;
            match jobs::heartbeat(&self.shared.pool, id, attempt, &self.id, cfg.lease).await {
                Ok(true) => {}
                Ok(false) => match jobs::get(&self.shared.pool, id).await {
                    Ok(now)
                        if now.attempt == attempt
                            && ended_by_attempt(now.status, now.error_code.as_deref()) =>
                    {
                        std::future::pending::<()>().await
                    }
                    _ => return,
                },
                Err(e) => tracing::warn!(job_id = %id, "heartbeat failed: {e}"),
            }
        }
    }
}
