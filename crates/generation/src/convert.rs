//! Rows of the store → the REST model: field moves (the stored enums are the model's
//! own, decoded by the store), plus the job's `inputs` JSON and the account's
//! `jobs_today` (0 on another day) and key hint.

use domain::user::UserId;
use store::StoreError;
use store::generation::accounts::AccountRow;
use store::generation::assets::{AssetRow, EdgeRow};
use store::generation::jobs::JobRow;
use store::generation::submissions::SubmissionRow;

use crate::model::{
    Asset, Generation, InputRef, JobStatus, LineageEdge, ProviderAccount, Submission,
};
use crate::provider::{Credentials, ProviderError};
use crate::secrets::SecretKey;

impl Credentials {
    /// The account's credentials, its key opened with `key`. A key that does not open
    /// (another server's secret key) is an authentication failure of that account.
    pub(crate) fn open(a: &AccountRow, key: &SecretKey) -> Result<Self, ProviderError> {
        let api_key = key
            .open(a.id, &a.api_key)
            .map_err(|e| ProviderError::Auth {
                code: Some("key_unreadable".into()),
                message: e.to_string(),
            })?;
        Ok(Credentials {
            account_id: a.id,
            api_key,
        })
    }
}

impl TryFrom<JobRow> for Generation {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        let inputs: Vec<InputRef> = serde_json::from_value(r.inputs)
            .map_err(|e| StoreError::Corrupt(format!("generation inputs: {e}")))?;
        Ok(Generation {
            id: r.id,
            user_id: UserId(r.user_id),
            provider: r.provider,
            operation: r.operation,
            params: r.params,
            inputs,
            params_hash: r.params_hash,
            status: r.status,
            priority: r.priority,
            scheduled_at: r.scheduled_at,
            idempotency_key: r.idempotency_key,
            force_new: r.force_new,
            preferred_account_id: r.preferred_account_id,
            account_id: r.account_id,
            attempt: r.attempt,
            retry_count: r.retry_count,
            max_retries: r.max_retries,
            progress: percent(r.status, r.progress),
            queue_position: None,
            estimated_start_at: None,
            asset_id: r.asset_id,
            reused_from: r.reused_from,
            similar_assets: Vec::new(),
            parent_generation_id: r.parent_generation_id,
            error_code: r.error_code,
            error_message: r.error_message,
            metadata: r.metadata,
            estimated_credits: r.estimated_credits,
            credits_charged: r.credits_charged,
            created_at: r.created_at,
            updated_at: r.updated_at,
            started_at: r.started_at,
            completed_at: r.completed_at,
            deadline_at: r.deadline_at,
        })
    }
}

/// A job's progress in percent (one decimal) from the stored fraction (see
/// [`Generation::progress`]).
fn percent(status: JobStatus, stored: Option<f32>) -> Option<f32> {
    let pct = |p: f32| (p.clamp(0.0, 1.0) * 1000.0).round() / 10.0;
    match status {
        JobStatus::Pending | JobStatus::Paused => None,
        JobStatus::Processing => Some(stored.map_or(0.0, pct)),
        JobStatus::Completed => Some(100.0),
        JobStatus::Failed | JobStatus::Cancelled => stored.map(pct),
    }
}

impl From<AssetRow> for Asset {
    fn from(row: AssetRow) -> Self {
        let r = row.fields;
        let l = row.library;
        Asset {
            id: r.id,
            owner_id: UserId(r.owner_id),
            media_type: r.media_type,
            mime: r.mime,
            content_hash: r.content_hash,
            size_bytes: r.size_bytes,
            width: r.width,
            height: r.height,
            duration_ms: r.duration_ms,
            has_thumbnail: r.thumbnail_path.is_some(),
            origin: r.origin,
            provider: r.provider,
            remote_id: r.remote_id,
            remote_url: r.remote_url,
            source_generation_id: r.source_generation_id,
            operation: r.operation,
            prompt: r.prompt,
            fps: r.fps,
            tags: l.tags,
            archived_at: l.archived_at,
            parent_asset_id: l.parent_asset_id,
            version_family_id: l.version_family_id,
            version_number: l.version_number,
            version_message: l.version_message,
            sync_status: l.sync_status,
            created_at: row.created_at,
        }
    }
}

impl From<EdgeRow> for LineageEdge {
    fn from(r: EdgeRow) -> Self {
        LineageEdge {
            parent_asset_id: r.parent_asset_id,
            child_asset_id: r.child_asset_id,
            relation: r.relation,
            operation: r.operation,
            sequence: r.sequence,
            generation_id: r.generation_id,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            start_frame: r.start_frame,
            end_frame: r.end_frame,
            created_at: r.created_at,
        }
    }
}

impl From<AccountRow> for ProviderAccount {
    fn from(r: AccountRow) -> Self {
        let today = chrono::Utc::now().date_naive();
        ProviderAccount {
            id: r.id,
            provider: r.provider,
            label: r.label,
            owner_id: r.owner_id,
            api_key_hint: format!("…{}", r.api_key_hint),
            status: r.status,
            priority: r.priority,
            credits: r.credits,
            max_concurrent_jobs: r.max_concurrent_jobs,
            current_jobs: r.current_jobs,
            daily_limit: r.daily_limit,
            jobs_today: if r.jobs_day == Some(today) {
                r.jobs_today
            } else {
                0
            },
            cooldown_until: r.cooldown_until,
            last_used_at: r.last_used_at,
            last_error: r.last_error,
            balance_checked_at: r.balance_checked_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl From<SubmissionRow> for Submission {
    fn from(r: SubmissionRow) -> Self {
        Submission {
            id: r.id,
            generation_id: r.generation_id,
            attempt: r.attempt,
            provider: r.provider,
            account_id: r.account_id,
            remote_id: r.remote_id,
            status: r.status,
            error_class: r.error_class,
            error_code: r.error_code,
            error_message: r.error_message,
            credits: r.credits,
            credits_refunded: r.credits_refunded,
            submitted_at: r.submitted_at,
            accepted_at: r.accepted_at,
            finished_at: r.finished_at,
        }
    }
}
