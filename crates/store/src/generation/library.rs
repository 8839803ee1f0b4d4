//! The asset library (issue #23): tags and archiving, version families, clips, cached
//! variants and branch points (tables and columns of
//! `migrations/20261211000001_asset_library.sql`).
//!
//! Ownership is the caller's business (the `generation` service checks it); these
//! functions keep the invariants the tables cannot: one version number per family
//! (the family's first version is locked while a number is taken), a clip's asset,
//! clip row and lineage edge written together.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::assets::{AssetRecord, AssetRow, NewAsset, asset_query};
use crate::StoreError;

/// Changes an asset's tags (`Some`: replaced), archived state (`Some(true)`: archived
/// now unless it already is; `Some(false)`: restored) and owner (`Some`: given to).
pub async fn patch(
    pool: &PgPool,
    id: Uuid,
    tags: Option<&[String]>,
    archived: Option<bool>,
    owner: Option<Uuid>,
) -> Result<AssetRow, StoreError> {
    let row = asset_query!(
        "UPDATE assets SET tags = COALESCE($2, tags),
             archived_at = CASE WHEN $3::bool IS NULL THEN archived_at
                                WHEN $3 THEN COALESCE(archived_at, now())
                                ELSE NULL END,
             owner_id = COALESCE($4, owner_id)
         WHERE id = $1 RETURNING ",
        "",
        id,
        tags as Option<&[String]>,
        archived,
        owner,
    )
    .fetch_optional(pool)
    .await?;
    row.map(AssetRow::from).ok_or(StoreError::NotFound("asset"))
}

/// Why a version could not be added.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("the asset is already version {number} of a family")]
    AlreadyVersioned { number: i32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for VersionError {
    fn from(e: sqlx::Error) -> Self {
        VersionError::Store(e.into())
    }
}

/// Makes `new_id` the next version of `base_id`'s family (the family is created with
/// `base_id` as version 1 when it has none): its number is one more than the family's
/// highest, its parent is `base_id`, and a `version` lineage edge joins them. Returns
/// the new version.
pub async fn add_version(
    pool: &PgPool,
    base_id: Uuid,
    new_id: Uuid,
    message: Option<&str>,
) -> Result<AssetRow, VersionError> {
    let mut tx = pool.begin().await?;
    let family: Option<Option<Uuid>> = sqlx::query_scalar!(
        "SELECT version_family_id FROM assets WHERE id = $1",
        base_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let family = family
        .ok_or(StoreError::NotFound("asset"))?
        .unwrap_or(base_id);
    // The family's first version is the lock every new number is taken under.
    sqlx::query!("SELECT id FROM assets WHERE id = $1 FOR UPDATE", family)
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query!(
        "UPDATE assets SET version_family_id = id, version_number = 1
         WHERE id = $1 AND version_family_id IS NULL",
        base_id
    )
    .execute(&mut *tx)
    .await?;
    let existing: Option<Option<i32>> = sqlx::query_scalar!(
        "SELECT version_number FROM assets WHERE id = $1 FOR UPDATE",
        new_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    match existing {
        None => return Err(StoreError::NotFound("asset").into()),
        Some(Some(number)) => return Err(VersionError::AlreadyVersioned { number }),
        Some(None) => {}
    }
    let row = asset_query!(
        "UPDATE assets SET version_family_id = $2, parent_asset_id = $3, version_message = $4,
             version_number = (SELECT max(version_number) + 1 FROM assets
                               WHERE version_family_id = $2)
         WHERE id = $1 RETURNING ",
        "",
        new_id,
        family,
        base_id,
        message,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(crate::conflict("this version number"))?;
    sqlx::query!(
        "INSERT INTO asset_lineage (parent_asset_id, child_asset_id, relation, operation)
         VALUES ($1, $2, 'version', 'version') ON CONFLICT DO NOTHING",
        base_id,
        new_id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Every version of the family `family_id`, by number.
pub async fn versions(pool: &PgPool, family_id: Uuid) -> Result<Vec<AssetRow>, StoreError> {
    let rows = asset_query!(
        "SELECT ",
        " FROM assets WHERE version_family_id = $1 ORDER BY version_number",
        family_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(AssetRow::from).collect())
}

/// A clip: a segment of a video, cut into its own asset.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClipRow {
    /// The clip's asset (its file is the segment).
    pub asset_id: Uuid,
    pub source_asset_id: Uuid,
    pub start_ms: i64,
    pub end_ms: i64,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A clip to record with its asset.
#[derive(Debug, Clone)]
pub struct NewClip<'a> {
    pub asset: &'a NewAsset,
    pub source_asset_id: Uuid,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The segment in frames of the source, when its frame rate is known.
    pub frames: Option<(i32, i32)>,
    pub label: Option<&'a str>,
    /// The lineage relation (`clip`, or `keyframe` for a still taken from a video).
    pub relation: &'a str,
}

/// Inserts a clip's asset (its parent: the source), its `clip` row (unless it is a
/// keyframe) and the lineage edge with the time and frame range, together.
pub async fn insert_clip(pool: &PgPool, c: &NewClip<'_>) -> Result<AssetRow, StoreError> {
    let mut tx = pool.begin().await?;
    let a = c.asset;
    let row = super::assets::insert_in(&mut *tx, a, Some(c.source_asset_id)).await?;
    if c.relation == "clip" {
        sqlx::query!(
            "INSERT INTO asset_clips (asset_id, source_asset_id, start_ms, end_ms, label)
             VALUES ($1, $2, $3, $4, $5)",
            a.id,
            c.source_asset_id,
            c.start_ms,
            c.end_ms,
            c.label,
        )
        .execute(&mut *tx)
        .await?;
    }
    let end_ms = (c.end_ms > c.start_ms).then_some(c.end_ms);
    sqlx::query!(
        "INSERT INTO asset_lineage (parent_asset_id, child_asset_id, relation, operation,
             start_ms, end_ms, start_frame, end_frame)
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7)",
        c.source_asset_id,
        a.id,
        c.relation,
        c.start_ms,
        end_ms,
        c.frames.map(|f| f.0),
        c.frames.map(|f| f.1),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// The clips cut from `source`, by start time.
pub async fn clips(pool: &PgPool, source: Uuid) -> Result<Vec<ClipRow>, StoreError> {
    let rows = sqlx::query_as!(
        ClipRow,
        "SELECT asset_id, source_asset_id, start_ms, end_ms, label, created_at
         FROM asset_clips WHERE source_asset_id = $1 ORDER BY start_ms, end_ms, created_at",
        source
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Clips by their asset ids (missing ones are left out).
pub async fn clips_by_id(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<ClipRow>, StoreError> {
    let rows = sqlx::query_as!(
        ClipRow,
        "SELECT asset_id, source_asset_id, start_ms, end_ms, label, created_at
         FROM asset_clips WHERE asset_id = ANY($1)",
        ids
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// A cached rendition of an asset.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VariantRow {
    pub asset_id: Uuid,
    pub name: String,
    pub path: String,
    pub mime: String,
    pub size_bytes: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// The cached variants of an asset, by name.
pub async fn variants(pool: &PgPool, asset_id: Uuid) -> Result<Vec<VariantRow>, StoreError> {
    let rows = sqlx::query_as!(
        VariantRow,
        "SELECT asset_id, name, path, mime, size_bytes, width, height, created_at
         FROM asset_variants WHERE asset_id = $1 ORDER BY name",
        asset_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Records a variant made now (replacing a stale record of the same name).
pub async fn put_variant(pool: &PgPool, v: &VariantRow) -> Result<VariantRow, StoreError> {
    let row = sqlx::query_as!(
        VariantRow,
        "INSERT INTO asset_variants (asset_id, name, path, mime, size_bytes, width, height)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (asset_id, name) DO UPDATE SET path = EXCLUDED.path, mime = EXCLUDED.mime,
             size_bytes = EXCLUDED.size_bytes, width = EXCLUDED.width,
             height = EXCLUDED.height, created_at = now()
         RETURNING asset_id, name, path, mime, size_bytes, width, height, created_at",
        v.asset_id,
        v.name,
        v.path,
        v.mime,
        v.size_bytes,
        v.width,
        v.height,
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// A branch point: a time in a video where the story can fork.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BranchRow {
    pub id: Uuid,
    pub asset_id: Uuid,
    pub at_ms: i64,
    pub label: Option<String>,
    /// The variants as the service validated them (JSON array).
    pub variants: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Records a branch point.
pub async fn insert_branch(
    pool: &PgPool,
    id: Uuid,
    asset_id: Uuid,
    at_ms: i64,
    label: Option<&str>,
    variants: &serde_json::Value,
) -> Result<BranchRow, StoreError> {
    let row = sqlx::query_as!(
        BranchRow,
        "INSERT INTO asset_branches (id, asset_id, at_ms, label, variants)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, asset_id, at_ms, label, variants, created_at",
        id,
        asset_id,
        at_ms,
        label,
        variants,
    )
    .fetch_one(pool)
    .await
    .map_err(crate::conflict("a branch point with this id"))?;
    Ok(row)
}

/// The branch points of a video, by time.
pub async fn branches(pool: &PgPool, asset_id: Uuid) -> Result<Vec<BranchRow>, StoreError> {
    let rows = sqlx::query_as!(
        BranchRow,
        "SELECT id, asset_id, at_ms, label, variants, created_at
         FROM asset_branches WHERE asset_id = $1 ORDER BY at_ms, created_at",
        asset_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Branch points by id (missing ones are left out).
pub async fn branches_by_id(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<BranchRow>, StoreError> {
    let rows = sqlx::query_as!(
        BranchRow,
        "SELECT id, asset_id, at_ms, label, variants, created_at
         FROM asset_branches WHERE id = ANY($1)",
        ids
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Deletes a branch point; false when there was none.
pub async fn delete_branch(pool: &PgPool, id: Uuid) -> Result<bool, StoreError> {
    let n = sqlx::query!("DELETE FROM asset_branches WHERE id = $1", id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// What [`similar_prompts`] looks for.
#[derive(Debug, Clone)]
pub struct PromptQuery<'a> {
    pub prompt: &'a str,
    pub operation: super::kinds::Operation,
    /// Only the assets of these owners (`None`: all).
    pub owners: Option<&'a [Uuid]>,
    /// The generation inputs the asset was made from, in order (empty: none).
    pub inputs: &'a [Uuid],
    /// Trigram similarity at least this (0–1).
    pub min_similarity: f32,
    pub limit: i64,
}

/// Generated assets (here, not archived) of the same operation and inputs whose prompt
/// is at least `min_similarity` alike (`pg_trgm`), most similar first: `(id,
/// similarity)`.
pub async fn similar_prompts(
    pool: &PgPool,
    q: &PromptQuery<'_>,
) -> Result<Vec<(Uuid, f64)>, StoreError> {
    let mut tx = pool.begin().await?;
    // `%` (which the trigram index serves) compares with this threshold.
    sqlx::query("SELECT set_config('pg_trgm.similarity_threshold', $1, true)")
        .bind(q.min_similarity.clamp(0.0, 1.0).to_string())
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query!(
        r#"SELECT a.id AS "id!", similarity(a.prompt, $1)::float8 AS "similarity!"
           FROM assets a
           WHERE a.origin = 'generated' AND a.prompt % $1 AND a.operation = $2
             AND a.archived_at IS NULL AND a.sync_status = 'downloaded'
             AND ($3::uuid[] IS NULL OR a.owner_id = ANY($3))
             AND COALESCE((SELECT array_agg(l.parent_asset_id ORDER BY l.sequence)
                           FROM asset_lineage l
                           WHERE l.child_asset_id = a.id AND l.generation_id IS NOT NULL),
                          '{}') = $4::uuid[]
           ORDER BY 2 DESC, a.created_at DESC
           LIMIT $5"#,
        q.prompt,
        q.operation.as_str(),
        q.owners as Option<&[Uuid]>,
        q.inputs,
        q.limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| (r.id, r.similarity)).collect())
}

/// What one owner's library holds for scenes: its clips, branch points and assets.
#[derive(Debug, Clone, Default)]
pub struct OwnerLibrary {
    pub clips: Vec<ClipRow>,
    pub branches: Vec<BranchRow>,
    /// `(id, media type)` of every asset not archived.
    pub assets: Vec<(Uuid, super::kinds::MediaType)>,
}

/// The clips, branch points and assets of `owner` (the scene content's: what scenes
/// may name).
pub async fn owner_library(pool: &PgPool, owner: Uuid) -> Result<OwnerLibrary, StoreError> {
    let clips = sqlx::query_as!(
        ClipRow,
        "SELECT c.asset_id, c.source_asset_id, c.start_ms, c.end_ms, c.label, c.created_at
         FROM asset_clips c JOIN assets a ON a.id = c.asset_id
         WHERE a.owner_id = $1 AND a.archived_at IS NULL",
        owner
    )
    .fetch_all(pool)
    .await?;
    let branches = sqlx::query_as!(
        BranchRow,
        "SELECT b.id, b.asset_id, b.at_ms, b.label, b.variants, b.created_at
         FROM asset_branches b JOIN assets a ON a.id = b.asset_id
         WHERE a.owner_id = $1 AND a.archived_at IS NULL",
        owner
    )
    .fetch_all(pool)
    .await?;
    let assets = sqlx::query!(
        r#"SELECT id, media_type AS "media_type: super::kinds::MediaType" FROM assets
           WHERE owner_id = $1 AND archived_at IS NULL"#,
        owner
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.media_type))
    .collect();
    Ok(OwnerLibrary {
        clips,
        branches,
        assets,
    })
}

/// The asset of an accepted submission whose file is not here yet.
#[derive(Debug, Clone)]
pub struct RemoteAsset<'a> {
    pub owner_id: Uuid,
    pub media_type: super::kinds::MediaType,
    /// The type expected (replaced by the file's at download).
    pub mime: &'a str,
    pub provider: &'a str,
    pub remote_id: &'a str,
    pub job_id: Uuid,
    pub operation: super::kinds::Operation,
    pub prompt: Option<&'a str>,
}

/// Records (or, for a new attempt of the job, takes over) the asset row of an accepted
/// submission: sync status `remote`, no file yet. Returns its id.
pub async fn remote_asset(pool: &PgPool, a: &RemoteAsset<'_>) -> Result<Uuid, StoreError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO assets (id, owner_id, media_type, mime, content_hash, size_bytes, path,
               origin, provider, remote_id, source_generation_id, operation, prompt,
               sync_status)
           VALUES ($1, $2, $3, $4, '', 0, '', 'generated', $5, $6, $7, $8, $9, 'remote')
           ON CONFLICT (source_generation_id) WHERE sync_status <> 'downloaded'
           DO UPDATE SET provider = EXCLUDED.provider, remote_id = EXCLUDED.remote_id,
               sync_status = 'remote'
           RETURNING id AS "id!""#,
        Uuid::now_v7(),
        a.owner_id,
        a.media_type.as_str(),
        a.mime,
        a.provider,
        a.remote_id,
        a.job_id,
        a.operation.as_str(),
        a.prompt,
    )
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// Sets the sync status of the job's asset whose file is not here yet; its id, when
/// it has one.
pub async fn set_job_sync(
    pool: &PgPool,
    job_id: Uuid,
    status: super::kinds::SyncStatus,
) -> Result<Option<Uuid>, StoreError> {
    let id = sqlx::query_scalar!(
        "UPDATE assets SET sync_status = $2
         WHERE source_generation_id = $1 AND sync_status <> 'downloaded'
         RETURNING id",
        job_id,
        status.as_str(),
    )
    .fetch_optional(pool)
    .await?;
    Ok(id)
}
