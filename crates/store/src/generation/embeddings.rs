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
             AND sync_status = 'downloaded'
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
           WHERE embedder IS DISTINCT FROM $1 AND media_type IN ('image', 'video')
             AND sync_status = 'downloaded'"#,
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
    let text = embedding.map(vector_text);
    sqlx::query!(
        "UPDATE assets SET embedding = $3::text::halfvec, embedder = $2, embedded_at = now()
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

/// The vector of asset `id` in pgvector's text form, when `embedder` made one (`None`:
/// no such asset, or no vector of that embedder).
pub async fn vector_of(
    pool: &PgPool,
    id: Uuid,
    embedder: &str,
) -> Result<Option<String>, StoreError> {
    let v = sqlx::query_scalar!(
        r#"SELECT embedding::text AS "v!" FROM assets
           WHERE id = $1 AND embedder = $2 AND embedding IS NOT NULL"#,
        id,
        embedder,
    )
    .fetch_optional(pool)
    .await?;
    Ok(v)
}

/// What [`nearest`] looks for.
#[derive(Debug, Clone)]
pub struct NearestQuery<'a> {
    /// The query vector in pgvector's text form (`[x,y,…]`, the column's dimension).
    pub vector: &'a str,
    /// Only vectors of this embedder.
    pub embedder: &'a str,
    /// Leave this asset out (the query's own).
    pub exclude: Option<Uuid>,
    /// Only the assets of these owners (`None`: all).
    pub owners: Option<&'a [Uuid]>,
    pub media_type: Option<MediaType>,
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only assets carrying every one of these tags.
    pub tags: &'a [String],
    /// Archived assets too (left out by default).
    pub include_archived: bool,
    pub limit: i64,
}

/// The `limit` assets nearest to the query vector by cosine distance, nearest first:
/// `(id, distance)`. The HNSW scan is iterative (pgvector 0.8), so filters that reject
/// most candidates still fill the page. The owner filter is written so that no B-tree
/// index can serve it (`array_position`): otherwise the planner prefers reading all of
/// an owner's assets through `assets_owner_idx` and sorting them, an exact search that
/// costs ~85 ms at 10,000 vectors of 1024 dimensions (`benches/vector_search.rs`).
pub async fn nearest(pool: &PgPool, q: &NearestQuery<'_>) -> Result<Vec<(Uuid, f64)>, StoreError> {
    let mut tx = pool.begin().await?;
    // For this transaction, in one round trip: an iterative HNSW scan (so filters that
    // reject most candidates still fill the page), its candidate list, and an
    // approximate search always (the planner's cost model otherwise picks an exact scan
    // of the whole table once it is large: 210 ms at 100,000 vectors).
    sqlx::query(
        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
                set_config('hnsw.ef_search', '100', true),
                set_config('enable_seqscan', 'off', true)",
    )
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", (embedding <=> $1::text::halfvec)::float8 AS "distance!"
           FROM assets
           WHERE embedding IS NOT NULL AND embedder = $2
             AND ($3::uuid IS NULL OR id <> $3)
             AND ($4::uuid[] IS NULL OR array_position($4, owner_id) IS NOT NULL)
             AND ($5::text IS NULL OR media_type = $5)
             AND ($6::timestamptz IS NULL OR created_at >= $6)
             AND ($7::timestamptz IS NULL OR created_at < $7)
             AND (cardinality($9::text[]) = 0 OR tags @> $9)
             AND ($10 OR archived_at IS NULL)
           ORDER BY embedding <=> $1::text::halfvec
           LIMIT $8"#,
        q.vector,
        q.embedder,
        q.exclude,
        q.owners as Option<&[Uuid]>,
        q.media_type.map(|m| m.as_str()),
        q.created_after,
        q.created_before,
        q.limit,
        q.tags,
        q.include_archived,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    // relaxed_order: nearly sorted; sort exactly.
    let mut out: Vec<(Uuid, f64)> = rows.into_iter().map(|r| (r.id, r.distance)).collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(out)
}

/// A vector in pgvector's text form.
pub fn vector_text(v: &[f32]) -> String {
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
}
