//! [`Shared`]: the state the service, its workers and the Redis bridge share (pool,
//! config, providers, media store, events, wake-ups, running attempts, group-commit
//! batchers). Its own module so that `service`, `worker` and `cluster` all import it
//! from here instead of from each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::PgPool;
use store::StoreError;
use store::generation::assets::{self, AssetRow, Completion};
use store::generation::jobs::{self, InsertOutcome, JobRow, NewJob, QueuePlace};
use store::generation::kinds::JobStatus;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::batch::{Batcher, CallError};
use crate::config::PipelineConfig;
use crate::download::Downloader;
use crate::events::GenerationEvent;
use crate::media::MediaStore;
use crate::outbox::{Message, Outbox};
use crate::provider::ProviderRegistry;
use crate::webhooks::WebhookHub;

/// State shared by the service and its workers.
/// A provider's webhook signing keys (one per account) and when they were read.
pub(crate) type WebhookKeys = (std::time::Instant, Vec<Vec<u8>>);

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
    /// Submissions being polled, by their id at the provider: a provider's webhook
    /// about one wakes its poll loop ([`Shared::poke`]).
    pub polling: Mutex<HashMap<String, Arc<Notify>>>,
    /// Signalled when this process claimed jobs (the places of those behind moved).
    pub queue_moved: Notify,
    /// The embedder of assets, once set.
    pub embedder: std::sync::OnceLock<Arc<dyn crate::embed::Embedder>>,
    /// Providers' webhook signing keys: per provider, when read and the keys (one per
    /// account).
    pub webhook_keys: tokio::sync::Mutex<HashMap<String, WebhookKeys>>,
    /// Workers of this process waiting for work right now.
    pub idle_workers: AtomicUsize,
    /// Group commit of keyless creates and of completions (started on first use).
    pub creates: OnceLock<CreateBatcher>,
    pub completions: OnceLock<CompleteBatcher>,
    /// Events on their way to the webhook outbox ([`crate::webhooks`]).
    pub webhooks: WebhookHub,
    /// The credit budgets creates are checked against.
    pub budgets: crate::service::budgets::BudgetCache,
    /// Encoder runs for clips, keyframes and variants.
    pub transcodes: crate::service::library::Transcoder,
}

pub(crate) type CreateBatcher = Batcher<(NewJob, Option<i64>), Result<Inserted, StoreError>>;

/// A create's outcome, with the queue place of a job created pending when it is known.
pub(crate) type Inserted = (InsertOutcome, Place);

/// The queue place of a created job, as [`Shared::insert_job`] knows it.
#[derive(Debug)]
pub(crate) enum Place {
    /// Ranked with its batch: the job's place, or `None` when it is no longer pending.
    Known(Option<QueuePlace>),
    /// Not ranked (written alone, or the batch's ranking failed): the caller ranks it.
    Unknown,
}
pub(crate) type CompleteBatcher =
    Batcher<Completion, Result<Option<(JobRow, AssetRow)>, StoreError>>;

/// The outcomes of a batch of creates with the queue places of those created pending,
/// ranked in one statement for the batch: ranking the queue costs in proportion to its
/// length, so under load, when batches grow, each create pays a smaller share of it.
async fn placed(
    pool: &PgPool,
    out: Vec<Result<InsertOutcome, StoreError>>,
) -> Vec<Result<Inserted, StoreError>> {
    let pending: Vec<Uuid> = out
        .iter()
        .filter_map(|o| match o {
            Ok(InsertOutcome::Created(row)) if row.status == JobStatus::Pending => Some(row.id),
            _ => None,
        })
        .collect();
    let mut places = match jobs::queue_places(pool, &pending).await {
        Ok(places) => Some(places),
        Err(e) => {
            tracing::debug!("queue places of a batch of creates: {e}");
            None
        }
    };
    out.into_iter()
        .map(|o| {
            o.map(|outcome| {
                let place = match (&outcome, places.as_mut()) {
                    (InsertOutcome::Created(row), Some(places)) => Place::Known(
                        places
                            .iter()
                            .position(|p| p.id == row.id)
                            .map(|i| places.swap_remove(i)),
                    ),
                    (_, None) => Place::Unknown,
                    (_, Some(_)) => Place::Known(None),
                };
                (outcome, place)
            })
        })
        .collect()
}

impl Shared {
    /// Emits an event of this node: to the webhook outbox when its user has endpoints,
    /// on the local broadcast and, with Redis, to the other nodes.
    pub fn emit(&self, ev: GenerationEvent) {
        self.webhooks.offer(&ev);
        if self.outbox.get().is_some() {
            self.publish(Message::Event {
                event: Box::new(ev.clone()),
            });
        }
        // No subscribers is fine.
        let _ = self.events.send(ev);
    }

    /// Emits an event to this process's subscribers only (no webhooks, no other nodes).
    pub fn emit_local(&self, ev: GenerationEvent) {
        let _ = self.events.send(ev);
    }

    /// With Redis, queues a message to the other nodes; one the queue has no room for
    /// is dropped and counted.
    pub fn publish(&self, msg: Message) {
        if let Some(o) = self.outbox.get()
            && !o.send(msg)
        {
            self.redis_dropped.fetch_add(1, Ordering::Relaxed);
        }
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

    /// A provider told us (webhook) that submission `remote_id` changed: its poll loop,
    /// if it runs in this process, polls now instead of at its next interval.
    pub fn poke(&self, remote_id: &str) -> bool {
        match self.polling.lock() {
            Ok(p) => p.get(remote_id).map(|n| n.notify_one()).is_some(),
            Err(_) => false,
        }
    }

    /// Registers a poll loop for `remote_id`; [`Shared::poke`] wakes it.
    pub fn register_polling(&self, remote_id: &str) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        if let Ok(mut p) = self.polling.lock() {
            p.insert(remote_id.to_owned(), n.clone());
        }
        n
    }

    pub fn unregister_polling(&self, remote_id: &str, n: &Arc<Notify>) {
        if let Ok(mut p) = self.polling.lock()
            && p.get(remote_id).is_some_and(|x| Arc::ptr_eq(x, n))
        {
            p.remove(remote_id);
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
    ) -> Result<Inserted, StoreError> {
        let batcher = self.creates.get_or_init(|| {
            let pool = self.pool.clone();
            Batcher::start(self.cfg.write_batch, self.cfg.write_slots, move |batch| {
                let pool = pool.clone();
                async move {
                    let (jobs, limits): (Vec<NewJob>, Vec<Option<i64>>) = batch.into_iter().unzip();
                    let out = match jobs::insert_batch(&pool, &jobs, &limits).await {
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
                    };
                    placed(&pool, out).await
                }
            })
        });
        match batcher.call((job, limit)).await {
            Ok(r) => r,
            Err(CallError::Unsent((job, limit))) => {
                let out = jobs::insert(&self.pool, &job, limit).await?;
                Ok((out, Place::Unknown))
            }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::service::GenerationService;

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
                let mut j = store::testing::new_job(user.0, &format!("p{i}"));
                if i == 5 {
                    j.parent_generation_id = Some(Uuid::now_v7());
                }
                j
            })
            .collect();
        let results =
            futures::future::join_all(jobs.into_iter().map(|j| svc.shared.insert_job(j, None)))
                .await;
        let mut positions = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match (i, r) {
                (5, Err(StoreError::Db(_))) => {}
                (5, other) => panic!("{other:?}"),
                (_, Ok((InsertOutcome::Created(row), place))) => {
                    assert_eq!(row.status, crate::model::JobStatus::Pending);
                    // Ranked with its batch (or alone, after the failed batch).
                    match place {
                        Place::Known(Some(p)) => positions.push(p.position),
                        Place::Unknown => positions.push(
                            jobs::queue_places(&db.pool, &[row.id]).await.unwrap()[0].position,
                        ),
                        Place::Known(None) => panic!("job {i} not ranked"),
                    }
                }
                (_, other) => panic!("{other:?}"),
            }
        }
        // The eleven jobs, no worker: each place once.
        positions.sort_unstable();
        assert_eq!(positions, (1..=11).collect::<Vec<i64>>());
    }
}
