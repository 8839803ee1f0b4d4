//! The `generations` table: jobs and the durable queue.
//!
//! Claims take pending jobs `FOR UPDATE SKIP LOCKED`, bump `attempt` and set a lease;
//! every later worker write names `(id, attempt, lease_owner)` and changes nothing when
//! the lease was lost (expired and reclaimed, or the job cancelled), so two attempts of
//! one job never both take effect.
//!
//! Here: the row, reads, user transitions; [`create`]: inserts; [`lease`]: the worker's
//! claim, heartbeat and finish.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::kinds::{JobStatus, Operation};
use crate::StoreError;

/// A job row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub operation: Operation,
    pub params: serde_json::Value,
    pub inputs: serde_json::Value,
    pub params_hash: String,
    pub status: JobStatus,
    pub priority: i16,
    pub scheduled_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    pub force_new: bool,
    pub preferred_account_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub account_reserved: bool,
    pub attempt: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub retry_count: i32,
    pub max_retries: i32,
    pub progress: Option<f32>,
    pub asset_id: Option<Uuid>,
    pub reused_from: Option<Uuid>,
    pub parent_generation_id: Option<Uuid>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub metadata: serde_json::Value,
    /// Credits the provider is expected to charge for one submission.
    pub estimated_credits: i64,
    /// Net credits charged so far (accepted submissions minus refunds).
    pub credits_charged: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Not started by then: cancelled with `deadline_exceeded` (see [`cancel_past_deadline`]).
    pub deadline_at: Option<DateTime<Utc>>,
}

/// The columns of [`JobRow`], for the statements built at run time.
pub const COLUMNS: &str = "id, user_id, provider, operation, params, inputs, params_hash, \
     status, priority, scheduled_at, idempotency_key, force_new, preferred_account_id, \
     account_id, account_reserved, attempt, lease_owner, lease_expires_at, heartbeat_at, \
     retry_count, max_retries, progress, asset_id, reused_from, parent_generation_id, \
     error_code, error_message, metadata, estimated_credits, credits_charged, created_at, \
     updated_at, started_at, completed_at, deadline_at";

/// `sqlx::query_as!(JobRow, …)` with the columns of [`JobRow`] between two literals (a
/// query macro takes literals only); `g:` qualifies them with the alias `g`. Each
/// column states its nullability (`!`, `?`) as [`JobRow`] has it: PostgreSQL does not
/// report it through a CTE.
macro_rules! job_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            JobRow,
            $before + "id AS \"id!\", user_id AS \"user_id!\", provider AS \"provider!\", operation AS \"operation!: _\", params AS \"params!\", inputs AS \"inputs!\", params_hash AS \"params_hash!\", status AS \"status!: _\", priority AS \"priority!\", scheduled_at AS \"scheduled_at!\", idempotency_key AS \"idempotency_key?\", force_new AS \"force_new!\", preferred_account_id AS \"preferred_account_id?\", account_id AS \"account_id?\", account_reserved AS \"account_reserved!\", attempt AS \"attempt!\", lease_owner AS \"lease_owner?\", lease_expires_at AS \"lease_expires_at?\", heartbeat_at AS \"heartbeat_at?\", retry_count AS \"retry_count!\", max_retries AS \"max_retries!\", progress AS \"progress?\", asset_id AS \"asset_id?\", reused_from AS \"reused_from?\", parent_generation_id AS \"parent_generation_id?\", error_code AS \"error_code?\", error_message AS \"error_message?\", metadata AS \"metadata!\", estimated_credits AS \"estimated_credits!\", credits_charged AS \"credits_charged!\", created_at AS \"created_at!\", updated_at AS \"updated_at!\", started_at AS \"started_at?\", completed_at AS \"completed_at?\", deadline_at AS \"deadline_at?\"" + $after
            $(, $arg)*
        )
    };
    (g: $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            JobRow,
            $before + "g.id AS \"id!\", g.user_id AS \"user_id!\", g.provider AS \"provider!\", g.operation AS \"operation!: _\", g.params AS \"params!\", g.inputs AS \"inputs!\", g.params_hash AS \"params_hash!\", g.status AS \"status!: _\", g.priority AS \"priority!\", g.scheduled_at AS \"scheduled_at!\", g.idempotency_key AS \"idempotency_key?\", g.force_new AS \"force_new!\", g.preferred_account_id AS \"preferred_account_id?\", g.account_id AS \"account_id?\", g.account_reserved AS \"account_reserved!\", g.attempt AS \"attempt!\", g.lease_owner AS \"lease_owner?\", g.lease_expires_at AS \"lease_expires_at?\", g.heartbeat_at AS \"heartbeat_at?\", g.retry_count AS \"retry_count!\", g.max_retries AS \"max_retries!\", g.progress AS \"progress?\", g.asset_id AS \"asset_id?\", g.reused_from AS \"reused_from?\", g.parent_generation_id AS \"parent_generation_id?\", g.error_code AS \"error_code?\", g.error_message AS \"error_message?\", g.metadata AS \"metadata!\", g.estimated_credits AS \"estimated_credits!\", g.credits_charged AS \"credits_charged!\", g.created_at AS \"created_at!\", g.updated_at AS \"updated_at!\", g.started_at AS \"started_at?\", g.completed_at AS \"completed_at?\", g.deadline_at AS \"deadline_at?\"" + $after
            $(, $arg)*
        )
    };
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

mod create;
mod lease;

pub use create::{
    BudgetCheck, IDEMPOTENCY_WINDOW, IDEMPOTENCY_WINDOW_HOURS, InsertOutcome, NewJob, OverBudget,
    find_reusable, insert, insert_batch, insert_within,
};
pub use lease::{Finish, claim, finish, heartbeat, reclaim_expired, set_progress};

pub async fn get(pool: &PgPool, id: Uuid) -> Result<JobRow, StoreError> {
    let row = job_query!("SELECT ", " FROM generations WHERE id = $1", id)
        .fetch_optional(pool)
        .await?;
    row.ok_or(StoreError::NotFound("generation"))
}

/// A pending job's place in the queue (see [`queue_places`]).
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePlace {
    pub id: Uuid,
    /// 1 = the next job a worker claims.
    pub position: i64,
    /// `None` while no job has completed yet (no run time to go by).
    pub estimated_start_at: Option<DateTime<Utc>>,
}

/// The places of those of `ids` that are pending, computed now in one statement.
///
/// Position: rank among all pending jobs in claim order ([`claim`]: `priority DESC,
/// created_at, id` among the due ones); jobs scheduled later rank after every due one,
/// by `scheduled_at`.
///
/// Ranking every pending job costs a sort of the whole queue, and a new job stands at
/// its end. So the due jobs before the first of `ids` (in claim order) are only
/// counted, which needs no sort; the rest (that job and everything after it) are
/// ranked after them. For jobs just created, that rest is little more than themselves.
///
/// Estimated start, with `P` the jobs processing now (all of the workers' free slots
/// are taken while jobs wait, so `P` stands for the capacity), `avg` the mean run time
/// (`completed_at - started_at`) of the last 50 completed jobs and `e` the mean time
/// the processing jobs have run so far:
/// `P = 0`: now (the next claim takes it); no completed job yet: unknown; else
/// `now + max(avg - e, 0) + (ceil(position / P) - 1) * avg`,
/// never before the job's `scheduled_at`.
pub async fn queue_places(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<QueuePlace>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query_as!(
        QueuePlace,
        r#"WITH first AS (
             SELECT priority, created_at, id FROM generations
             WHERE id = ANY($1) AND status = 'pending' AND scheduled_at <= now()
             ORDER BY priority DESC, created_at, id LIMIT 1
         ), ahead AS (
             SELECT count(*) AS n FROM generations g, first f
             WHERE g.status = 'pending' AND g.scheduled_at <= now()
               AND (g.priority > f.priority
                    OR (g.priority = f.priority AND (g.created_at, g.id) < (f.created_at, f.id)))
         ), q AS (
             SELECT g.id, g.scheduled_at, row_number() OVER (
                 ORDER BY g.scheduled_at > now(),
                     CASE WHEN g.scheduled_at > now() THEN g.scheduled_at END,
                     g.priority DESC, g.created_at, g.id) AS pos
             FROM generations g LEFT JOIN first f ON true
             WHERE g.status = 'pending'
               AND (f.id IS NULL OR g.scheduled_at > now() OR g.priority < f.priority
                    OR (g.priority = f.priority AND (g.created_at, g.id) >= (f.created_at, f.id)))
         ), run AS (
             SELECT count(*) AS p,
                 COALESCE(avg(extract(epoch FROM now() - started_at)), 0)::float8 AS e
             FROM generations WHERE status = 'processing'
         ), hist AS (
             SELECT avg(extract(epoch FROM h.completed_at - h.started_at))::float8 AS avg
             FROM (SELECT completed_at, started_at FROM generations
                   WHERE status = 'completed' AND started_at IS NOT NULL
                     AND completed_at IS NOT NULL
                   ORDER BY completed_at DESC LIMIT 50) h
         )
         SELECT q.id AS "id!", (ahead.n + q.pos) AS "position!",
             CASE WHEN run.p = 0 THEN GREATEST(q.scheduled_at, now())
                  WHEN hist.avg IS NULL THEN NULL
                  ELSE GREATEST(q.scheduled_at, now() + make_interval(secs =>
                      GREATEST(hist.avg - run.e, 0)
                      + (ceil((ahead.n + q.pos)::float8 / run.p) - 1) * hist.avg))
             END AS "estimated_start_at?"
         FROM q, ahead, run, hist WHERE q.id = ANY($1)"#,
        ids,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// The first `limit` pending jobs in queue order (as [`queue_places`] ranks them: due
/// ones first, then highest priority, then oldest).
pub async fn queue_head(pool: &PgPool, limit: i64) -> Result<Vec<JobRow>, StoreError> {
    Ok(job_query!(
        "SELECT ",
        " FROM generations WHERE status = 'pending'
         ORDER BY scheduled_at > now(), CASE WHEN scheduled_at > now() THEN scheduled_at END,
             priority DESC, created_at, id
         LIMIT $1",
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// List filters; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub user_id: Option<Uuid>,
    pub statuses: Option<Vec<JobStatus>>,
    pub provider: Option<String>,
    pub operation: Option<Operation>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Keyset cursor: rows strictly older than this `(created_at, id)`.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub offset: i64,
    pub limit: i64,
}

/// Newest first; returns the page and the total matching count.
pub async fn list(pool: &PgPool, f: &JobFilter) -> Result<(Vec<JobRow>, i64), StoreError> {
    // The same conditions in both statements (a query macro takes literals only).
    let rows = job_query!(
        "SELECT ",
        " FROM generations WHERE ($1::uuid IS NULL OR user_id = $1)
           AND ($2::text[] IS NULL OR status = ANY($2))
           AND ($3::text IS NULL OR provider = $3)
           AND ($4::text IS NULL OR operation = $4)
           AND ($5::timestamptz IS NULL OR created_at >= $5)
           AND ($6::timestamptz IS NULL OR created_at < $6)
           AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8))
         ORDER BY created_at DESC, id DESC OFFSET $9 LIMIT $10",
        f.user_id,
        f.statuses.as_deref() as _,
        f.provider.as_deref(),
        f.operation as _,
        f.created_after,
        f.created_before,
        f.before.map(|b| b.0),
        f.before.map(|b| b.1),
        f.offset,
        f.limit,
    )
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM generations WHERE ($1::uuid IS NULL OR user_id = $1)
           AND ($2::text[] IS NULL OR status = ANY($2))
           AND ($3::text IS NULL OR provider = $3)
           AND ($4::text IS NULL OR operation = $4)
           AND ($5::timestamptz IS NULL OR created_at >= $5)
           AND ($6::timestamptz IS NULL OR created_at < $6)"#,
        f.user_id,
        f.statuses.as_deref() as _,
        f.provider.as_deref(),
        f.operation as _,
        f.created_after,
        f.created_before,
    )
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// Number of the user's pending, processing and paused jobs.
pub async fn count_active(pool: &PgPool, user_id: Uuid) -> Result<i64, StoreError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM generations
         WHERE user_id = $1 AND status IN ('pending', 'processing', 'paused')"#,
        user_id,
    )
    .fetch_one(pool)
    .await?;
    Ok(n)
}

/// A user-requested state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// pending, paused or processing → cancelled (a running attempt loses its lease).
    Cancel,
    /// pending → paused.
    Pause,
    /// paused → pending.
    Resume,
    /// failed or cancelled → pending, retries reset (a deadline already passed is
    /// dropped, so the job does not miss it again at once).
    Retry,
}

/// Applies a user transition; [`StoreError::Conflict`] when the job is in a state that
/// does not allow it.
pub async fn transition(pool: &PgPool, id: Uuid, t: Transition) -> Result<JobRow, StoreError> {
    let row = match t {
        Transition::Cancel => {
            job_query!(
                "WITH g AS (
                     SELECT id, account_id, account_reserved FROM generations WHERE id = $1
                     AND status IN ('pending', 'paused', 'processing') FOR UPDATE
                 ), rel AS (
                     UPDATE provider_accounts a SET current_jobs = GREATEST(a.current_jobs - 1, 0)
                     FROM g WHERE a.id = g.account_id AND g.account_reserved
                 )
                 UPDATE generations SET status = 'cancelled', lease_owner = NULL,
                     lease_expires_at = NULL, account_reserved = false, completed_at = now(),
                     error_code = 'cancelled', error_message = 'cancelled by the user',
                     updated_at = now()
                 WHERE id IN (SELECT id FROM g) RETURNING ",
                "",
                id,
            )
            .fetch_optional(pool)
            .await?
        }
        Transition::Pause => {
            job_query!(
                "UPDATE generations SET status = 'paused', updated_at = now()
                 WHERE id = $1 AND status = 'pending' RETURNING ",
                "",
                id,
            )
            .fetch_optional(pool)
            .await?
        }
        Transition::Resume => {
            job_query!(
                "UPDATE generations SET status = 'pending', updated_at = now()
                 WHERE id = $1 AND status = 'paused' RETURNING ",
                "",
                id,
            )
            .fetch_optional(pool)
            .await?
        }
        Transition::Retry => {
            job_query!(
                "UPDATE generations SET status = 'pending', retry_count = 0, scheduled_at = now(),
                     error_code = NULL, error_message = NULL, completed_at = NULL, progress = NULL,
                     deadline_at = CASE WHEN deadline_at > now() THEN deadline_at END,
                     updated_at = now()
                 WHERE id = $1 AND status IN ('failed', 'cancelled') RETURNING ",
                "",
                id,
            )
            .fetch_optional(pool)
            .await?
        }
    };
    match row {
        Some(r) => Ok(r),
        None => {
            get(pool, id).await?;
            Err(StoreError::Conflict(
                "a generation in a state that allows this",
            ))
        }
    }
}

/// Cancels a job that has not started (pending or paused: nothing was charged) with
/// `code` and `message`; `None` when it has started or ended meanwhile, which the
/// caller leaves alone.
pub async fn cancel_unstarted(
    pool: &PgPool,
    id: Uuid,
    code: &str,
    message: &str,
) -> Result<Option<JobRow>, StoreError> {
    Ok(job_query!(
        "WITH g AS (
             SELECT id, account_id, account_reserved FROM generations WHERE id = $1
             AND status IN ('pending', 'paused') FOR UPDATE
         ), rel AS (
             UPDATE provider_accounts a SET current_jobs = GREATEST(a.current_jobs - 1, 0)
             FROM g WHERE a.id = g.account_id AND g.account_reserved
         )
         UPDATE generations SET status = 'cancelled', lease_owner = NULL,
             lease_expires_at = NULL, account_reserved = false, completed_at = now(),
             error_code = $2, error_message = $3, updated_at = now()
         WHERE id IN (SELECT id FROM g) RETURNING ",
        "",
        id,
        code,
        message,
    )
    .fetch_optional(pool)
    .await?)
}

/// Raises a job that has not started to `priority` (never lowers it); `None` when it
/// has started, ended, or already stands at least that high.
pub async fn raise_priority(
    pool: &PgPool,
    id: Uuid,
    priority: i16,
) -> Result<Option<JobRow>, StoreError> {
    Ok(job_query!(
        "UPDATE generations SET priority = $2, updated_at = now()
         WHERE id = $1 AND status IN ('pending', 'paused') AND priority < $2 RETURNING ",
        "",
        id,
        priority,
    )
    .fetch_optional(pool)
    .await?)
}

/// Cancels, with error code `deadline_exceeded`, the jobs whose `deadline_at` has
/// passed: every pending or paused one (never started, so nothing was charged), and the
/// processing ones whose provider is in `cancellable` (a provider with a call to stop a
/// submission; the caller stops the running attempt, which asks the provider to stop,
/// as for a user's cancel). A processing job of another provider is left to finish.
/// Account slots are given back. Returns the cancelled jobs.
pub async fn cancel_past_deadline(
    pool: &PgPool,
    cancellable: &[String],
) -> Result<Vec<JobRow>, StoreError> {
    let rows = job_query!(
        g: "WITH d AS (
             SELECT id, account_id, account_reserved FROM generations
             WHERE deadline_at <= now() AND status IN ('pending', 'paused', 'processing')
               AND (status <> 'processing' OR provider = ANY($1))
             FOR UPDATE SKIP LOCKED
         ), rel AS (
             UPDATE provider_accounts a SET current_jobs = GREATEST(a.current_jobs - c.n, 0)
             FROM (SELECT account_id, count(*)::int AS n FROM d
                   WHERE account_reserved AND account_id IS NOT NULL GROUP BY account_id) c
             WHERE a.id = c.account_id
         )
         UPDATE generations g SET status = 'cancelled', lease_owner = NULL,
             lease_expires_at = NULL, account_reserved = false, completed_at = now(),
             error_code = 'deadline_exceeded',
             error_message = CASE WHEN g.status = 'processing'
                 THEN 'the deadline passed while the job ran'
                 ELSE 'the deadline passed before the job started' END,
             updated_at = now()
         FROM d WHERE g.id = d.id
         RETURNING ",
        "",
        cancellable,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// What [`retry_within_limit`] did.
#[derive(Debug)]
pub enum RetryOutcome {
    Retried(Box<JobRow>),
    /// The user has `active` unfinished jobs: the limit or more.
    LimitExceeded {
        active: i64,
    },
}

/// [`transition`]`(Retry)` when `user_id` has fewer than `active_limit` pending,
/// processing and paused jobs, counted under the same per-user transaction lock as
/// [`insert`], so concurrent retries and creates cannot pass the limit together.
pub async fn retry_within_limit(
    pool: &PgPool,
    id: Uuid,
    user_id: Uuid,
    active_limit: i64,
) -> Result<RetryOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(7420112, hashtext($1::uuid::text))",
        user_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let active = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM generations
         WHERE user_id = $1 AND status IN ('pending', 'processing', 'paused')"#,
        user_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if active >= active_limit {
        tx.rollback().await?;
        return Ok(RetryOutcome::LimitExceeded { active });
    }
    let row = job_query!(
        "UPDATE generations SET status = 'pending', retry_count = 0, scheduled_at = now(),
             error_code = NULL, error_message = NULL, completed_at = NULL, progress = NULL,
             deadline_at = CASE WHEN deadline_at > now() THEN deadline_at END,
             updated_at = now()
         WHERE id = $1 AND user_id = $2 AND status IN ('failed', 'cancelled')
         RETURNING ",
        "",
        id,
        user_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    match row {
        Some(r) => Ok(RetryOutcome::Retried(Box::new(r))),
        None => {
            get(pool, id).await?;
            Err(StoreError::Conflict(
                "a generation in a state that allows this",
            ))
        }
    }
}

/// Deletes a job that is not processing.
pub async fn delete(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    let done = sqlx::query!(
        "DELETE FROM generations WHERE id = $1 AND status <> 'processing'",
        id,
    )
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        get(pool, id).await?;
        return Err(StoreError::Conflict(
            "a processing generation (cancel it first)",
        ));
    }
    Ok(())
}
