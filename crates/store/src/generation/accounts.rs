//! The `provider_accounts` table and atomic slot reservation.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::kinds::AccountStatus;
use crate::StoreError;

/// A provider account row. `api_key` is the key as stored: sealed by the generation
/// crate (`v1:…`), or plaintext in rows written before sealing existed. Callers must
/// not expose it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub provider: String,
    pub label: String,
    pub owner_id: Option<Uuid>,
    pub api_key: String,
    /// The key's last four characters, kept apart so listing never opens a key.
    pub api_key_hint: String,
    pub status: AccountStatus,
    pub priority: i32,
    pub credits: Option<i64>,
    pub max_concurrent_jobs: i32,
    pub current_jobs: i32,
    pub daily_limit: Option<i32>,
    pub jobs_today: i32,
    pub jobs_day: Option<NaiveDate>,
    pub cooldown_until: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When `credits` was last read from the provider's balance endpoint.
    pub balance_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `sqlx::query_as!(AccountRow, …)` with the columns of [`AccountRow`] between two
/// literals (a query macro takes literals only); `a:` qualifies them with the alias `a`.
/// Each column states its nullability (`!`, `?`) as [`AccountRow`] has it: PostgreSQL
/// does not report it through a CTE.
macro_rules! account_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            AccountRow,
            $before + r#"id AS "id!", provider AS "provider!", label AS "label!", owner_id AS "owner_id?", api_key AS "api_key!", api_key_hint AS "api_key_hint!", status AS "status!: _", priority AS "priority!", credits AS "credits?", max_concurrent_jobs AS "max_concurrent_jobs!", current_jobs AS "current_jobs!", daily_limit AS "daily_limit?", jobs_today AS "jobs_today!", jobs_day AS "jobs_day?", cooldown_until AS "cooldown_until?", last_used_at AS "last_used_at?", last_error AS "last_error?", balance_checked_at AS "balance_checked_at?", created_at AS "created_at!", updated_at AS "updated_at!""# + $after
            $(, $arg)*
        )
    };
    (a: $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            AccountRow,
            $before + r#"a.id AS "id!", a.provider AS "provider!", a.label AS "label!", a.owner_id AS "owner_id?", a.api_key AS "api_key!", a.api_key_hint AS "api_key_hint!", a.status AS "status!: _", a.priority AS "priority!", a.credits AS "credits?", a.max_concurrent_jobs AS "max_concurrent_jobs!", a.current_jobs AS "current_jobs!", a.daily_limit AS "daily_limit?", a.jobs_today AS "jobs_today!", a.jobs_day AS "jobs_day?", a.cooldown_until AS "cooldown_until?", a.last_used_at AS "last_used_at?", a.last_error AS "last_error?", a.balance_checked_at AS "balance_checked_at?", a.created_at AS "created_at!", a.updated_at AS "updated_at!""# + $after
            $(, $arg)*
        )
    };
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Chosen by the caller: the sealed key is bound to it.
    pub id: Uuid,
    pub provider: String,
    pub label: String,
    pub owner_id: Option<Uuid>,
    pub api_key: String,
    pub api_key_hint: String,
    pub status: AccountStatus,
    pub priority: i32,
    pub credits: Option<i64>,
    pub max_concurrent_jobs: i32,
    pub daily_limit: Option<i32>,
}

pub async fn create(pool: &PgPool, new: &NewAccount) -> Result<AccountRow, StoreError> {
    let row = account_query!(
        "INSERT INTO provider_accounts (id, provider, label, owner_id, api_key, api_key_hint,
             status, priority, credits, max_concurrent_jobs, daily_limit)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
        "",
        new.id,
        new.provider,
        new.label,
        new.owner_id,
        new.api_key,
        new.api_key_hint,
        new.status as _,
        new.priority,
        new.credits,
        new.max_concurrent_jobs,
        new.daily_limit,
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Accounts whose key is stored in plaintext (written before keys were sealed): id and
/// key, for sealing at startup.
pub async fn unsealed_keys(pool: &PgPool) -> Result<Vec<(Uuid, String)>, StoreError> {
    let rows =
        sqlx::query!("SELECT id, api_key FROM provider_accounts WHERE api_key NOT LIKE 'v1:%'")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.api_key)).collect())
}

/// Replaces a plaintext key by its sealed form, unless it changed meanwhile.
pub async fn seal_key(
    pool: &PgPool,
    id: Uuid,
    plain: &str,
    sealed: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "UPDATE provider_accounts SET api_key = $3 WHERE id = $1 AND api_key = $2",
        id,
        plain,
        sealed,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<AccountRow, StoreError> {
    let row = account_query!("SELECT ", " FROM provider_accounts WHERE id = $1", id)
        .fetch_optional(pool)
        .await?;
    row.ok_or(StoreError::NotFound("provider account"))
}

/// Accounts of a provider (all when `None`), visible to `visible_to` (its own and the
/// shared ones; all accounts when `None`).
pub async fn list(
    pool: &PgPool,
    provider: Option<&str>,
    visible_to: Option<Uuid>,
) -> Result<Vec<AccountRow>, StoreError> {
    let rows = account_query!(
        "SELECT ",
        " FROM provider_accounts
         WHERE ($1::text IS NULL OR provider = $1)
           AND ($2::uuid IS NULL OR owner_id IS NULL OR owner_id = $2)
         ORDER BY provider, priority DESC, created_at",
        provider,
        visible_to,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Changes to an account; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub label: Option<String>,
    /// The sealed key and its hint, changed together.
    pub api_key: Option<(String, String)>,
    pub status: Option<AccountStatus>,
    pub priority: Option<i32>,
    pub credits: Option<Option<i64>>,
    pub max_concurrent_jobs: Option<i32>,
    pub daily_limit: Option<Option<i32>>,
    pub cooldown_until: Option<Option<DateTime<Utc>>>,
}

pub async fn update(pool: &PgPool, id: Uuid, p: &AccountPatch) -> Result<AccountRow, StoreError> {
    let row = account_query!(
        "UPDATE provider_accounts SET
            label               = COALESCE($2, label),
            api_key             = COALESCE($3, api_key),
            api_key_hint        = COALESCE($4, api_key_hint),
            status              = COALESCE($5, status),
            priority            = COALESCE($6, priority),
            credits             = CASE WHEN $7 THEN $8 ELSE credits END,
            max_concurrent_jobs = COALESCE($9, max_concurrent_jobs),
            daily_limit         = CASE WHEN $10 THEN $11 ELSE daily_limit END,
            cooldown_until      = CASE WHEN $12 THEN $13 ELSE cooldown_until END,
            updated_at          = now()
         WHERE id = $1 RETURNING ",
        "",
        id,
        p.label.as_deref(),
        p.api_key.as_ref().map(|k| k.0.as_str()),
        p.api_key.as_ref().map(|k| k.1.as_str()),
        p.status as _,
        p.priority,
        p.credits.is_some(),
        p.credits.flatten(),
        p.max_concurrent_jobs,
        p.daily_limit.is_some(),
        p.daily_limit.flatten(),
        p.cooldown_until.is_some(),
        p.cooldown_until.flatten(),
    )
    .fetch_optional(pool)
    .await?;
    row.ok_or(StoreError::NotFound("provider account"))
}

pub async fn delete(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    let done = sqlx::query!("DELETE FROM provider_accounts WHERE id = $1", id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("provider account"));
    }
    Ok(())
}

/// Picks the best eligible account for a job attempt and takes one of its slots, in
/// one statement: candidates are locked `FOR UPDATE SKIP LOCKED` (a concurrent reserver
/// moves on to the next account), re-checked after the lock, and the job row records
/// the reservation under its lease fence `(job_id, attempt)` so a lease reclaim can give
/// the slot back. Order: the preferred account first, then priority desc, credits asc
/// (drain low balances first), least recently used. `None`: nothing eligible now.
pub async fn reserve(
    pool: &PgPool,
    provider: &str,
    user_id: Uuid,
    min_credits: i64,
    preferred: Option<Uuid>,
    job_id: Uuid,
    attempt: i32,
) -> Result<Option<AccountRow>, StoreError> {
    let row = account_query!(
        "WITH job AS (
             SELECT id FROM generations
             WHERE id = $5 AND attempt = $6 AND status = 'processing' AND NOT account_reserved
             FOR UPDATE
         ), pick AS (
             SELECT a.id FROM provider_accounts a, job
             WHERE a.provider = $1
               AND (a.owner_id IS NULL OR a.owner_id = $2)
               AND (a.status = 'active' OR (a.status = 'rate_limited' AND a.cooldown_until <= now()))
               AND (a.cooldown_until IS NULL OR a.cooldown_until <= now())
               AND a.current_jobs < a.max_concurrent_jobs
               AND (a.daily_limit IS NULL OR a.jobs_day IS DISTINCT FROM current_date
                    OR a.jobs_today < a.daily_limit)
               AND (a.credits IS NULL OR a.credits >= $3)
             ORDER BY (a.id = $4) IS TRUE DESC, a.priority DESC, a.credits ASC NULLS LAST,
                      a.last_used_at ASC NULLS FIRST, a.id
             LIMIT 1
             FOR UPDATE OF a SKIP LOCKED
         ), taken AS (
             UPDATE provider_accounts a SET
                 current_jobs = a.current_jobs + 1,
                 jobs_today = CASE WHEN a.jobs_day = current_date THEN a.jobs_today + 1 ELSE 1 END,
                 jobs_day = current_date,
                 status = CASE WHEN a.status = 'rate_limited' THEN 'active' ELSE a.status END,
                 last_used_at = clock_timestamp(),
                 updated_at = now()
             FROM pick WHERE a.id = pick.id AND a.current_jobs < a.max_concurrent_jobs
             RETURNING a.*
         ), mark AS (
             UPDATE generations g SET account_id = taken.id, account_reserved = true,
                 updated_at = now()
             FROM taken WHERE g.id = $5
         )
         SELECT ",
        " FROM taken",
        provider,
        user_id,
        min_credits,
        preferred,
        job_id,
        attempt,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Takes a slot of one given account regardless of its limits (a job adopting a
/// submission already running on it); fenced like [`reserve`].
pub async fn reserve_specific(
    pool: &PgPool,
    account_id: Uuid,
    job_id: Uuid,
    attempt: i32,
) -> Result<Option<AccountRow>, StoreError> {
    let row = account_query!(
        a: "WITH job AS (
             UPDATE generations SET account_id = $1, account_reserved = true, updated_at = now()
             WHERE id = $2 AND attempt = $3 AND status = 'processing' AND NOT account_reserved
             RETURNING id
         )
         UPDATE provider_accounts a SET current_jobs = a.current_jobs + 1,
             last_used_at = clock_timestamp(), updated_at = now()
         FROM job WHERE a.id = $1
         RETURNING ",
        "",
        account_id,
        job_id,
        attempt,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Gives back the slot held by a job attempt, if it holds one.
pub async fn release(pool: &PgPool, job_id: Uuid, attempt: i32) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "WITH g AS (
             UPDATE generations SET account_reserved = false
             WHERE id = $1 AND attempt = $2 AND account_reserved
             RETURNING account_id
         )
         UPDATE provider_accounts a SET current_jobs = GREATEST(a.current_jobs - 1, 0)
         FROM g WHERE a.id = g.account_id",
        job_id,
        attempt,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// True when some account of the provider visible to the user could ever take a job
/// (not disabled, errored or exhausted, and allowed at least one concurrent job).
pub async fn any_could_qualify(
    pool: &PgPool,
    provider: &str,
    user_id: Uuid,
) -> Result<bool, StoreError> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM provider_accounts
         WHERE provider = $1 AND (owner_id IS NULL OR owner_id = $2)
           AND status IN ('active', 'rate_limited') AND max_concurrent_jobs > 0
           AND (daily_limit IS NULL OR daily_limit > 0)) AS "found!""#,
        provider,
        user_id,
    )
    .fetch_one(pool)
    .await?;
    Ok(found)
}

/// Sets an account's status (with an optional error text and cooldown).
pub async fn set_status(
    pool: &PgPool,
    id: Uuid,
    status: AccountStatus,
    last_error: Option<&str>,
    cooldown_until: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE provider_accounts SET status = $2, last_error = COALESCE($3, last_error),
             cooldown_until = COALESCE($4, cooldown_until),
             credits = CASE WHEN $2 = 'exhausted' THEN 0 ELSE credits END,
             updated_at = now()
         WHERE id = $1",
        id,
        status as _,
        last_error,
        cooldown_until,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a balance read from the provider: `credits` becomes `balance`; an account
/// at zero becomes `exhausted`, and an exhausted one with credits again `active`.
pub async fn set_balance(pool: &PgPool, id: Uuid, balance: i64) -> Result<AccountRow, StoreError> {
    let row = account_query!(
        "UPDATE provider_accounts SET credits = $2::bigint, balance_checked_at = now(),
             status = CASE WHEN $2::bigint <= 0 AND status IN ('active', 'rate_limited') THEN 'exhausted'
                           WHEN $2::bigint > 0 AND status = 'exhausted' THEN 'active'
                           ELSE status END,
             updated_at = now()
         WHERE id = $1 RETURNING ",
        "",
        id,
        balance,
    )
    .fetch_optional(pool)
    .await?;
    row.ok_or(StoreError::NotFound("provider account"))
}

/// The provider answered "out of credits": the account becomes `exhausted`, with the
/// balance it reported (`None`: unknown, recorded as 0).
pub async fn exhaust(
    pool: &PgPool,
    id: Uuid,
    balance: Option<i64>,
    last_error: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE provider_accounts SET status = 'exhausted', last_error = $3,
             credits = COALESCE($2::bigint, 0),
             balance_checked_at = CASE WHEN $2 IS NULL THEN balance_checked_at ELSE now() END,
             updated_at = now()
         WHERE id = $1",
        id,
        balance,
        last_error,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Recomputes `current_jobs` from the jobs that hold a slot (repairs drift). The
/// accounts are locked first so the count, taken afterwards, sees every committed
/// reservation and none can slip in between (reservations skip locked accounts).
pub async fn reconcile(pool: &PgPool) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SELECT id FROM provider_accounts ORDER BY id FOR UPDATE")
        .fetch_all(&mut *tx)
        .await?;
    let done = sqlx::query!(
        "UPDATE provider_accounts a SET current_jobs = c.n
         FROM (SELECT a2.id, count(g.id)::int AS n FROM provider_accounts a2
               LEFT JOIN generations g ON g.account_id = a2.id AND g.account_reserved
               GROUP BY a2.id) c
         WHERE a.id = c.id AND a.current_jobs <> c.n",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}
