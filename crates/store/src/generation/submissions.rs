//! The `provider_submissions` table: the idempotency record of provider submits.
//!
//! A row is written *before* the provider is called, unique per `(job, attempt)`: an
//! attempt that finds its row already present never submits again.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubmissionRow {
    pub id: Uuid,
    pub generation_id: Uuid,
    pub attempt: i32,
    pub provider: String,
    pub account_id: Option<Uuid>,
    pub remote_id: Option<String>,
    pub status: String,
    pub error_class: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, generation_id, attempt, provider, account_id, remote_id, status, \
     error_class, error_code, error_message, submitted_at, accepted_at, finished_at";

/// Records the intent to submit for this attempt, fenced by the lease. `None`: the
/// attempt already has a submission (or lost its lease) — do not submit.
pub async fn begin(
    pool: &PgPool,
    job_id: Uuid,
    attempt: i32,
    owner: &str,
    provider: &str,
    account_id: Option<Uuid>,
) -> Result<Option<SubmissionRow>, StoreError> {
    let row = sqlx::query_as(&format!(
        "INSERT INTO provider_submissions (id, generation_id, attempt, provider, account_id)
         SELECT $1, g.id, g.attempt, $4, $5 FROM generations g
         WHERE g.id = $2 AND g.attempt = $3 AND g.lease_owner = $6 AND g.status = 'processing'
         ON CONFLICT (generation_id, attempt) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(job_id)
    .bind(attempt)
    .bind(provider)
    .bind(account_id)
    .bind(owner)
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// The provider accepted the submission under `remote_id`.
pub async fn accepted(pool: &PgPool, id: Uuid, remote_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE provider_submissions SET remote_id = $2, status = 'submitted', accepted_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(remote_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Final state of a submission (`succeeded`, `failed`, `filtered`, `cancelled`, `abandoned`).
pub async fn finish(
    pool: &PgPool,
    id: Uuid,
    status: &str,
    error_class: Option<&str>,
    error_code: Option<&str>,
    error_message: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE provider_submissions SET status = $2, error_class = $3, error_code = $4,
             error_message = $5, finished_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error_class)
    .bind(error_code)
    .bind(error_message)
    .execute(pool)
    .await?;
    Ok(())
}

/// Submissions of a job, oldest first.
pub async fn list_for_job(pool: &PgPool, job_id: Uuid) -> Result<Vec<SubmissionRow>, StoreError> {
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM provider_submissions WHERE generation_id = $1 ORDER BY attempt"
    ))
    .bind(job_id)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// The latest earlier-attempt submission that was accepted and never finished (its
/// worker died while the provider kept working): a new attempt can adopt it instead of
/// paying for a second submission.
pub async fn in_flight(
    pool: &PgPool,
    job_id: Uuid,
    before_attempt: i32,
) -> Result<Option<SubmissionRow>, StoreError> {
    let row = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM provider_submissions
         WHERE generation_id = $1 AND attempt < $2 AND status = 'submitted'
           AND remote_id IS NOT NULL
         ORDER BY attempt DESC LIMIT 1"
    ))
    .bind(job_id)
    .bind(before_attempt)
    .fetch_optional(pool)
    .await?;
    Ok(row)
}
