//! The `generations` table: jobs and the durable queue.
//!
//! Claims take pending jobs `FOR UPDATE SKIP LOCKED`, bump `attempt` and set a lease;
//! every later worker write names `(id, attempt, lease_owner)` and changes nothing when
//! the lease was lost (expired and reclaimed, or the job cancelled), so two attempts of
//! one job never both take effect.

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
}

/// The columns of [`JobRow`], for the statements built at run time.
pub const COLUMNS: &str = "id, user_id, provider, operation, params, inputs, params_hash, \
     status, priority, scheduled_at, idempotency_key, force_new, preferred_account_id, \
     account_id, account_reserved, attempt, lease_owner, lease_expires_at, heartbeat_at, \
     retry_count, max_retries, progress, asset_id, reused_from, parent_generation_id, \
     error_code, error_message, metadata, estimated_credits, credits_charged, created_at, \
     updated_at, started_at, completed_at";

/// `sqlx::query_as!(JobRow, …)` with the columns of [`JobRow`] between two literals (a
/// query macro takes literals only); `g:` qualifies them with the alias `g`. Each
/// column states its nullability (`!`, `?`) as [`JobRow`] has it: PostgreSQL does not
/// report it through a CTE.
macro_rules! job_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            JobRow,
            $before + "id AS \"id!\", user_id AS \"user_id!\", provider AS \"provider!\", operation AS \"operation!: _\", params AS \"params!\", inputs AS \"inputs!\", params_hash AS \"params_hash!\", status AS \"status!: _\", priority AS \"priority!\", scheduled_at AS \"scheduled_at!\", idempotency_key AS \"idempotency_key?\", force_new AS \"force_new!\", preferred_account_id AS \"preferred_account_id?\", account_id AS \"account_id?\", account_reserved AS \"account_reserved!\", attempt AS \"attempt!\", lease_owner AS \"lease_owner?\", lease_expires_at AS \"lease_expires_at?\", heartbeat_at AS \"heartbeat_at?\", retry_count AS \"retry_count!\", max_retries AS \"max_retries!\", progress AS \"progress?\", asset_id AS \"asset_id?\", reused_from AS \"reused_from?\", parent_generation_id AS \"parent_generation_id?\", error_code AS \"error_code?\", error_message AS \"error_message?\", metadata AS \"metadata!\", estimated_credits AS \"estimated_credits!\", credits_charged AS \"credits_charged!\", created_at AS \"created_at!\", updated_at AS \"updated_at!\", started_at AS \"started_at?\", completed_at AS \"completed_at?\"" + $after
            $(, $arg)*
        )
    };
    (g: $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            JobRow,
            $before + "g.id AS \"id!\", g.user_id AS \"user_id!\", g.provider AS \"provider!\", g.operation AS \"operation!: _\", g.params AS \"params!\", g.inputs AS \"inputs!\", g.params_hash AS \"params_hash!\", g.status AS \"status!: _\", g.priority AS \"priority!\", g.scheduled_at AS \"scheduled_at!\", g.idempotency_key AS \"idempotency_key?\", g.force_new AS \"force_new!\", g.preferred_account_id AS \"preferred_account_id?\", g.account_id AS \"account_id?\", g.account_reserved AS \"account_reserved!\", g.attempt AS \"attempt!\", g.lease_owner AS \"lease_owner?\", g.lease_expires_at AS \"lease_expires_at?\", g.heartbeat_at AS \"heartbeat_at?\", g.retry_count AS \"retry_count!\", g.max_retries AS \"max_retries!\", g.progress AS \"progress?\", g.asset_id AS \"asset_id?\", g.reused_from AS \"reused_from?\", g.parent_generation_id AS \"parent_generation_id?\", g.error_code AS \"error_code?\", g.error_message AS \"error_message?\", g.metadata AS \"metadata!\", g.estimated_credits AS \"estimated_credits!\", g.credits_charged AS \"credits_charged!\", g.created_at AS \"created_at!\", g.updated_at AS \"updated_at!\", g.started_at AS \"started_at?\", g.completed_at AS \"completed_at?\"" + $after
            $(, $arg)*
        )
    };
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A new job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub operation: Operation,
    pub params: serde_json::Value,
    pub inputs: serde_json::Value,
    pub params_hash: String,
    pub priority: i16,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    /// Never reuse a completed job's asset (see [`insert`]).
    pub force_new: bool,
    pub preferred_account_id: Option<Uuid>,
    pub parent_generation_id: Option<Uuid>,
    pub max_retries: i32,
    pub metadata: serde_json::Value,
    pub estimated_credits: i64,
}

/// What [`insert`] did.
#[derive(Debug, Clone)]
pub enum InsertOutcome {
    /// A new job: pending, or completed at once with the asset of the user's latest
    /// completed job of the same parameter hash (`reused_from` set).
    Created(JobRow),
    /// A job with the same idempotency key exists for this user.
    Existing(JobRow),
    /// The user already has `limit` active (pending, processing or paused) jobs.
    LimitExceeded { active: i64 },
}

/// The whole create in one statement: the job already holding the idempotency key
/// (`existing`), the asset to reuse (`reuse`, unless `force_new`), the user's active
/// count when a limit applies, and the insert, which happens only when no job holds the
/// key and the limit allows it (a reuse is completed at once, so the limit does not
/// apply to it). Returns the created or the existing row, tagged; no row means the
/// limit refused it or a concurrent insert took the key.
const INSERT: &str = "WITH existing AS (
         SELECT {COLUMNS} FROM generations
         WHERE $10::text IS NOT NULL AND user_id = $2 AND idempotency_key = $10
     ), reuse AS (
         SELECT id, asset_id FROM generations
         WHERE NOT $11 AND user_id = $2 AND params_hash = $7 AND status = 'completed'
           AND asset_id IS NOT NULL
         ORDER BY completed_at DESC LIMIT 1
     ), active AS (
         SELECT count(*) AS n FROM generations
         WHERE $17::bigint IS NOT NULL AND user_id = $2
           AND status IN ('pending', 'processing', 'paused')
     ), ins AS (
         INSERT INTO generations (id, user_id, provider, operation, params, inputs,
             params_hash, status, priority, scheduled_at, idempotency_key, force_new,
             preferred_account_id, parent_generation_id, max_retries, metadata,
             estimated_credits, asset_id, reused_from, completed_at)
         SELECT $1, $2, $3, $4, $5, $6, $7,
             CASE WHEN r.id IS NULL THEN 'pending' ELSE 'completed' END,
             $8, COALESCE($9, now()), $10, $11, $12, $13, $14, $15, $16, r.asset_id, r.id,
             CASE WHEN r.id IS NOT NULL THEN now() END
         FROM (SELECT 1) AS one LEFT JOIN reuse r ON true
         WHERE NOT EXISTS (SELECT 1 FROM existing)
           AND ($17::bigint IS NULL OR r.id IS NOT NULL OR (SELECT n FROM active) < $17)
         ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING {COLUMNS}
     )
     SELECT true AS created, ins.* FROM ins
     UNION ALL
     SELECT false AS created, existing.* FROM existing";

#[derive(sqlx::FromRow)]
struct Inserted {
    created: bool,
    #[sqlx(flatten)]
    row: JobRow,
}

/// Inserts a job in one round trip (see [`INSERT`]): with an idempotency key, returns
/// the job that already holds it (also when a concurrent insert wins the race); with
/// the same parameter hash as a completed job of the user and not `force_new`, the job
/// is created completed with that job's asset. With `active_limit`, the statement runs
/// after a per-user transaction lock, so the limit holds under concurrency (a
/// statement sees only what was committed before it started).
///
/// Runtime-checked: the row comes back tagged (`created`) and flattened into
/// [`JobRow`], which `query_as!` cannot map.
pub async fn insert(
    pool: &PgPool,
    new: &NewJob,
    active_limit: Option<i64>,
) -> Result<InsertOutcome, StoreError> {
    let sql = INSERT.replace("{COLUMNS}", COLUMNS);
    let q = sqlx::query_as::<_, Inserted>(&sql)
        .bind(new.id)
        .bind(new.user_id)
        .bind(&new.provider)
        .bind(new.operation)
        .bind(&new.params)
        .bind(&new.inputs)
        .bind(&new.params_hash)
        .bind(new.priority)
        .bind(new.scheduled_at)
        .bind(&new.idempotency_key)
        .bind(new.force_new)
        .bind(new.preferred_account_id)
        .bind(new.parent_generation_id)
        .bind(new.max_retries)
        .bind(&new.metadata)
        .bind(new.estimated_credits)
        .bind(active_limit);
    let got = match active_limit {
        Some(_) => {
            let mut tx = pool.begin().await?;
            sqlx::query!(
                "SELECT pg_advisory_xact_lock(7420112, hashtext($1::uuid::text))",
                new.user_id,
            )
            .fetch_one(&mut *tx)
            .await?;
            let got = q.fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            got
        }
        None => q.fetch_optional(pool).await?,
    };
    match got {
        Some(Inserted { created: true, row }) => Ok(InsertOutcome::Created(row)),
        Some(Inserted { row, .. }) => Ok(InsertOutcome::Existing(row)),
        // A concurrent insert took the key after this statement's snapshot.
        None => match by_idempotency_key(pool, new).await? {
            Some(row) => Ok(InsertOutcome::Existing(row)),
            None => match active_limit {
                Some(_) => Ok(InsertOutcome::LimitExceeded {
                    active: count_active(pool, new.user_id).await?,
                }),
                None => Err(StoreError::Conflict("a generation with this id")),
            },
        },
    }
}

/// [`insert`] for many jobs without idempotency keys, in one statement (under the
/// per-user locks when a limit applies): each job reuses the latest completed job of
/// its user with its parameter hash (unless `force_new`), or becomes pending when its
/// user's limit allows it, counting the jobs before it in the batch. `limits[i]` is
/// job `i`'s limit. Returns one outcome per job, in order.
///
/// Jobs with an idempotency key must go through [`insert`]: their key is not written.
///
/// Runtime-checked, like the other batch statements: its column lists are spliced in.
pub async fn insert_batch(
    pool: &PgPool,
    jobs: &[NewJob],
    limits: &[Option<i64>],
) -> Result<Vec<InsertOutcome>, StoreError> {
    debug_assert!(jobs.iter().all(|j| j.idempotency_key.is_none()));
    debug_assert_eq!(jobs.len(), limits.len());
    let col = |f: fn(&NewJob) -> serde_json::Value| jobs.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let users: Vec<Uuid> = jobs.iter().map(|j| j.user_id).collect();
    let providers: Vec<&str> = jobs.iter().map(|j| j.provider.as_str()).collect();
    let operations: Vec<Operation> = jobs.iter().map(|j| j.operation).collect();
    let params = col(|j| j.params.clone());
    let inputs = col(|j| j.inputs.clone());
    let hashes: Vec<&str> = jobs.iter().map(|j| j.params_hash.as_str()).collect();
    let priorities: Vec<i16> = jobs.iter().map(|j| j.priority).collect();
    let scheduled: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|j| j.scheduled_at).collect();
    let force_new: Vec<bool> = jobs.iter().map(|j| j.force_new).collect();
    let preferred: Vec<Option<Uuid>> = jobs.iter().map(|j| j.preferred_account_id).collect();
    let parents: Vec<Option<Uuid>> = jobs.iter().map(|j| j.parent_generation_id).collect();
    let max_retries: Vec<i32> = jobs.iter().map(|j| j.max_retries).collect();
    let metadata = col(|j| j.metadata.clone());
    let credits: Vec<i64> = jobs.iter().map(|j| j.estimated_credits).collect();
    let sql = format!(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[],
                 $6::jsonb[], $7::text[], $8::int2[], $9::timestamptz[], $10::bool[],
                 $11::uuid[], $12::uuid[], $13::int4[], $14::jsonb[], $15::int8[], $16::int8[])
                 WITH ORDINALITY AS i(id, user_id, provider, operation, params, inputs,
                     params_hash, priority, scheduled_at, force_new, preferred_account_id,
                     parent_generation_id, max_retries, metadata, estimated_credits,
                     active_limit, ord)
         ), decided AS (
             SELECT i.*, r.id AS reuse_id, r.asset_id AS reuse_asset, a.n AS active,
                 row_number() OVER (PARTITION BY i.user_id, r.id IS NULL ORDER BY i.ord) AS pos
             FROM input i
             LEFT JOIN LATERAL (
                 SELECT g.id, g.asset_id FROM generations g
                 WHERE NOT i.force_new AND g.user_id = i.user_id
                   AND g.params_hash = i.params_hash AND g.status = 'completed'
                   AND g.asset_id IS NOT NULL
                 ORDER BY g.completed_at DESC LIMIT 1
             ) r ON true
             LEFT JOIN LATERAL (
                 SELECT count(*) AS n FROM generations g
                 WHERE i.active_limit IS NOT NULL AND g.user_id = i.user_id
                   AND g.status IN ('pending', 'processing', 'paused')
             ) a ON true
         )
         INSERT INTO generations (id, user_id, provider, operation, params, inputs,
             params_hash, status, priority, scheduled_at, force_new, preferred_account_id,
             parent_generation_id, max_retries, metadata, estimated_credits, asset_id,
             reused_from, completed_at)
         SELECT d.id, d.user_id, d.provider, d.operation, d.params, d.inputs, d.params_hash,
             CASE WHEN d.reuse_id IS NULL THEN 'pending' ELSE 'completed' END,
             d.priority, COALESCE(d.scheduled_at, now()), d.force_new, d.preferred_account_id,
             d.parent_generation_id, d.max_retries, d.metadata, d.estimated_credits,
             d.reuse_asset, d.reuse_id, CASE WHEN d.reuse_id IS NOT NULL THEN now() END
         FROM decided d
         WHERE d.active_limit IS NULL OR d.reuse_id IS NOT NULL OR d.active + d.pos <= d.active_limit
         ORDER BY d.ord
         RETURNING {COLUMNS}"
    );
    let q = sqlx::query_as::<_, JobRow>(&sql)
        .bind(&ids)
        .bind(&users)
        .bind(&providers)
        .bind(&operations)
        .bind(&params)
        .bind(&inputs)
        .bind(&hashes)
        .bind(&priorities)
        .bind(&scheduled)
        .bind(&force_new)
        .bind(&preferred)
        .bind(&parents)
        .bind(&max_retries)
        .bind(&metadata)
        .bind(&credits)
        .bind(limits);
    let rows = if limits.iter().any(Option::is_some) {
        let mut limited: Vec<Uuid> = jobs
            .iter()
            .zip(limits)
            .filter(|(_, l)| l.is_some())
            .map(|(j, _)| j.user_id)
            .collect();
        limited.sort();
        limited.dedup();
        let mut tx = pool.begin().await?;
        // The users' locks in one order, so batches never wait on each other in a cycle.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(7420112, h)
             FROM (SELECT DISTINCT hashtext(u::text) AS h FROM unnest($1::uuid[]) u ORDER BY 1) s",
            &limited,
        )
        .fetch_all(&mut *tx)
        .await?;
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows
    } else {
        q.fetch_all(pool).await?
    };
    let mut by_id: std::collections::HashMap<Uuid, JobRow> =
        rows.into_iter().map(|r| (r.id, r)).collect();
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(match by_id.remove(&job.id) {
            Some(row) => InsertOutcome::Created(row),
            None => InsertOutcome::LimitExceeded {
                active: count_active(pool, job.user_id).await?,
            },
        });
    }
    Ok(out)
}

async fn by_idempotency_key(pool: &PgPool, new: &NewJob) -> Result<Option<JobRow>, StoreError> {
    let Some(key) = &new.idempotency_key else {
        return Ok(None);
    };
    let row = job_query!(
        "SELECT ",
        " FROM generations WHERE user_id = $1 AND idempotency_key = $2",
        new.user_id,
        key,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// The most recent completed job of the user with this parameter hash whose asset
/// still exists.
pub async fn find_reusable(
    pool: &PgPool,
    user_id: Uuid,
    params_hash: &str,
) -> Result<Option<JobRow>, StoreError> {
    let row = job_query!(
        "SELECT ",
        " FROM generations
         WHERE user_id = $1 AND params_hash = $2 AND status = 'completed' AND asset_id IS NOT NULL
         ORDER BY completed_at DESC LIMIT 1",
        user_id,
        params_hash,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<JobRow, StoreError> {
    let row = job_query!("SELECT ", " FROM generations WHERE id = $1", id)
        .fetch_optional(pool)
        .await?;
    row.ok_or(StoreError::NotFound("generation"))
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

/// Claims up to `limit` due pending jobs for `owner`: status processing, attempt + 1,
/// lease until now + `lease`. Highest priority first, then oldest.
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
             updated_at = now(), error_code = NULL, error_message = NULL
         WHERE g.id IN (
             SELECT id FROM generations
             WHERE status = 'pending' AND scheduled_at <= now()
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

/// A user-requested state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// pending, paused or processing → cancelled (a running attempt loses its lease).
    Cancel,
    /// pending → paused.
    Pause,
    /// paused → pending.
    Resume,
    /// failed or cancelled → pending, retries reset.
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
