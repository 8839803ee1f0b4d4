//! The `assets`, `asset_lineage` and `provider_uploads` tables, and job completion.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::jobs::{COLUMNS as JOB_COLUMNS, JobRow};
use crate::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssetRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub media_type: String,
    pub mime: String,
    pub content_hash: String,
    pub size_bytes: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub duration_ms: Option<i64>,
    pub path: String,
    pub thumbnail_path: Option<String>,
    pub origin: String,
    pub provider: Option<String>,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    pub source_generation_id: Option<Uuid>,
    pub operation: Option<String>,
    pub prompt: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, owner_id, media_type, mime, content_hash, size_bytes, width, height, \
     duration_ms, path, thumbnail_path, origin, provider, remote_id, remote_url, \
     source_generation_id, operation, prompt, created_at";

/// A new asset.
#[derive(Debug, Clone)]
pub struct NewAsset {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub media_type: String,
    pub mime: String,
    pub content_hash: String,
    pub size_bytes: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub duration_ms: Option<i64>,
    pub path: String,
    pub thumbnail_path: Option<String>,
    pub origin: String,
    pub provider: Option<String>,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    pub source_generation_id: Option<Uuid>,
    pub operation: Option<String>,
    pub prompt: Option<String>,
}

/// A lineage edge parent → child.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EdgeRow {
    pub parent_asset_id: Uuid,
    pub child_asset_id: Uuid,
    pub relation: String,
    pub operation: String,
    pub sequence: i32,
    pub generation_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A lineage edge to insert (the child is the new asset).
#[derive(Debug, Clone)]
pub struct NewEdge {
    pub parent_asset_id: Uuid,
    pub relation: String,
    pub operation: String,
    pub sequence: i32,
}

async fn insert_on(conn: &mut PgConnection, a: &NewAsset) -> Result<AssetRow, StoreError> {
    let row = sqlx::query_as(&format!(
        "INSERT INTO assets (id, owner_id, media_type, mime, content_hash, size_bytes, width,
             height, duration_ms, path, thumbnail_path, origin, provider, remote_id, remote_url,
             source_generation_id, operation, prompt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         RETURNING {COLUMNS}"
    ))
    .bind(a.id)
    .bind(a.owner_id)
    .bind(&a.media_type)
    .bind(&a.mime)
    .bind(&a.content_hash)
    .bind(a.size_bytes)
    .bind(a.width)
    .bind(a.height)
    .bind(a.duration_ms)
    .bind(&a.path)
    .bind(&a.thumbnail_path)
    .bind(&a.origin)
    .bind(&a.provider)
    .bind(&a.remote_id)
    .bind(&a.remote_url)
    .bind(a.source_generation_id)
    .bind(&a.operation)
    .bind(&a.prompt)
    .fetch_one(&mut *conn)
    .await
    .map_err(crate::conflict("an asset with this id"))?;
    Ok(row)
}

/// Inserts an asset (an upload).
pub async fn insert(pool: &PgPool, a: &NewAsset) -> Result<AssetRow, StoreError> {
    let mut conn = pool.acquire().await?;
    insert_on(&mut conn, a).await
}

/// Completes a job attempt in one statement: the job (fenced by its lease) becomes
/// completed with the new asset, the asset and its lineage edges are inserted, the
/// submission is marked succeeded (`submission_id`), or recorded now as succeeded when
/// `None` (synchronous providers), and the account slot is released. `None` when the
/// lease was lost (nothing is written).
pub async fn complete_job(
    pool: &PgPool,
    job_id: Uuid,
    attempt: i32,
    owner: &str,
    submission_id: Option<Uuid>,
    asset: &NewAsset,
    edges: &[NewEdge],
) -> Result<Option<(JobRow, AssetRow)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        job: JobRow,
        asset_created_at: DateTime<Utc>,
    }
    let parents: Vec<Uuid> = edges.iter().map(|e| e.parent_asset_id).collect();
    let relations: Vec<&str> = edges.iter().map(|e| e.relation.as_str()).collect();
    let operations: Vec<&str> = edges.iter().map(|e| e.operation.as_str()).collect();
    let sequences: Vec<i32> = edges.iter().map(|e| e.sequence).collect();
    let job_cols = JOB_COLUMNS
        .split(',')
        .map(|c| format!("j.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let row: Option<Row> = sqlx::query_as(&format!(
        "WITH old AS (
             SELECT id, account_id, account_reserved FROM generations
             WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'processing'
             FOR UPDATE
         ), a AS (
             INSERT INTO assets (id, owner_id, media_type, mime, content_hash, size_bytes, width,
                 height, duration_ms, path, thumbnail_path, origin, provider, remote_id,
                 remote_url, source_generation_id, operation, prompt)
             SELECT $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, old.id,
                 $19, $20
             FROM old
             RETURNING id, created_at
         ), l AS (
             INSERT INTO asset_lineage (parent_asset_id, child_asset_id, relation, operation,
                 sequence, generation_id)
             SELECT t.p, a.id, t.r, t.o, t.s, $1
             FROM a, unnest($21::uuid[], $22::text[], $23::text[], $24::int[]) AS t(p, r, o, s)
             ON CONFLICT DO NOTHING
         ), acc AS (
             UPDATE provider_accounts p SET current_jobs = GREATEST(p.current_jobs - 1, 0)
             FROM old WHERE p.id = old.account_id AND old.account_reserved
         ), sub AS (
             UPDATE provider_submissions s SET status = 'succeeded', finished_at = now(),
                 remote_id = COALESCE(s.remote_id, $17),
                 accepted_at = COALESCE(s.accepted_at, now())
             FROM old WHERE s.id = $25::uuid
         ), subnew AS (
             INSERT INTO provider_submissions (id, generation_id, attempt, provider, account_id,
                 remote_id, status, accepted_at, finished_at)
             SELECT $26, old.id, $2, $16, old.account_id, $17, 'succeeded', now(), now()
             FROM old WHERE $25::uuid IS NULL
             ON CONFLICT (generation_id, attempt) DO NOTHING
         ), j AS (
             UPDATE generations g SET status = 'completed', asset_id = a.id,
                 account_reserved = false, lease_owner = NULL, lease_expires_at = NULL,
                 progress = 1, completed_at = now(), error_code = NULL, error_message = NULL,
                 updated_at = now()
             FROM a WHERE g.id = $1
             RETURNING g.*
         )
         SELECT {job_cols}, a.created_at AS asset_created_at FROM j, a"
    ))
    .bind(job_id)
    .bind(attempt)
    .bind(owner)
    .bind(asset.id)
    .bind(asset.owner_id)
    .bind(&asset.media_type)
    .bind(&asset.mime)
    .bind(&asset.content_hash)
    .bind(asset.size_bytes)
    .bind(asset.width)
    .bind(asset.height)
    .bind(asset.duration_ms)
    .bind(&asset.path)
    .bind(&asset.thumbnail_path)
    .bind(&asset.origin)
    .bind(&asset.provider)
    .bind(&asset.remote_id)
    .bind(&asset.remote_url)
    .bind(&asset.operation)
    .bind(&asset.prompt)
    .bind(&parents)
    .bind(&relations)
    .bind(&operations)
    .bind(&sequences)
    .bind(submission_id)
    .bind(Uuid::now_v7())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let a = asset.clone();
        let asset_row = AssetRow {
            id: a.id,
            owner_id: a.owner_id,
            media_type: a.media_type,
            mime: a.mime,
            content_hash: a.content_hash,
            size_bytes: a.size_bytes,
            width: a.width,
            height: a.height,
            duration_ms: a.duration_ms,
            path: a.path,
            thumbnail_path: a.thumbnail_path,
            origin: a.origin,
            provider: a.provider,
            remote_id: a.remote_id,
            remote_url: a.remote_url,
            source_generation_id: Some(job_id),
            operation: a.operation,
            prompt: a.prompt,
            created_at: r.asset_created_at,
        };
        (r.job, asset_row)
    }))
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<AssetRow, StoreError> {
    let row: Option<AssetRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM assets WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.ok_or(StoreError::NotFound("asset"))
}

/// Several assets by id (missing ones are left out).
pub async fn get_many(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<AssetRow>, StoreError> {
    let rows = sqlx::query_as(&format!("SELECT {COLUMNS} FROM assets WHERE id = ANY($1)"))
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows)
}

/// Asset list filters; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    pub owner_id: Option<Uuid>,
    pub media_type: Option<String>,
    pub origin: Option<String>,
    pub provider: Option<String>,
    pub source_generation_id: Option<Uuid>,
    pub content_hash: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// Newest first; the page and the total count.
pub async fn list(pool: &PgPool, f: &AssetFilter) -> Result<(Vec<AssetRow>, i64), StoreError> {
    const WHERE: &str = "($1::uuid IS NULL OR owner_id = $1)
        AND ($2::text IS NULL OR media_type = $2)
        AND ($3::text IS NULL OR origin = $3)
        AND ($4::text IS NULL OR provider = $4)
        AND ($5::uuid IS NULL OR source_generation_id = $5)
        AND ($6::text IS NULL OR content_hash = $6)";
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assets WHERE {WHERE}
         ORDER BY created_at DESC, id DESC OFFSET $7 LIMIT $8"
    ))
    .bind(f.owner_id)
    .bind(&f.media_type)
    .bind(&f.origin)
    .bind(&f.provider)
    .bind(f.source_generation_id)
    .bind(&f.content_hash)
    .bind(f.offset)
    .bind(f.limit)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(&format!("SELECT count(*) FROM assets WHERE {WHERE}"))
        .bind(f.owner_id)
        .bind(&f.media_type)
        .bind(&f.origin)
        .bind(&f.provider)
        .bind(f.source_generation_id)
        .bind(&f.content_hash)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// Edges where the asset is the child (its parents) and where it is the parent.
pub async fn lineage(pool: &PgPool, id: Uuid) -> Result<(Vec<EdgeRow>, Vec<EdgeRow>), StoreError> {
    const EDGE: &str =
        "parent_asset_id, child_asset_id, relation, operation, sequence, generation_id, created_at";
    let parents = sqlx::query_as(&format!(
        "SELECT {EDGE} FROM asset_lineage WHERE child_asset_id = $1 ORDER BY sequence, created_at"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    let children = sqlx::query_as(&format!(
        "SELECT {EDGE} FROM asset_lineage WHERE parent_asset_id = $1 ORDER BY created_at"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok((parents, children))
}

/// A cached upload of an asset to a provider.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadRow {
    pub asset_id: Uuid,
    pub provider: String,
    pub scope: String,
    pub remote_id: String,
    pub remote_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

const UPLOAD_COLUMNS: &str =
    "asset_id, provider, scope, remote_id, remote_url, created_at, last_used_at";

/// The cached upload for `(asset, provider, scope)`, touching its last-used time.
pub async fn use_upload(
    pool: &PgPool,
    asset_id: Uuid,
    provider: &str,
    scope: &str,
) -> Result<Option<UploadRow>, StoreError> {
    let row = sqlx::query_as(&format!(
        "UPDATE provider_uploads SET last_used_at = clock_timestamp()
         WHERE asset_id = $1 AND provider = $2 AND scope = $3 RETURNING {UPLOAD_COLUMNS}"
    ))
    .bind(asset_id)
    .bind(provider)
    .bind(scope)
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Records (or replaces) an upload.
pub async fn put_upload(
    pool: &PgPool,
    asset_id: Uuid,
    provider: &str,
    scope: &str,
    remote_id: &str,
    remote_url: Option<&str>,
) -> Result<UploadRow, StoreError> {
    let row = sqlx::query_as(&format!(
        "INSERT INTO provider_uploads (asset_id, provider, scope, remote_id, remote_url)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (asset_id, provider, scope) DO UPDATE SET remote_id = EXCLUDED.remote_id,
             remote_url = EXCLUDED.remote_url, last_used_at = clock_timestamp()
         RETURNING {UPLOAD_COLUMNS}"
    ))
    .bind(asset_id)
    .bind(provider)
    .bind(scope)
    .bind(remote_id)
    .bind(remote_url)
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Cached uploads of an asset.
pub async fn uploads(pool: &PgPool, asset_id: Uuid) -> Result<Vec<UploadRow>, StoreError> {
    let rows = sqlx::query_as(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM provider_uploads WHERE asset_id = $1 ORDER BY provider, scope"
    ))
    .bind(asset_id)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
