//! Counts for `/metrics`: jobs by status, provider calls by outcome and error class.

use sqlx::PgPool;

use crate::StoreError;

/// `(status, jobs)` for every job status present.
pub async fn jobs_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT status, count(*) FROM generations GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await?,
    )
}

/// `(provider, status, error class or "", calls)`: one row per group of provider submissions.
pub async fn provider_calls(
    pool: &PgPool,
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT provider, status, coalesce(error_class, ''), count(*)
         FROM provider_submissions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await?)
}
