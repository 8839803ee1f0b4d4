//! The `provider_submissions` table: the idempotency record of provider submits.
//!
//! A row is written *before* the provider is called, unique per `(job, attempt)`: an
//! attempt that finds its row already present never submits again.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::StoreError;
use crate::generation::kinds::SubmissionStatus;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubmissionRow {
    pub id: Uuid,
    pub generation_id: Uuid,
    pub attempt: i32,
    pub provider: String,
    pub account_id: Option<Uuid>,
    pub remote_id: Option<String>,
    pub status: SubmissionStatus,
    pub error_class: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Credits charged when the provider accepted the submission.
    pub credits: i64,
    /// The provider gave the credits back (e.g. Pixverse on a moderation failure).
    pub credits_refunded: bool,
    pub submitted_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `sqlx::query_as!(SubmissionRow, …)` with the columns of [`SubmissionRow`] between
/// two literals (a query macro takes literals only).
macro_rules! submission_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            SubmissionRow,
            $before + r#"id AS "id!", generation_id AS "generation_id!", attempt AS "attempt!", provider AS "provider!", account_id AS "account_id?", remote_id AS "remote_id?", status AS "status!: SubmissionStatus", error_class AS "error_class?", error_code AS "error_code?", error_message AS "error_message?", credits AS "credits!", credits_refunded AS "credits_refunded!", submitted_at AS "submitted_at!", accepted_at AS "accepted_at?", finished_at AS "finished_at?""# + $after
            $(, $arg)*
        )
    };
}

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
    let row = submission_query!(
        "INSERT INTO provider_submissions (id, generation_id, attempt, provider, account_id)
         SELECT $1, g.id, g.attempt, $4, $5 FROM generations g
         WHERE g.id = $2 AND g.attempt = $3 AND g.lease_owner = $6 AND g.status = 'processing'
         ON CONFLICT (generation_id, attempt) DO NOTHING
         RETURNING ",
        "",
        Uuid::now_v7(),
        job_id,
        attempt,
        provider,
        account_id,
        owner,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// The provider accepted the submission under `remote_id` and charged `credits` for
/// it: in one statement the submission records both, the job's `credits_charged` grows
/// and the account's tracked balance shrinks (never below zero; at zero the account
/// becomes `exhausted`). Only a submission still `submitting` is charged, so a charge
/// happens once per accepted submission. True when this call recorded it.
pub async fn accepted(
    pool: &PgPool,
    id: Uuid,
    remote_id: &str,
    credits: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query_scalar!(
        r#"WITH s AS (
             UPDATE provider_submissions SET remote_id = $2, status = 'submitted',
                 accepted_at = now(), credits = $3
             WHERE id = $1 AND status = 'submitting'
             RETURNING generation_id, account_id, credits
         ), g AS (
             UPDATE generations g SET credits_charged = g.credits_charged + s.credits
             FROM s WHERE g.id = s.generation_id AND s.credits <> 0
         ), a AS (
             UPDATE provider_accounts a SET credits = GREATEST(a.credits - s.credits, 0),
                 status = CASE WHEN a.credits - s.credits <= 0
                                    AND a.status IN ('active', 'rate_limited')
                               THEN 'exhausted' ELSE a.status END,
                 updated_at = now()
             FROM s WHERE a.id = s.account_id AND a.credits IS NOT NULL AND s.credits <> 0
         )
         SELECT true AS "done!" FROM s"#,
        id,
        remote_id,
        credits,
    )
    .fetch_optional(pool)
    .await?;
    Ok(done.is_some())
}

/// How a submission ended.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    /// `Succeeded`, `Failed`, `Filtered`, `Cancelled` or `Abandoned`.
    pub status: SubmissionStatus,
    pub error_class: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    /// The provider gives the charge back for this ending: the job's net charge and the
    /// account's balance are restored, at most once per submission.
    pub refund: bool,
}

impl<'a> Ending<'a> {
    /// An ending without an error class and without a refund.
    pub fn plain(
        status: SubmissionStatus,
        error_code: Option<&'a str>,
        message: Option<&'a str>,
    ) -> Self {
        Ending {
            status,
            error_class: None,
            error_code,
            error_message: message,
            refund: false,
        }
    }
}

/// Final state of a submission (see [`Ending`]). Returns the credits refunded by this
/// call (0 when none).
pub async fn finish(pool: &PgPool, id: Uuid, end: Ending<'_>) -> Result<i64, StoreError> {
    let refunded = sqlx::query_scalar!(
        r#"WITH cur AS (
             SELECT id, generation_id, account_id, credits,
                 $6 AND credits > 0 AND NOT credits_refunded AS refund
             FROM provider_submissions WHERE id = $1 FOR UPDATE
         ), s AS (
             UPDATE provider_submissions p SET status = $2, error_class = $3, error_code = $4,
                 error_message = $5, finished_at = now(),
                 credits_refunded = p.credits_refunded OR cur.refund
             FROM cur WHERE p.id = cur.id
         ), g AS (
             UPDATE generations g SET credits_charged = g.credits_charged - cur.credits
             FROM cur WHERE cur.refund AND g.id = cur.generation_id
         ), a AS (
             UPDATE provider_accounts a SET credits = a.credits + cur.credits,
                 status = CASE WHEN a.status = 'exhausted' AND a.credits + cur.credits > 0
                               THEN 'active' ELSE a.status END,
                 updated_at = now()
             FROM cur WHERE cur.refund AND a.id = cur.account_id AND a.credits IS NOT NULL
         )
         SELECT CASE WHEN refund THEN credits ELSE 0 END AS "refunded!" FROM cur"#,
        id,
        end.status.as_str(),
        end.error_class,
        end.error_code,
        end.error_message,
        end.refund,
    )
    .fetch_optional(pool)
    .await?;
    Ok(refunded.unwrap_or(0))
}

/// The accepted, unfinished submission of one attempt (the one to cancel remotely).
pub async fn open_for_attempt(
    pool: &PgPool,
    job_id: Uuid,
    attempt: i32,
) -> Result<Option<SubmissionRow>, StoreError> {
    let row = submission_query!(
        "SELECT ",
        " FROM provider_submissions
         WHERE generation_id = $1 AND attempt = $2 AND status IN ('submitting', 'submitted')",
        job_id,
        attempt,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Submissions of a job, oldest first.
pub async fn list_for_job(pool: &PgPool, job_id: Uuid) -> Result<Vec<SubmissionRow>, StoreError> {
    let rows = submission_query!(
        "SELECT ",
        " FROM provider_submissions WHERE generation_id = $1 ORDER BY attempt",
        job_id,
    )
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
    let row = submission_query!(
        "SELECT ",
        " FROM provider_submissions
         WHERE generation_id = $1 AND attempt < $2 AND status = 'submitted'
           AND remote_id IS NOT NULL
         ORDER BY attempt DESC LIMIT 1",
        job_id,
        before_attempt,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}
