//! Assets: list, get, file, thumbnail, lineage, and uploads.

use std::path::PathBuf;

use store::generation::assets;
use uuid::Uuid;

use super::{GenerationService, page_limit};
use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::incoming::Incoming;
use crate::model::{Actor, Asset, AssetFilter, AssetLineage, AssetOrigin, Page};

/// Refuses (409) an asset whose file is still at the provider.
pub(super) fn require_downloaded(
    row: &store::generation::assets::AssetRow,
) -> Result<(), GenerationError> {
    let sync = row.library.sync_status;
    if sync != store::generation::kinds::SyncStatus::Downloaded {
        return Err(GenerationError::Conflict(format!(
            "the asset's file is not here (sync status {sync}): it is fetched when the provider has finished"
        )));
    }
    Ok(())
}

/// A stored file to serve (the REST layer handles Range on it).
#[derive(Debug, Clone)]
pub struct AssetFile {
    pub asset: Asset,
    pub path: PathBuf,
    pub mime: String,
    pub size: u64,
}

impl GenerationService {
    /// Newest first; users see their own assets, admins all (or `filter.owner_id`'s).
    pub async fn list_assets(
        &self,
        actor: Actor,
        filter: &AssetFilter,
    ) -> Result<Page<Asset>, GenerationError> {
        let limit = page_limit(filter.limit);
        let owner = if actor.is_admin {
            filter.owner_id
        } else {
            Some(actor.user_id.0)
        };
        let (rows, total) = assets::list(
            &self.shared.pool,
            &store::generation::assets::AssetFilter {
                owner_id: owner,
                media_type: filter.media_type,
                origin: filter.origin,
                provider: filter.provider.clone(),
                source_generation_id: filter.source_generation_id,
                content_hash: filter.content_hash.clone(),
                tags: filter.tags.clone(),
                archived: Some(filter.archived.unwrap_or(false)),
                parent_asset_id: filter.parent_asset_id,
                sync_status: filter.sync_status,
                offset: filter.offset as i64,
                limit: limit as i64,
            },
        )
        .await?;
        Ok(Page {
            items: rows.into_iter().map(Asset::from).collect(),
            total,
            offset: filter.offset,
            limit,
        })
    }

    pub(super) async fn visible_asset_row(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<store::generation::assets::AssetRow, GenerationError> {
        let row = assets::get(&self.shared.pool, id).await?;
        if !actor.may_read_asset(row.fields.owner_id) {
            return Err(GenerationError::NotFound("asset"));
        }
        Ok(row)
    }

    /// The asset, when the actor may read it and its file is here (not still at the
    /// provider: 409).
    pub(super) async fn downloaded_asset_row(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<store::generation::assets::AssetRow, GenerationError> {
        let row = self.visible_asset_row(actor, id).await?;
        require_downloaded(&row)?;
        Ok(row)
    }

    pub async fn get_asset(&self, actor: Actor, id: Uuid) -> Result<Asset, GenerationError> {
        Ok(self.visible_asset_row(actor, id).await?.into())
    }

    /// The file of an asset, for `GET /assets/{id}/file` (serve it with Range support).
    pub async fn asset_file(&self, actor: Actor, id: Uuid) -> Result<AssetFile, GenerationError> {
        let row = self.downloaded_asset_row(actor, id).await?;
        let path = self.shared.media.path(&row.fields.path)?;
        let size = tokio::fs::metadata(&path).await?.len();
        let mime = row.fields.mime.clone();
        Ok(AssetFile {
            asset: row.into(),
            path,
            mime,
            size,
        })
    }

    /// The thumbnail of an asset (a PNG, or the provider's poster: its type is read from
    /// the file), when it has one.
    pub async fn asset_thumbnail(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<AssetFile, GenerationError> {
        let row = self.downloaded_asset_row(actor, id).await?;
        let rel = row
            .fields
            .thumbnail_path
            .clone()
            .ok_or(GenerationError::NotFound("thumbnail"))?;
        let path = self.shared.media.path(&rel)?;
        let size = tokio::fs::metadata(&path).await?.len();
        let mut head = [0u8; 32];
        let n = tokio::io::AsyncReadExt::read(&mut tokio::fs::File::open(&path).await?, &mut head)
            .await?;
        let mime = crate::media::sniff(&head[..n]).map_or("image/png", |k| k.mime);
        Ok(AssetFile {
            asset: row.into(),
            path,
            mime: mime.into(),
            size,
        })
    }

    /// Direct parents and children of an asset. Edges to assets the actor cannot see
    /// are left out.
    pub async fn asset_lineage(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<AssetLineage, GenerationError> {
        self.visible_asset_row(actor, id).await?;
        let (parents, children) = assets::lineage(&self.shared.pool, id).await?;
        let mut others: Vec<Uuid> = parents.iter().map(|e| e.parent_asset_id).collect();
        others.extend(children.iter().map(|e| e.child_asset_id));
        let visible: Vec<Uuid> = assets::get_many(&self.shared.pool, &others)
            .await?
            .into_iter()
            .filter(|a| actor.may_read_asset(a.fields.owner_id))
            .map(|a| a.fields.id)
            .collect();
        Ok(AssetLineage {
            asset_id: id,
            parents: parents
                .into_iter()
                .filter(|e| visible.contains(&e.parent_asset_id))
                .map(Into::into)
                .collect(),
            children: children
                .into_iter()
                .filter(|e| visible.contains(&e.child_asset_id))
                .map(Into::into)
                .collect(),
        })
    }

    /// Stores `bytes` as an asset of `actor` (see [`Self::upload_incoming`] for
    /// uploads that stream in).
    pub async fn upload_asset(
        &self,
        actor: Actor,
        bytes: &[u8],
        declared_mime: Option<&str>,
    ) -> Result<Asset, GenerationError> {
        let mut up = self.shared.media.incoming().await?;
        up.write(bytes).await?;
        self.upload_incoming(actor, up, declared_mime).await
    }

    /// Finishes an upload that was streamed into the media store (never held in
    /// memory): checks its size and content, moves it into place and records the
    /// asset. The caller enforces `max_upload_bytes` while it streams; this checks it
    /// again.
    pub async fn upload_incoming(
        &self,
        actor: Actor,
        mut up: Incoming,
        declared_mime: Option<&str>,
    ) -> Result<Asset, GenerationError> {
        let max = self.shared.cfg.max_upload_bytes;
        if up.size() > max {
            return Err(GenerationError::InvalidMedia(format!(
                "the file exceeds {max} bytes"
            )));
        }
        if up.size() == 0 {
            return Err(GenerationError::InvalidMedia("the file is empty".into()));
        }
        let got = up.finish().await?.ok_or_else(|| {
            GenerationError::InvalidMedia("not a known image, video or audio format".into())
        })?;
        let kind = got.kind;
        if let Some(d) = declared_mime {
            let top = d.split('/').next().unwrap_or("");
            let expected = kind.mime.split('/').next().unwrap_or("");
            if !d.is_empty() && d != "application/octet-stream" && top != expected {
                return Err(GenerationError::InvalidMedia(format!(
                    "declared {d} but the content is {}",
                    kind.mime
                )));
            }
        }
        let p = got.probe;
        let stored = up.commit(kind.ext).await?;
        let thumbnail_path = crate::thumbnail::make(
            &self.shared.media,
            &stored.rel_path,
            kind.media_type,
            p.duration_ms,
        )
        .await;
        let row = assets::insert(
            &self.shared.pool,
            &crate::media::file_asset(
                actor.user_id.0,
                &kind,
                &p,
                stored,
                thumbnail_path,
                AssetOrigin::Uploaded,
            ),
        )
        .await?;
        let asset: Asset = row.into();
        self.shared.emit(GenerationEvent::AssetCreated {
            asset: Box::new(asset.clone()),
        });
        Ok(asset)
    }
}
