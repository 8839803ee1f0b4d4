//! The worker's side of the queue: claims, lease heartbeats, progress, reclaiming
//! expired leases and finishing an attempt without an asset, each fenced by
//! `(id, attempt, lease_owner)`.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{JobRow, secs};
use crate::StoreError;

/// Claims up to `limit` due pending jobs for `owner`: status processing, attempt + 1,
/// lease until now + `lease`. Highest priority first, then oldest. A job past its
/// deadline is never claimed (the deadline sweep, [`super::cancel_past_deadline`],
/// cancels it).
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    lease: Duration,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    let mut rows = job_query!(
        g: "UPDATE generations g SET status = 'processing', attempt = g.attempt + 1,
             lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
             heartbeat_at = now(), started_at = COALESCE(g.started_at, now()),
             updated_at = now(), error_code = NULL, error_message = NULL, progress = NULL
         WHERE g.id IN (
             SELECT id FROM generations
             WHERE status = 'pending' AND scheduled_at <= now()
               AND (deadline_at IS NULL OR deadline_at > now())
             ORDER BY priority DESC, created_at, id
             LIMIT $3
             FOR UPDATE SKIP LOCKED
         )
         RETURNING ",
        "",
        owner,
        secs(lease),
        limit,
    )
    .fetch_all(pool)
    .await?;
    // RETURNING has no order: hand the jobs out in queue order.
    rows.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id))
    });
    Ok(rows)
}

/// Extends a held lease; false when the lease is lost (reclaimed, cancelled, finished).
pub async fn heartbeat(
    pool: &PgPool,
    id: Uuid,
    attempt: i32,
    owner: &str,
    lease: Duration,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "UPDATE generations SET lease_expires_at = now() + make_interval(secs => $4),
             heartbeat_at = now()
         WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'processing'",
        id,
        attempt,
        owner,
        secs(lease),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records progress (0..=1) under the lease fence.
pub async fn set_progress(
    pool: &PgPool,
    id: Uuid,
    attempt: i32,
    owner: &str,
    progress: f32,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "UPDATE generations SET progress = $4, updated_at = now()
         WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'processing'",
        id,
        attempt,
        owner,
        progress,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Jobs whose lease expired go back to pending (or fail once their retries are spent),
/// giving back any account slot they held. Returns the affected jobs.
pub async fn reclaim_expired(pool: &PgPool) -> Result<Vec<JobRow>, StoreError> {
    let rows = job_query!(
        g: "WITH exp AS (
             SELECT id, account_id, account_reserved FROM generations
             WHERE status = 'processing' AND lease_expires_at < now()
             FOR UPDATE SKIP LOCKED
         ), rel AS (
             UPDATE provider_accounts a SET current_jobs = GREATEST(a.current_jobs - c.n, 0)
             FROM (SELECT account_id, count(*)::int AS n FROM exp
                   WHERE account_reserved AND account_id IS NOT NULL GROUP BY account_id) c
             WHERE a.id = c.account_id
         )
         UPDATE generations g SET
             status = CASE WHEN g.retry_count + 1 > g.max_retries THEN 'failed' ELSE 'pending' END,
             error_code = CASE WHEN g.retry_count + 1 > g.max_retries THEN 'lease_expired' END,
             error_message = CASE WHEN g.retry_count + 1 > g.max_retries
                 THEN 'the worker running this job stopped responding' END,
             completed_at = CASE WHEN g.retry_count + 1 > g.max_retries THEN now() END,
             retry_count = g.retry_count + 1,
             lease_owner = NULL, lease_expires_at = NULL, account_reserved = false,
             updated_at = now()
         FROM exp WHERE g.id = exp.id
         RETURNING ",
        "",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// What a fenced finish does to the job.
#[derive(Debug, Clone)]
pub enum Finish {
    /// Terminal failure.
    Fail { code: String, message: String },
    /// Back to pending after `delay`. `count_retry`: counts against `max_retries`
    /// (the job fails with `code` once they are spent).
    Requeue {
        delay: Duration,
        count_retry: bool,
        code: String,
        message: String,
    },
}

/// Ends an attempt without an asset (fenced); releases any account slot. `None` when
/// the lease was lost.
pub async fn finish(
    pool: &PgPool,
    id: Uuid,
    attempt: i32,
    owner: &str,
    how: &Finish,
) -> Result<Option<JobRow>, StoreError> {
    let (fail, delay, count, code, message) = match how {
        Finish::Fail { code, message } => (true, 0.0, true, code, message),
        Finish::Requeue {
            delay,
            count_retry,
            code,
            message,
        } => (false, secs(*delay), *count_retry, code, message),
    };
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "WITH g AS (
             UPDATE generations SET account_reserved = false
             WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'processing'
               AND account_reserved
             RETURNING account_id
         )
         UPDATE provider_accounts a SET current_jobs = GREATEST(a.current_jobs - 1, 0)
         FROM g WHERE a.id = g.account_id",
        id,
        attempt,
        owner,
    )
    .execute(&mut *tx)
    .await?;
    let row = job_query!(
        "UPDATE generations SET
             status = CASE WHEN $4 OR ($6 AND retry_count + 1 > max_retries) THEN 'failed'
                           ELSE 'pending' END,
             retry_count = retry_count + CASE WHEN $6 THEN 1 ELSE 0 END,
             scheduled_at = CASE WHEN $4 THEN scheduled_at
                                 ELSE now() + make_interval(secs => $5) END,
             completed_at = CASE WHEN $4 OR ($6 AND retry_count + 1 > max_retries) THEN now() END,
             error_code = $7, error_message = $8,
             lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'processing'
         RETURNING ",
        "",
        id,
        attempt,
        owner,
        fail,
        delay,
        count,
        code,
        message,
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}
