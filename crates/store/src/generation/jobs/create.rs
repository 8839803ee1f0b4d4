//! Creating jobs: one (with an idempotency key and an active-job limit) or a batch,
//! reusing a completed job's asset for the same parameter hash.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{COLUMNS, JobRow, count_active};
use crate::StoreError;
use crate::generation::kinds::Operation;

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
    /// Cancelled with `deadline_exceeded` when not started by then.
    pub deadline_at: Option<DateTime<Utc>>,
    /// Reuse this asset (one similar to what the job would make) when no completed
    /// job has the same parameter hash: the job is created completed with it. Only
    /// [`insert`] and [`insert_within`] honour it (a batch create never reuses by
    /// similarity).
    pub reuse_asset_id: Option<Uuid>,
}

/// What [`insert`] did.
#[derive(Debug, Clone)]
pub enum InsertOutcome {
    /// A new job: pending, or completed at once with the asset of the user's latest
    /// completed job of the same parameter hash (`reused_from` set).
    Created(JobRow),
    /// A job with the same idempotency key exists for this user (created within the
    /// [`IDEMPOTENCY_WINDOW`]).
    Existing(JobRow),
    /// The user already has `limit` active (pending, processing or paused) jobs.
    LimitExceeded { active: i64 },
    /// The job would go over a budget (see [`insert_within`]).
    OverBudget(OverBudget),
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
           AND created_at > now() - make_interval(hours => 24)
     ), reuse AS (
         SELECT id, asset_id FROM (
             (SELECT id, asset_id, 0 AS pref FROM generations
              WHERE NOT $11 AND user_id = $2 AND params_hash = $7 AND status = 'completed'
                AND asset_id IS NOT NULL
              ORDER BY completed_at DESC LIMIT 1)
             UNION ALL
             SELECT source_generation_id, id, 1 FROM assets WHERE id = $19::uuid
         ) c ORDER BY pref LIMIT 1
     ), active AS (
         SELECT count(*) AS n FROM generations
         WHERE $17::bigint IS NOT NULL AND user_id = $2
           AND status IN ('pending', 'processing', 'paused')
     ), ins AS (
         INSERT INTO generations (id, user_id, provider, operation, params, inputs,
             params_hash, status, priority, scheduled_at, idempotency_key, force_new,
             preferred_account_id, parent_generation_id, max_retries, metadata,
             estimated_credits, asset_id, reused_from, completed_at, deadline_at)
         SELECT $1, $2, $3, $4, $5, $6, $7,
             CASE WHEN r.asset_id IS NULL THEN 'pending' ELSE 'completed' END,
             $8, COALESCE($9, now()), $10, $11, $12, $13, $14, $15, $16, r.asset_id, r.id,
             CASE WHEN r.asset_id IS NOT NULL THEN now() END, $18
         FROM (SELECT 1) AS one LEFT JOIN reuse r ON true
         WHERE NOT EXISTS (SELECT 1 FROM existing)
           AND ($17::bigint IS NULL OR r.asset_id IS NOT NULL OR (SELECT n FROM active) < $17)
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
    insert_within(pool, new, active_limit, &[]).await
}

/// A budget a create is checked against (see [`insert_within`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    /// `user` or `world`.
    pub scope: String,
    pub scope_id: String,
    pub daily_limit: Option<i64>,
    pub total_limit: Option<i64>,
}

/// The limit a create would have gone over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    pub scope: String,
    pub scope_id: String,
    /// `daily` or `total`.
    pub period: &'static str,
    pub limit: i64,
    pub spent: i64,
}

/// [`insert`], checked against `budgets` in the same transaction: under each budget
/// scope's lock (so concurrent creates count each other), a job that would bring a
/// scope's spending today or in all over its limit is refused ([`InsertOutcome::
/// OverBudget`]), unless it costs nothing (no estimate, or it reuses a completed job's
/// asset) or its idempotency key names an existing job.
pub async fn insert_within(
    pool: &PgPool,
    new: &NewJob,
    active_limit: Option<i64>,
    budgets: &[BudgetCheck],
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
        .bind(active_limit)
        .bind(new.deadline_at)
        .bind(new.reuse_asset_id);
    let mut tx = pool.begin().await?;
    if active_limit.is_some() {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(7420112, hashtext($1::uuid::text))",
            new.user_id,
        )
        .fetch_one(&mut *tx)
        .await?;
    }
    if !budgets.is_empty() && new.estimated_credits > 0 {
        let mut sorted: Vec<&BudgetCheck> = budgets.iter().collect();
        sorted.sort_by(|a, b| (&a.scope, &a.scope_id).cmp(&(&b.scope, &b.scope_id)));
        for b in &sorted {
            crate::generation::budgets::lock(&mut tx, &b.scope, &b.scope_id).await?;
        }
        if !costs_nothing(&mut tx, new).await? {
            for b in sorted {
                let (today, total) =
                    crate::generation::budgets::spent(&mut tx, &b.scope, &b.scope_id).await?;
                let over = [
                    ("daily", b.daily_limit, today),
                    ("total", b.total_limit, total),
                ]
                .into_iter()
                .find_map(|(period, limit, spent)| {
                    let limit = limit?;
                    (spent.saturating_add(new.estimated_credits) > limit).then(|| OverBudget {
                        scope: b.scope.clone(),
                        scope_id: b.scope_id.clone(),
                        period,
                        limit,
                        spent,
                    })
                });
                if let Some(over) = over {
                    tx.rollback().await?;
                    return Ok(InsertOutcome::OverBudget(over));
                }
            }
        }
    }
    expire_idempotency_key(&mut tx, new).await?;
    let got = q.fetch_optional(&mut *tx).await?;
    tx.commit().await?;
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

/// True when the create would cost nothing: its idempotency key names a live job
/// (which it returns), or it reuses a completed job's asset.
async fn costs_nothing(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    new: &NewJob,
) -> Result<bool, StoreError> {
    let free = sqlx::query_scalar!(
        r#"SELECT (
             ($3::text IS NOT NULL AND EXISTS (
                 SELECT 1 FROM generations WHERE user_id = $1 AND idempotency_key = $3
                   AND created_at > now() - make_interval(hours => 24)))
             OR (NOT $4 AND EXISTS (
                 SELECT 1 FROM generations WHERE user_id = $1 AND params_hash = $2
                   AND status = 'completed' AND asset_id IS NOT NULL))
             OR EXISTS (SELECT 1 FROM assets WHERE id = $5)
           ) AS "free!""#,
        new.user_id,
        new.params_hash,
        new.idempotency_key,
        new.force_new,
        new.reuse_asset_id,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(free)
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
    let sql = INSERT_BATCH.replace("{COLUMNS}", COLUMNS);
    let q = bind_batch(sqlx::query_as::<_, JobRow>(&sql), jobs, limits);
    let rows = if limits.iter().any(Option::is_some) {
        let limited = limited_users(jobs, limits);
        let mut tx = pool.begin().await?;
        lock_users(&mut tx, &limited).await?;
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows
    } else {
        q.fetch_all(pool).await?
    };
    batch_outcomes(pool, jobs, rows).await
}

/// The statement of [`insert_batch`]: `$1`..`$17` one element per job (see
/// [`bind_batch`]); `{COLUMNS}` is replaced by the job columns.
const INSERT_BATCH: &str = "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[],
                 $6::jsonb[], $7::text[], $8::int2[], $9::timestamptz[], $10::bool[],
                 $11::uuid[], $12::uuid[], $13::int4[], $14::jsonb[], $15::int8[], $16::int8[],
                 $17::timestamptz[])
                 WITH ORDINALITY AS i(id, user_id, provider, operation, params, inputs,
                     params_hash, priority, scheduled_at, force_new, preferred_account_id,
                     parent_generation_id, max_retries, metadata, estimated_credits,
                     active_limit, deadline_at, ord)
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
             reused_from, completed_at, deadline_at)
         SELECT d.id, d.user_id, d.provider, d.operation, d.params, d.inputs, d.params_hash,
             CASE WHEN d.reuse_id IS NULL THEN 'pending' ELSE 'completed' END,
             d.priority, COALESCE(d.scheduled_at, now()), d.force_new, d.preferred_account_id,
             d.parent_generation_id, d.max_retries, d.metadata, d.estimated_credits,
             d.reuse_asset, d.reuse_id, CASE WHEN d.reuse_id IS NOT NULL THEN now() END,
             d.deadline_at
         FROM decided d
         WHERE d.active_limit IS NULL OR d.reuse_id IS NOT NULL OR d.active + d.pos <= d.active_limit
         ORDER BY d.ord
         RETURNING {COLUMNS}";

/// The statement of [`insert_batch`] being bound.
type BatchQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, JobRow, sqlx::postgres::PgArguments>;

/// Binds `$1`..`$17` of [`INSERT_BATCH`]: the jobs' columns, their limits, their
/// deadlines.
fn bind_batch<'q>(
    query: BatchQuery<'q>,
    jobs: &'q [NewJob],
    limits: &'q [Option<i64>],
) -> BatchQuery<'q> {
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
    let deadlines: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|j| j.deadline_at).collect();
    query
        .bind(ids)
        .bind(users)
        .bind(providers)
        .bind(operations)
        .bind(params)
        .bind(inputs)
        .bind(hashes)
        .bind(priorities)
        .bind(scheduled)
        .bind(force_new)
        .bind(preferred)
        .bind(parents)
        .bind(max_retries)
        .bind(metadata)
        .bind(credits)
        .bind(limits)
        .bind(deadlines)
}

/// The users of the jobs that have a limit, sorted, each once.
fn limited_users(jobs: &[NewJob], limits: &[Option<i64>]) -> Vec<Uuid> {
    let mut limited: Vec<Uuid> = jobs
        .iter()
        .zip(limits)
        .filter(|(_, l)| l.is_some())
        .map(|(j, _)| j.user_id)
        .collect();
    limited.sort();
    limited.dedup();
    limited
}

/// Takes the per-user transaction locks of `users` (the lock of [`insert`]).
async fn lock_users(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    users: &[Uuid],
) -> Result<(), StoreError> {
    // The users' locks in one order, so batches never wait on each other in a cycle.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(7420112, h)
             FROM (SELECT DISTINCT hashtext(u::text) AS h FROM unnest($1::uuid[]) u ORDER BY 1) s",
        users,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(())
}

/// One outcome per job, in order: created when [`INSERT_BATCH`] returned its row, else
/// refused by its user's limit (with the user's active count now).
async fn batch_outcomes(
    pool: &PgPool,
    jobs: &[NewJob],
    rows: Vec<JobRow>,
) -> Result<Vec<InsertOutcome>, StoreError> {
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

/// How long an idempotency key holds: a create with a key that a job of the same user
/// received longer ago than this makes a new job (the old job loses its key).
pub const IDEMPOTENCY_WINDOW_HOURS: i32 = 24;

/// See [`IDEMPOTENCY_WINDOW_HOURS`].
pub const IDEMPOTENCY_WINDOW: std::time::Duration =
    std::time::Duration::from_secs(IDEMPOTENCY_WINDOW_HOURS as u64 * 3600);

/// Takes the key of [`NewJob::idempotency_key`] off the user's job that received it
/// longer than [`IDEMPOTENCY_WINDOW`] ago, so the insert after it may use it (the key is
/// unique per user in the table). Nothing without a key.
async fn expire_idempotency_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    new: &NewJob,
) -> Result<(), StoreError> {
    let Some(key) = &new.idempotency_key else {
        return Ok(());
    };
    sqlx::query!(
        "UPDATE generations SET idempotency_key = NULL, updated_at = now()
         WHERE user_id = $1 AND idempotency_key = $2
           AND created_at <= now() - make_interval(hours => $3)",
        new.user_id,
        key,
        IDEMPOTENCY_WINDOW_HOURS,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
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
