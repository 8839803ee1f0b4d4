//! Credit budgets (`credit_budgets`): limits per user and per world, and what each has
//! spent. A job counts toward its user, and toward the world its `metadata.world`
//! names: while unfinished with its estimated credits, once finished with the credits
//! it was charged (a completed job that no provider charged, such as a priced `local`
//! render, with its estimate; one that reused an asset with nothing). "Today" is the
//! UTC day of the job's creation.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

/// A budget row with what its scope has spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRow {
    /// `user` or `world`.
    pub scope: String,
    pub scope_id: String,
    pub daily_limit: Option<i64>,
    pub total_limit: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub spent_today: i64,
    pub spent_total: i64,
}

/// Every budget, without spending (what a create checks against).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLimits {
    pub scope: String,
    pub scope_id: String,
    pub daily_limit: Option<i64>,
    pub total_limit: Option<i64>,
}

pub async fn all_limits(pool: &PgPool) -> Result<Vec<BudgetLimits>, StoreError> {
    let rows = sqlx::query_as!(
        BudgetLimits,
        "SELECT scope, scope_id, daily_limit, total_limit FROM credit_budgets"
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Spent (today, in all) by a scope.
pub async fn spent(
    conn: &mut PgConnection,
    scope: &str,
    scope_id: &str,
) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query!(
        r#"SELECT
             COALESCE(sum(CASE WHEN status IN ('pending', 'processing', 'paused') THEN estimated_credits
                               WHEN status = 'completed' AND reused_from IS NULL AND credits_charged = 0
                               THEN estimated_credits
                               ELSE credits_charged END)
                      FILTER (WHERE created_at >= date_trunc('day', now(), 'UTC')), 0)::bigint AS "today!",
             COALESCE(sum(CASE WHEN status IN ('pending', 'processing', 'paused') THEN estimated_credits
                               WHEN status = 'completed' AND reused_from IS NULL AND credits_charged = 0
                               THEN estimated_credits
                               ELSE credits_charged END), 0)::bigint AS "total!"
           FROM generations
           WHERE ($1 = 'user' AND user_id::text = $2)
              OR ($1 = 'world' AND metadata ? 'world' AND metadata ->> 'world' = $2)"#,
        scope,
        scope_id,
    )
    .fetch_one(conn)
    .await?;
    Ok((row.today, row.total))
}

/// Every budget with its spending, ordered by scope and id.
pub async fn list(pool: &PgPool) -> Result<Vec<BudgetRow>, StoreError> {
    let limits = sqlx::query!(
        "SELECT scope, scope_id, daily_limit, total_limit, updated_at
         FROM credit_budgets ORDER BY scope, scope_id"
    )
    .fetch_all(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let mut out = Vec::with_capacity(limits.len());
    for l in limits {
        let (today, total) = spent(&mut conn, &l.scope, &l.scope_id).await?;
        out.push(BudgetRow {
            scope: l.scope,
            scope_id: l.scope_id,
            daily_limit: l.daily_limit,
            total_limit: l.total_limit,
            updated_at: l.updated_at,
            spent_today: today,
            spent_total: total,
        });
    }
    Ok(out)
}

/// Sets (creates or replaces) a budget; returns it with its spending.
pub async fn set(
    pool: &PgPool,
    scope: &str,
    scope_id: &str,
    daily_limit: Option<i64>,
    total_limit: Option<i64>,
) -> Result<BudgetRow, StoreError> {
    let updated_at = sqlx::query_scalar!(
        "INSERT INTO credit_budgets (scope, scope_id, daily_limit, total_limit)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope, scope_id) DO UPDATE
         SET daily_limit = EXCLUDED.daily_limit, total_limit = EXCLUDED.total_limit,
             updated_at = now()
         RETURNING updated_at",
        scope,
        scope_id,
        daily_limit,
        total_limit,
    )
    .fetch_one(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let (today, total) = spent(&mut conn, scope, scope_id).await?;
    Ok(BudgetRow {
        scope: scope.to_owned(),
        scope_id: scope_id.to_owned(),
        daily_limit,
        total_limit,
        updated_at,
        spent_today: today,
        spent_total: total,
    })
}

/// Removes a budget; false when there was none.
pub async fn delete(pool: &PgPool, scope: &str, scope_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM credit_budgets WHERE scope = $1 AND scope_id = $2",
        scope,
        scope_id,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes the transaction lock of a budget scope: creates checked against the same
/// scope run one after another, so two cannot both fit under one limit.
pub async fn lock(conn: &mut PgConnection, scope: &str, scope_id: &str) -> Result<(), StoreError> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(7420113, hashtext($1 || ':' || $2))",
        scope,
        scope_id,
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}
