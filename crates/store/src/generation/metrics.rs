//! Counts for `/metrics`: jobs by status, provider calls by outcome and error class.

use sqlx::PgPool;

use crate::StoreError;

/// `(status, jobs)` for every job status present.
pub async fn jobs_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "n!" FROM generations GROUP BY status ORDER BY status"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

/// `(provider, status, error class or "", calls)`: one row per group of provider submissions.
pub async fn provider_calls(
    pool: &PgPool,
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT provider, status, coalesce(error_class, '') AS "class!", count(*) AS "n!"
         FROM provider_submissions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.provider, r.status, r.class, r.n))
        .collect())
}
