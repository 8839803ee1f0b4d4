//! The embedding task (every image and video gets a vector of the configured embedder,
//! new ones as they arrive, older ones by backfill) and nearest-neighbour search.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use store::generation::embeddings;
use uuid::Uuid;

use super::GenerationService;
use crate::embed::Embedder;
use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::model::{Actor, Asset, MediaType};

/// Assets embedded per look at the table.
const BATCH: i64 = 16;
/// With nothing to do, the task looks again after this long (or at once on a new asset).
const IDLE: Duration = Duration::from_secs(5);

/// An asset near another, and how near (cosine distance: 0 the same direction, 2
/// opposite).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SimilarAsset {
    pub asset: Asset,
    pub distance: f64,
}

impl GenerationService {
    /// Sets the embedder of this pipeline (once; later calls are ignored): the
    /// embedding task and similarity search use it.
    pub fn set_embedder(&self, embedder: Arc<dyn Embedder>) {
        let _ = self.shared.embedder.set(embedder);
    }

    /// The configured embedder's id (`None`: no embeddings).
    pub fn embedder_id(&self) -> Option<String> {
        self.shared.embedder.get().map(|e| e.id().to_owned())
    }

    /// Embeds every image and video that the configured embedder has not (new assets within moments
    /// of their creation, the rest oldest first), storing its id beside each vector; a
    /// file it cannot read gets no vector and is not tried again by it. Runs until
    /// `shutdown`. One task per database is enough; several do the work twice but
    /// store the same vectors.
    pub fn run_embeddings(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let svc = self.clone();
        let embedder = self.shared.embedder.get().cloned();
        async move {
            let Some(embedder) = embedder else { return };
            let mut events = svc.subscribe();
            tokio::pin!(shutdown);
            loop {
                let done = match svc.embed_some(&*embedder).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "embeddings: will try again");
                        0
                    }
                };
                if done as i64 == BATCH {
                    continue;
                }
                // Idle until an asset arrives (or a while passes: another process may
                // have added some).
                let idle = tokio::time::sleep(IDLE);
                tokio::pin!(idle);
                loop {
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = &mut idle => break,
                        ev = events.recv() => match ev {
                            Ok(GenerationEvent::AssetCreated { .. })
                            | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        },
                    }
                }
            }
        }
    }

    /// Embeds up to one batch; returns how many assets it handled.
    async fn embed_some(&self, embedder: &dyn Embedder) -> Result<usize, GenerationError> {
        let todo = embeddings::pending(&self.shared.pool, embedder.id(), BATCH).await?;
        for a in &todo {
            let path = self.shared.media.path(&a.path)?;
            let v = match embedder.embed_file(&path, a.media_type).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(asset = %a.id, embedder = embedder.id(), error = %e, "embeddings: the asset cannot be embedded");
                    None
                }
            };
            embeddings::set(&self.shared.pool, a.id, embedder.id(), v.as_deref()).await?;
        }
        Ok(todo.len())
    }

    /// How many images and videos `embedder` has still to embed.
    pub async fn embeddings_pending(&self, embedder: &str) -> Result<i64, GenerationError> {
        Ok(embeddings::count_pending(&self.shared.pool, embedder).await?)
    }

    /// The `limit` assets nearest to asset `id` (by its vector of the configured
    /// embedder) that the actor may read, nearest first. `Conflict` while the asset has
    /// no vector yet; `Unsupported` without an embedder.
    pub async fn similar_assets(
        &self,
        actor: Actor,
        id: Uuid,
        limit: i64,
    ) -> Result<Vec<SimilarAsset>, GenerationError> {
        self.search_assets(
            actor,
            &AssetSearch {
                by: SearchBy::Asset(id),
                limit,
                ..Default::default()
            },
        )
        .await
    }

    /// The assets nearest to what `search` names (an asset's vector, a text or a
    /// picture), filtered, that the actor may read; nearest first.
    pub async fn search_assets(
        &self,
        actor: Actor,
        search: &AssetSearch,
    ) -> Result<Vec<SimilarAsset>, GenerationError> {
        let embedder = self
            .shared
            .embedder
            .get()
            .cloned()
            .ok_or_else(|| GenerationError::Unsupported("no embedder is configured".into()))?;
        let (vector, exclude) = match &search.by {
            SearchBy::Asset(id) => {
                self.visible_asset_row(actor, *id).await?;
                let v = embeddings::vector_of(&self.shared.pool, *id, embedder.id())
                    .await?
                    .ok_or_else(|| {
                        GenerationError::Conflict(
                            "the asset has no embedding yet (audio has none; images and videos get one moments after they are stored)".into(),
                        )
                    })?;
                (v, Some(*id))
            }
            SearchBy::Text(text) => {
                let v = embedder
                    .embed_text(text)
                    .await
                    .map_err(|e| GenerationError::ProviderUnavailable(e.to_string()))?
                    .ok_or_else(|| {
                        GenerationError::Unsupported(format!(
                            "the embedder {} has no text side; configure an embeddings server",
                            embedder.id()
                        ))
                    })?;
                let v = crate::embed::to_column(v)
                    .map_err(|e| GenerationError::ProviderUnavailable(e.to_string()))?;
                (embeddings::vector_text(&v), None)
            }
            SearchBy::File(path, media_type) => {
                let v = embedder
                    .embed_file(path, *media_type)
                    .await
                    .map_err(|e| GenerationError::InvalidMedia(e.to_string()))?
                    .ok_or_else(|| {
                        GenerationError::InvalidMedia(format!(
                            "the embedder does not embed {}",
                            media_type.as_str()
                        ))
                    })?;
                (embeddings::vector_text(&v), None)
            }
        };
        let owners: Option<Vec<Uuid>> =
            (!actor.is_admin).then(|| vec![actor.user_id.0, domain::user::CONTENT_OWNER.0]);
        let near = embeddings::nearest(
            &self.shared.pool,
            &embeddings::NearestQuery {
                vector: &vector,
                embedder: embedder.id(),
                exclude,
                owners: owners.as_deref(),
                media_type: search.media_type,
                created_after: search.created_after,
                created_before: search.created_before,
                tags: &search.tags,
                include_archived: search.include_archived,
                limit: search.limit.clamp(1, 100),
            },
        )
        .await?;
        let ids: Vec<Uuid> = near.iter().map(|n| n.0).collect();
        let rows = store::generation::assets::get_many(&self.shared.pool, &ids).await?;
        Ok(near
            .into_iter()
            .filter_map(|(id, distance)| {
                let row = rows.iter().find(|r| r.fields.id == id)?.clone();
                Some(SimilarAsset {
                    asset: row.into(),
                    distance,
                })
            })
            .collect())
    }
}

impl GenerationService {
    /// [`Self::search_assets`] by an uploaded picture or video: embedded for this search
    /// only (the upload is not stored). `search` makes the search from what to search by.
    pub async fn search_by_upload<E>(
        &self,
        actor: Actor,
        mut up: crate::incoming::Incoming,
        search: impl FnOnce(SearchBy) -> Result<AssetSearch, E>,
    ) -> Result<Vec<SimilarAsset>, E>
    where
        E: From<GenerationError>,
    {
        if up.size() == 0 {
            return Err(GenerationError::InvalidMedia("the file is empty".into()).into());
        }
        let got = up
            .finish()
            .await
            .map_err(GenerationError::from)?
            .ok_or_else(|| {
                GenerationError::InvalidMedia("not a known image, video or audio format".into())
            })?;
        let by = SearchBy::File(up.temp_path().to_path_buf(), got.kind.media_type);
        let found = self.search_assets(actor, &search(by)?).await?;
        // The temporary file goes with `up`.
        drop(up);
        Ok(found)
    }
}

/// What to search by.
#[derive(Debug, Clone)]
pub enum SearchBy {
    /// The vector of this asset (which is left out of the answer).
    Asset(Uuid),
    /// A text, where the embedder has a text side.
    Text(String),
    /// A picture or video in a file (an upload), embedded for the search only.
    File(std::path::PathBuf, MediaType),
}

impl Default for SearchBy {
    fn default() -> Self {
        SearchBy::Text(String::new())
    }
}

/// A similarity search: what by, filters, how many.
#[derive(Debug, Clone, Default)]
pub struct AssetSearch {
    pub by: SearchBy,
    pub media_type: Option<MediaType>,
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only assets carrying every one of these tags.
    pub tags: Vec<String>,
    /// Archived assets too (left out by default).
    pub include_archived: bool,
    pub limit: i64,
}
