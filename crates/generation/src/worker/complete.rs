//! Completion: the result stored content-addressed, the asset with its lineage, the
//! job completed (group-committed with others completing now).

use store::generation::assets::{Completion, NewAsset, NewEdge};
use uuid::Uuid;

use super::process::Attempt;
use super::{Outcome, Worker};
use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::media::{file_asset, probe, sniff};
use crate::model::{Asset, AssetOrigin, Generation};
use crate::provider::MediaResult;

impl Worker {
    /// Stores the result, creates the asset with lineage and completes the job.
    pub(super) async fn complete(
        &self,
        at: &Attempt<'_>,
        sub_id: Option<Uuid>,
        remote_id: &str,
        media: MediaResult,
    ) -> Result<Outcome, GenerationError> {
        let row = at.row;
        // An asynchronous provider's job has its asset row since the submission was
        // accepted (sync status `remote`): the completion fills that row in.
        let pending = match sub_id {
            Some(_) => {
                store::generation::library::set_job_sync(
                    &self.shared.pool,
                    row.id,
                    store::generation::kinds::SyncStatus::Downloading,
                )
                .await?
            }
            None => None,
        };
        let Some(asset) = self.store_result(at, remote_id, &media, pending).await? else {
            return Ok(self
                .fail(
                    row,
                    "download_rejected",
                    "the result is not a known media format",
                )
                .await);
        };
        let edges: Vec<NewEdge> = at
            .inputs
            .iter()
            .enumerate()
            .map(|(i, inp)| NewEdge {
                parent_asset_id: inp.asset_id,
                relation: inp.role.as_str().into(),
                operation: at.op.as_str().into(),
                sequence: i as i32,
            })
            .collect();
        match self
            .shared
            .complete_job(Completion {
                job_id: row.id,
                attempt: row.attempt,
                owner: self.id.to_string(),
                submission_id: sub_id,
                asset,
                edges,
            })
            .await?
        {
            Some((job, asset)) => {
                let asset_id = asset.fields.id;
                let asset: Asset = asset.into();
                let generation: Generation = job.try_into()?;
                self.shared.emit(GenerationEvent::AssetCreated {
                    asset: Box::new(asset.clone()),
                });
                self.shared.emit(GenerationEvent::JobCompleted {
                    generation: Box::new(generation),
                    asset: Box::new(asset),
                });
                Ok(Outcome::Completed { asset_id })
            }
            None => Ok(Outcome::LeaseLost),
        }
    }

    /// Stores the result (and its thumbnail) content-addressed and describes the
    /// asset (`pending`: the id of its row recorded at submission); `None` when the
    /// result is no known media format.
    async fn store_result(
        &self,
        at: &Attempt<'_>,
        remote_id: &str,
        media: &MediaResult,
        pending: Option<Uuid>,
    ) -> Result<Option<NewAsset>, GenerationError> {
        let Attempt {
            row, op, params, ..
        } = *at;
        let Some(kind) = sniff(&media.bytes) else {
            return Ok(None);
        };
        let p = probe(&media.bytes, &kind);
        let stored = self.shared.media.put(&media.bytes, kind.ext).await?;
        // The provider's poster, else one made from the file.
        let thumbnail_path = match media
            .thumbnail
            .as_deref()
            .and_then(|t| sniff(t).map(|k| (t, k)))
        {
            Some((t, k)) => Some(self.shared.media.put(t, k.ext).await?.rel_path),
            None => {
                let media = &self.shared.media;
                crate::thumbnail::make(media, &stored.rel_path, kind.media_type, p.duration_ms)
                    .await
            }
        };
        let file = file_asset(
            row.user_id,
            &kind,
            &p,
            stored,
            thumbnail_path,
            AssetOrigin::Generated,
        );
        Ok(Some(NewAsset {
            id: pending.unwrap_or(file.id),
            provider: Some(at.provider.id().to_owned()),
            remote_id: Some(remote_id.to_owned()),
            remote_url: media.remote_url.clone(),
            source_generation_id: Some(row.id),
            operation: Some(op),
            prompt: params.prompt.clone(),
            ..file
        }))
    }
}
