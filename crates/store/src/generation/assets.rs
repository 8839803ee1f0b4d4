//! The `assets`, `asset_lineage` and `provider_uploads` tables, and job completion.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::jobs::{COLUMNS as JOB_COLUMNS, JobRow};
use super::kinds::{AssetOrigin, MediaType, Operation, SyncStatus};
use crate::StoreError;

/// An asset's stored fields, all but its creation time: what a new asset is made of.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewAsset {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub media_type: MediaType,
    pub mime: String,
    pub content_hash: String,
    pub size_bytes: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub duration_ms: Option<i64>,
    pub path: String,
    pub thumbnail_path: Option<String>,
    pub origin: AssetOrigin,
    pub provider: Option<String>,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    pub source_generation_id: Option<Uuid>,
    pub operation: Option<Operation>,
    pub prompt: Option<String>,
    /// Frames per second of a video track.
    pub fps: Option<f32>,
}

/// What the asset library adds to a stored asset (issue #23): tags, archiving, the
/// version family, the parent asset and where the file is.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryFields {
    pub tags: Vec<String>,
    pub archived_at: Option<DateTime<Utc>>,
    pub parent_asset_id: Option<Uuid>,
    pub version_family_id: Option<Uuid>,
    pub version_number: Option<i32>,
    pub version_message: Option<String>,
    pub sync_status: SyncStatus,
}

impl Default for LibraryFields {
    /// A new asset's: no tags, not archived, in no family, its file here.
    fn default() -> Self {
        LibraryFields {
            tags: Vec::new(),
            archived_at: None,
            parent_asset_id: None,
            version_family_id: None,
            version_number: None,
            version_message: None,
            sync_status: SyncStatus::Downloaded,
        }
    }
}

/// A stored asset.
#[derive(Debug, Clone)]
pub struct AssetRow {
    pub fields: NewAsset,
    pub library: LibraryFields,
    pub created_at: DateTime<Utc>,
}

/// An asset row as the query macros read it (flat: `query_as!` maps no nested struct).
pub(super) struct AssetRecord {
    pub(super) id: Uuid,
    pub(super) owner_id: Uuid,
    pub(super) media_type: MediaType,
    pub(super) mime: String,
    pub(super) content_hash: String,
    pub(super) size_bytes: i64,
    pub(super) width: Option<i32>,
    pub(super) height: Option<i32>,
    pub(super) duration_ms: Option<i64>,
    pub(super) path: String,
    pub(super) thumbnail_path: Option<String>,
    pub(super) origin: AssetOrigin,
    pub(super) provider: Option<String>,
    pub(super) remote_id: Option<String>,
    pub(super) remote_url: Option<String>,
    pub(super) source_generation_id: Option<Uuid>,
    pub(super) operation: Option<Operation>,
    pub(super) prompt: Option<String>,
    pub(super) fps: Option<f32>,
    pub(super) tags: Vec<String>,
    pub(super) archived_at: Option<DateTime<Utc>>,
    pub(super) parent_asset_id: Option<Uuid>,
    pub(super) version_family_id: Option<Uuid>,
    pub(super) version_number: Option<i32>,
    pub(super) version_message: Option<String>,
    pub(super) sync_status: SyncStatus,
    pub(super) created_at: DateTime<Utc>,
}

impl From<AssetRecord> for AssetRow {
    fn from(r: AssetRecord) -> Self {
        AssetRow {
            fields: NewAsset {
                id: r.id,
                owner_id: r.owner_id,
                media_type: r.media_type,
                mime: r.mime,
                content_hash: r.content_hash,
                size_bytes: r.size_bytes,
                width: r.width,
                height: r.height,
                duration_ms: r.duration_ms,
                path: r.path,
                thumbnail_path: r.thumbnail_path,
                origin: r.origin,
                provider: r.provider,
                remote_id: r.remote_id,
                remote_url: r.remote_url,
                source_generation_id: r.source_generation_id,
                operation: r.operation,
                prompt: r.prompt,
                fps: r.fps,
            },
            library: LibraryFields {
                tags: r.tags,
                archived_at: r.archived_at,
                parent_asset_id: r.parent_asset_id,
                version_family_id: r.version_family_id,
                version_number: r.version_number,
                version_message: r.version_message,
                sync_status: r.sync_status,
            },
            created_at: r.created_at,
        }
    }
}

/// `sqlx::query_as!(AssetRecord, …)` with the asset columns between two literals (a
/// query macro takes literals only).
macro_rules! asset_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            AssetRecord,
            $before + r#"id AS "id!", owner_id AS "owner_id!", media_type AS "media_type!: _", mime AS "mime!", content_hash AS "content_hash!", size_bytes AS "size_bytes!", width AS "width?", height AS "height?", duration_ms AS "duration_ms?", path AS "path!", thumbnail_path AS "thumbnail_path?", origin AS "origin!: _", provider AS "provider?", remote_id AS "remote_id?", remote_url AS "remote_url?", source_generation_id AS "source_generation_id?", operation AS "operation?: _", prompt AS "prompt?", fps AS "fps?", tags AS "tags!", archived_at AS "archived_at?", parent_asset_id AS "parent_asset_id?", version_family_id AS "version_family_id?", version_number AS "version_number?", version_message AS "version_message?", sync_status AS "sync_status!: _", created_at AS "created_at!""# + $after
            $(, $arg)*
        )
    };
}

pub(super) use asset_query;

/// The columns of [`NewAsset`], in its field order (for the batch statement of
/// [`complete_jobs`]).
const NEW_COLUMNS: &str = "id, owner_id, media_type, mime, content_hash, size_bytes, width, \
     height, duration_ms, path, thumbnail_path, origin, provider, remote_id, remote_url, \
     source_generation_id, operation, prompt, fps";

/// A lineage edge parent → child.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EdgeRow {
    pub parent_asset_id: Uuid,
    pub child_asset_id: Uuid,
    pub relation: String,
    pub operation: String,
    pub sequence: i32,
    pub generation_id: Option<Uuid>,
    /// The part of the parent used (a clip's segment, a keyframe's time), when known.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub start_frame: Option<i32>,
    pub end_frame: Option<i32>,
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

/// Inserts an asset (an upload).
pub async fn insert(pool: &PgPool, a: &NewAsset) -> Result<AssetRow, StoreError> {
    insert_in(pool, a, None).await
}

/// Inserts an asset made from `parent` (`None`: from nothing here), on `conn` (a pool or
/// a transaction).
pub async fn insert_in<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    a: &NewAsset,
    parent: Option<Uuid>,
) -> Result<AssetRow, StoreError> {
    let row = asset_query!(
        "INSERT INTO assets (id, owner_id, media_type, mime, content_hash, size_bytes, width,
             height, duration_ms, path, thumbnail_path, origin, provider, remote_id, remote_url,
             source_generation_id, operation, prompt, fps, parent_asset_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20)
         RETURNING ",
        "",
        a.id,
        a.owner_id,
        a.media_type as _,
        a.mime,
        a.content_hash,
        a.size_bytes,
        a.width,
        a.height,
        a.duration_ms,
        a.path,
        a.thumbnail_path,
        a.origin as _,
        a.provider,
        a.remote_id,
        a.remote_url,
        a.source_generation_id,
        a.operation as _,
        a.prompt,
        a.fps,
        parent,
    )
    .fetch_one(conn)
    .await
    .map_err(crate::conflict("an asset with this id"))?;
    Ok(row.into())
}

/// One job attempt to complete (see [`complete_jobs`]).
#[derive(Debug, Clone)]
pub struct Completion {
    pub job_id: Uuid,
    pub attempt: i32,
    /// The lease owner (worker id).
    pub owner: String,
    /// The attempt's submission; `None` for synchronous providers (it is recorded now).
    pub submission_id: Option<Uuid>,
    /// The new asset; its `source_generation_id` is always the job.
    pub asset: NewAsset,
    pub edges: Vec<NewEdge>,
}

/// Completes job attempts in one statement. For each attempt still holding its lease:
/// the job becomes completed with its new asset, the asset and its lineage edges are
/// inserted, the submission is marked succeeded (or recorded now as succeeded when it
/// has none: synchronous providers), and the account slot is released. Returns, per
/// completion and in order, the job and asset rows, or `None` when the lease was lost
/// (nothing is written for that one). Account rows are locked in id order, so
/// concurrent batches cannot deadlock on them.
///
/// Runtime-checked, like the other batch statements: its column lists are spliced in.
pub async fn complete_jobs(
    pool: &PgPool,
    items: &[Completion],
) -> Result<Vec<Option<(JobRow, AssetRow)>>, StoreError> {
    let sql = complete_jobs_sql();
    let query = sqlx::query_as(&sql);
    let query = bind_edges(bind_attempts(bind_assets(query, items), items), items)
        .bind(items.iter().map(|c| c.asset.fps).collect::<Vec<_>>());
    let rows = query.fetch_all(pool).await?;
    Ok(pair_completions(items, rows))
}

/// A completed job as [`complete_jobs`] returns it, with its asset's creation time.
#[derive(sqlx::FromRow)]
struct CompletedRow {
    #[sqlx(flatten)]
    job: JobRow,
    asset_created_at: DateTime<Utc>,
}

/// The statement of [`complete_jobs`] being bound.
type CompleteQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Postgres, CompletedRow, sqlx::postgres::PgArguments>;

/// The statement of [`complete_jobs`]: `$1`..`$22` and `$28` one element per
/// completion (see [`bind_assets`], [`bind_attempts`]; `$28` is the frame rate),
/// `$23`..`$27` one per lineage edge ([`bind_edges`]).
fn complete_jobs_sql() -> String {
    let job_cols = JOB_COLUMNS
        .split(',')
        .map(|c| format!("j.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                 $6::int8[], $7::int4[], $8::int4[], $9::int8[], $10::text[], $11::text[],
                 $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
                 $18::uuid[], $19::int4[], $20::text[], $21::uuid[], $22::uuid[],
                 $28::float4[])
                 AS i(asset_id, owner_id, media_type, mime, content_hash, size_bytes, width,
                     height, duration_ms, path, thumbnail_path, origin, provider, remote_id,
                     remote_url, operation, prompt, job_id, attempt, lease_owner, sub_id,
                     new_sub_id, fps)
         ), old AS (
             SELECT g.account_id, g.account_reserved, i.* FROM input i
             JOIN generations g ON g.id = i.job_id AND g.attempt = i.attempt
                 AND g.lease_owner = i.lease_owner AND g.status = 'processing'
             ORDER BY g.id
             FOR UPDATE OF g
         ), a AS (
             INSERT INTO assets ({NEW_COLUMNS})
             SELECT asset_id, owner_id, media_type, mime, content_hash, size_bytes, width,
                 height, duration_ms, path, thumbnail_path, origin, provider, remote_id,
                 remote_url, job_id, operation, prompt, fps
             FROM old
             -- The row recorded when the provider accepted the job (same id) gets its
             -- file.
             ON CONFLICT (id) DO UPDATE SET mime = EXCLUDED.mime,
                 content_hash = EXCLUDED.content_hash, size_bytes = EXCLUDED.size_bytes,
                 width = EXCLUDED.width, height = EXCLUDED.height,
                 duration_ms = EXCLUDED.duration_ms, path = EXCLUDED.path,
                 thumbnail_path = EXCLUDED.thumbnail_path, media_type = EXCLUDED.media_type,
                 remote_id = EXCLUDED.remote_id, remote_url = EXCLUDED.remote_url,
                 fps = EXCLUDED.fps, sync_status = 'downloaded'
             RETURNING id, created_at, source_generation_id
         ), l AS (
             INSERT INTO asset_lineage (parent_asset_id, child_asset_id, relation, operation,
                 sequence, generation_id)
             SELECT e.p, a.id, e.r, e.o, e.s, e.j
             FROM unnest($23::uuid[], $24::uuid[], $25::text[], $26::text[], $27::int4[])
                 AS e(j, p, r, o, s)
             JOIN a ON a.source_generation_id = e.j
             ON CONFLICT DO NOTHING
         ), slots AS (
             SELECT account_id, count(*)::int AS n FROM old
             WHERE account_reserved AND account_id IS NOT NULL GROUP BY account_id
         ), acc_lock AS (
             SELECT p.id FROM provider_accounts p JOIN slots s ON s.account_id = p.id
             ORDER BY p.id
             FOR UPDATE OF p
         ), acc AS (
             UPDATE provider_accounts p SET current_jobs = GREATEST(p.current_jobs - s.n, 0)
             FROM slots s JOIN acc_lock l ON l.id = s.account_id
             WHERE p.id = s.account_id
         ), sub AS (
             UPDATE provider_submissions s SET status = 'succeeded', finished_at = now(),
                 remote_id = COALESCE(s.remote_id, old.remote_id),
                 accepted_at = COALESCE(s.accepted_at, now())
             FROM old WHERE s.id = old.sub_id
         ), subnew AS (
             INSERT INTO provider_submissions (id, generation_id, attempt, provider, account_id,
                 remote_id, status, accepted_at, finished_at)
             SELECT old.new_sub_id, old.job_id, old.attempt, old.provider, old.account_id,
                 old.remote_id, 'succeeded', now(), now()
             FROM old WHERE old.sub_id IS NULL
             ON CONFLICT (generation_id, attempt) DO NOTHING
         ), j AS (
             UPDATE generations g SET status = 'completed', asset_id = a.id,
                 account_reserved = false, lease_owner = NULL, lease_expires_at = NULL,
                 progress = 1, completed_at = now(), error_code = NULL, error_message = NULL,
                 updated_at = now()
             FROM a WHERE g.id = a.source_generation_id
             RETURNING g.*
         )
         SELECT {job_cols}, a.created_at AS asset_created_at
         FROM j JOIN a ON a.source_generation_id = j.id"
    )
}

/// Binds `$1`..`$17`: the new assets' columns (those of [`NEW_COLUMNS`] but
/// `source_generation_id`, which is the job).
fn bind_assets<'q>(query: CompleteQuery<'q>, items: &'q [Completion]) -> CompleteQuery<'q> {
    macro_rules! col {
        ($f:ident) => {
            items.iter().map(|c| c.asset.$f.clone()).collect::<Vec<_>>()
        };
    }
    query
        .bind(col!(id))
        .bind(col!(owner_id))
        .bind(col!(media_type))
        .bind(col!(mime))
        .bind(col!(content_hash))
        .bind(col!(size_bytes))
        .bind(col!(width))
        .bind(col!(height))
        .bind(col!(duration_ms))
        .bind(col!(path))
        .bind(col!(thumbnail_path))
        .bind(col!(origin))
        .bind(col!(provider))
        .bind(col!(remote_id))
        .bind(col!(remote_url))
        .bind(col!(operation))
        .bind(col!(prompt))
}

/// Binds `$18`..`$22`: each attempt's job, attempt number, lease owner and submission,
/// and the id of the submission recorded now when it has none.
fn bind_attempts<'q>(query: CompleteQuery<'q>, items: &'q [Completion]) -> CompleteQuery<'q> {
    query
        .bind(items.iter().map(|c| c.job_id).collect::<Vec<_>>())
        .bind(items.iter().map(|c| c.attempt).collect::<Vec<_>>())
        .bind(items.iter().map(|c| c.owner.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|c| c.submission_id).collect::<Vec<_>>())
        .bind(items.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
}

/// Binds `$23`..`$27`: the lineage edges of all completions, as (job, parent, relation,
/// operation, sequence) columns.
fn bind_edges<'q>(query: CompleteQuery<'q>, items: &'q [Completion]) -> CompleteQuery<'q> {
    let mut edge_jobs = Vec::new();
    let mut parents = Vec::new();
    let mut relations = Vec::new();
    let mut operations = Vec::new();
    let mut sequences = Vec::new();
    for c in items {
        for e in &c.edges {
            edge_jobs.push(c.job_id);
            parents.push(e.parent_asset_id);
            relations.push(e.relation.as_str());
            operations.push(e.operation.as_str());
            sequences.push(e.sequence);
        }
    }
    query
        .bind(edge_jobs)
        .bind(parents)
        .bind(relations)
        .bind(operations)
        .bind(sequences)
}

/// The rows of [`complete_jobs`] per completion, in order: `None` where the lease was
/// lost.
fn pair_completions(
    items: &[Completion],
    rows: Vec<CompletedRow>,
) -> Vec<Option<(JobRow, AssetRow)>> {
    let mut by_job: std::collections::HashMap<Uuid, CompletedRow> =
        rows.into_iter().map(|r| (r.job.id, r)).collect();
    items
        .iter()
        .map(|c| {
            by_job.remove(&c.job_id).map(|r| {
                let mut fields = c.asset.clone();
                fields.source_generation_id = Some(c.job_id);
                (
                    r.job,
                    AssetRow {
                        fields,
                        library: LibraryFields::default(),
                        created_at: r.asset_created_at,
                    },
                )
            })
        })
        .collect()
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<AssetRow, StoreError> {
    let row = asset_query!("SELECT ", " FROM assets WHERE id = $1", id)
        .fetch_optional(pool)
        .await?;
    row.map(AssetRow::from).ok_or(StoreError::NotFound("asset"))
}

/// Several assets by id (missing ones are left out).
pub async fn get_many(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<AssetRow>, StoreError> {
    let rows = asset_query!("SELECT ", " FROM assets WHERE id = ANY($1)", ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(AssetRow::from).collect())
}

/// Asset list filters; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    pub owner_id: Option<Uuid>,
    pub media_type: Option<MediaType>,
    pub origin: Option<AssetOrigin>,
    pub provider: Option<String>,
    pub source_generation_id: Option<Uuid>,
    pub content_hash: Option<String>,
    /// Assets carrying every one of these tags.
    pub tags: Vec<String>,
    /// `Some(false)`: not archived; `Some(true)`: archived only; `None`: both.
    pub archived: Option<bool>,
    /// The versions, clips and variants made from this asset.
    pub parent_asset_id: Option<Uuid>,
    pub sync_status: Option<SyncStatus>,
    pub offset: i64,
    pub limit: i64,
}

/// Newest first; the page and the total count (counted by a second statement only when
/// the page is full or past the end).
pub async fn list(pool: &PgPool, f: &AssetFilter) -> Result<(Vec<AssetRow>, i64), StoreError> {
    let rows = match (f.owner_id, f.archived) {
        // The common page, "my assets, newest first", has a statement of its own: its
        // generic plan (the owner index) is as good as a custom one, so PostgreSQL
        // keeps it instead of planning every call, which the statement with every
        // optional filter needs (planning was most of its cost).
        (Some(owner), Some(archived))
            if f.media_type.is_none()
                && f.origin.is_none()
                && f.provider.is_none()
                && f.source_generation_id.is_none()
                && f.content_hash.is_none()
                && f.tags.is_empty()
                && f.parent_asset_id.is_none()
                && f.sync_status.is_none() =>
        {
            asset_query!(
                "SELECT ",
                " FROM assets WHERE owner_id = $1 AND (archived_at IS NOT NULL) = $2
                 ORDER BY created_at DESC, id DESC OFFSET $3 LIMIT $4",
                owner,
                archived,
                f.offset,
                f.limit,
            )
            .fetch_all(pool)
            .await?
        }
        _ => list_filtered(pool, f).await?,
    };
    let rows: Vec<AssetRow> = rows.into_iter().map(AssetRow::from).collect();
    // A page that is not full, and not past the end, holds the last of them: the total
    // needs no second statement.
    let n = rows.len() as i64;
    if n > 0 && n < f.limit {
        return Ok((rows, f.offset + n));
    }
    if n == 0 && f.offset == 0 {
        return Ok((rows, 0));
    }
    Ok((rows, count(pool, f).await?))
}

/// A page with any of the optional filters.
async fn list_filtered(pool: &PgPool, f: &AssetFilter) -> Result<Vec<AssetRecord>, StoreError> {
    // The same conditions as `count` (a query macro takes literals only).
    Ok(asset_query!(
        "SELECT ",
        " FROM assets WHERE ($1::uuid IS NULL OR owner_id = $1)
           AND ($2::text IS NULL OR media_type = $2)
           AND ($3::text IS NULL OR origin = $3)
           AND ($4::text IS NULL OR provider = $4)
           AND ($5::uuid IS NULL OR source_generation_id = $5)
           AND ($6::text IS NULL OR content_hash = $6)
           AND (cardinality($9::text[]) = 0 OR tags @> $9)
           AND ($10::bool IS NULL OR (archived_at IS NOT NULL) = $10)
           AND ($11::uuid IS NULL OR parent_asset_id = $11)
           AND ($12::text IS NULL OR sync_status = $12)
         ORDER BY created_at DESC, id DESC OFFSET $7 LIMIT $8",
        f.owner_id,
        f.media_type as _,
        f.origin as _,
        f.provider.as_deref(),
        f.source_generation_id,
        f.content_hash.as_deref(),
        f.offset,
        f.limit,
        &f.tags,
        f.archived,
        f.parent_asset_id,
        f.sync_status as _,
    )
    .fetch_all(pool)
    .await?)
}

/// How many assets match the filter.
async fn count(pool: &PgPool, f: &AssetFilter) -> Result<i64, StoreError> {
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM assets WHERE ($1::uuid IS NULL OR owner_id = $1)
           AND ($2::text IS NULL OR media_type = $2)
           AND ($3::text IS NULL OR origin = $3)
           AND ($4::text IS NULL OR provider = $4)
           AND ($5::uuid IS NULL OR source_generation_id = $5)
           AND ($6::text IS NULL OR content_hash = $6)
           AND (cardinality($7::text[]) = 0 OR tags @> $7)
           AND ($8::bool IS NULL OR (archived_at IS NOT NULL) = $8)
           AND ($9::uuid IS NULL OR parent_asset_id = $9)
           AND ($10::text IS NULL OR sync_status = $10)"#,
        f.owner_id,
        f.media_type as _,
        f.origin as _,
        f.provider.as_deref(),
        f.source_generation_id,
        f.content_hash.as_deref(),
        &f.tags,
        f.archived,
        f.parent_asset_id,
        f.sync_status as _,
    )
    .fetch_one(pool)
    .await?;
    Ok(total)
}

/// Edges where the asset is the child (its parents) and where it is the parent.
pub async fn lineage(pool: &PgPool, id: Uuid) -> Result<(Vec<EdgeRow>, Vec<EdgeRow>), StoreError> {
    let parents = sqlx::query_as!(
        EdgeRow,
        "SELECT parent_asset_id, child_asset_id, relation, operation, sequence, generation_id,
             start_ms, end_ms, start_frame, end_frame, created_at
         FROM asset_lineage WHERE child_asset_id = $1 ORDER BY sequence, created_at",
        id,
    )
    .fetch_all(pool)
    .await?;
    let children = sqlx::query_as!(
        EdgeRow,
        "SELECT parent_asset_id, child_asset_id, relation, operation, sequence, generation_id,
             start_ms, end_ms, start_frame, end_frame, created_at
         FROM asset_lineage WHERE parent_asset_id = $1 ORDER BY created_at",
        id,
    )
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

/// The cached upload for `(asset, provider, scope)`, touching its last-used time.
pub async fn use_upload(
    pool: &PgPool,
    asset_id: Uuid,
    provider: &str,
    scope: &str,
) -> Result<Option<UploadRow>, StoreError> {
    let row = sqlx::query_as!(
        UploadRow,
        "UPDATE provider_uploads SET last_used_at = clock_timestamp()
         WHERE asset_id = $1 AND provider = $2 AND scope = $3
         RETURNING asset_id, provider, scope, remote_id, remote_url, created_at, last_used_at",
        asset_id,
        provider,
        scope,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Records (or replaces: a new upload, made now) an upload.
pub async fn put_upload(
    pool: &PgPool,
    asset_id: Uuid,
    provider: &str,
    scope: &str,
    remote_id: &str,
    remote_url: Option<&str>,
) -> Result<UploadRow, StoreError> {
    let row = sqlx::query_as!(
        UploadRow,
        "INSERT INTO provider_uploads (asset_id, provider, scope, remote_id, remote_url)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (asset_id, provider, scope) DO UPDATE SET remote_id = EXCLUDED.remote_id,
             remote_url = EXCLUDED.remote_url, created_at = clock_timestamp(),
             last_used_at = clock_timestamp()
         RETURNING asset_id, provider, scope, remote_id, remote_url, created_at, last_used_at",
        asset_id,
        provider,
        scope,
        remote_id,
        remote_url,
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Cached uploads of an asset.
pub async fn uploads(pool: &PgPool, asset_id: Uuid) -> Result<Vec<UploadRow>, StoreError> {
    let rows = sqlx::query_as!(
        UploadRow,
        "SELECT asset_id, provider, scope, remote_id, remote_url, created_at, last_used_at FROM provider_uploads WHERE asset_id = $1 ORDER BY provider, scope",
        asset_id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
