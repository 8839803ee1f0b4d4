//! Asset embeddings (`assets.embedding`, `embedder`, `embedded_at`): what the embedding
//! task still has to do, storing a vector, and nearest neighbours by cosine distance
//! over the HNSW index.

use sqlx::PgPool;
use uuid::Uuid;

use super::kinds::MediaType;
use crate::StoreError;

/// An asset the current embedder has not embedded.
#[derive(Debug, Clone)]
pub struct ToEmbed {
    pub id: Uuid,
    pub path: String,
    pub media_type: MediaType,
}

/// Up to `limit` images and videos not embedded by `embedder` (never, or by another),
/// oldest first.
pub async fn pending(
    pool: &PgPool,
    embedder: &str,
    limit: i64,
) -> Result<Vec<ToEmbed>, StoreError> {
    let rows = sqlx::query_as!(
        ToEmbed,
        r#"SELECT id AS "id!", path AS "path!", media_type AS "media_type!: _"
           FROM assets
           WHERE embedder IS DISTINCT FROM $1 AND media_type IN ('image', 'video')
           ORDER BY created_at, id
           LIMIT $2"#,
        embedder,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// How many images and videos `embedder` has still to embed.
pub async fn count_pending(pool: &PgPool, embedder: &str) -> Result<i64, StoreError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM assets
           WHERE embedder IS DISTINCT FROM $1 AND media_type IN ('image', 'video')"#,
        embedder,
    )
    .fetch_one(pool)
    .await?;
    Ok(n)
}

/// Stores `embedding` (the column's dimension) as `embedder`'s; `None`: the embedder
/// could not read the asset (it is not retried until the embedder changes).
pub async fn set(
    pool: &PgPool,
    id: Uuid,
    embedder: &str,
    embedding: Option<&[f32]>,
) -> Result<(), StoreError> {
    // pgvector reads its text form, `[x,y,…]`.
    let text = embedding.map(|v| {
        let mut s = String::with_capacity(v.len() * 10 + 2);
        s.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&x.to_string());
        }
        s.push(']');
        s
    });
    sqlx::query!(
        "UPDATE assets SET embedding = $3::text::vector, embedder = $2, embedded_at = now()
         WHERE id = $1",
        id,
        embedder,
        text,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether the asset has a vector of `embedder` (`None`: no such asset).
pub async fn is_embedded(
    pool: &PgPool,
    id: Uuid,
    embedder: &str,
) -> Result<Option<bool>, StoreError> {
    let row = sqlx::query_scalar!(
        r#"SELECT (embedding IS NOT NULL AND embedder = $2) AS "ok!" FROM assets WHERE id = $1"#,
        id,
        embedder,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// The `limit` assets nearest to asset `id` by cosine distance among those embedded by
/// the same embedder, `id` itself left out, nearest first: `(id, distance)`. Only the
/// assets of `owners` when given (a caller's own and the shared content assets).
/// The HNSW scan is iterative (pgvector 0.8), so a filter that rejects most
/// candidates still fills the page.
pub async fn similar(
    pool: &PgPool,
    id: Uuid,
    owners: Option<&[Uuid]>,
    limit: i64,
) -> Result<Vec<(Uuid, f64)>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL hnsw.ef_search = 100")
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query!(
        r#"SELECT a.id AS "id!", (a.embedding <=> q.embedding)::float8 AS "distance!"
           FROM assets a,
                (SELECT embedding, embedder FROM assets WHERE id = $1) q
           WHERE a.id <> $1 AND a.embedding IS NOT NULL AND a.embedder = q.embedder
             AND ($2::uuid[] IS NULL OR a.owner_id = ANY($2))
           ORDER BY a.embedding <=> q.embedding
           LIMIT $3"#,
        id,
        owners as Option<&[Uuid]>,
        limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    // relaxed_order: nearly sorted; sort exactly.
    let mut out: Vec<(Uuid, f64)> = rows.into_iter().map(|r| (r.id, r.distance)).collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(out)
}
