//! The pipeline's data model: jobs, parameters, provider accounts, assets, lineage.
//! Everything here is serde + `utoipa::ToSchema` so the REST layer can expose it as is
//! (the stored enums come from `store::generation::kinds`, with its `openapi` feature).

use chrono::{DateTime, Utc};
use domain::user::UserId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The closed sets stored as text (operations, statuses, media types, origins, roles)
/// live in the store, which maps them to their columns; they are part of this model.
pub use store::generation::kinds::{
    AccountStatus, AssetOrigin, DeliveryStatus, InputRole, JobStatus, MediaType, Operation,
    SubmissionStatus, SyncStatus, UnknownValue,
};

/// Generation parameters as requested. Unknown fields are refused; which fields apply
/// and their allowed values depend on provider and operation (see
/// [`crate::params::validate`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// Provider model, e.g. `v5` (Pixverse) or `sora-2` (OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    /// `360p`, `540p`, `720p`, `1080p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// `16:9`, `4:3`, `1:1`, `3:4`, `9:16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    /// `WIDTHxHEIGHT` (OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// 0..=2147483647; makes results reproducible where the provider supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// `normal` or `fast` (Pixverse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motion_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_movement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<i64>,
}

/// An input asset of a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputRef {
    pub asset_id: Uuid,
    /// Defaults from the operation (source_image, source_video, transition_input, subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<InputRole>,
    /// Fusion: the name the prompt uses as `@ref_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_name: Option<String>,
}

/// A request to create (or validate) a generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGeneration {
    /// `local` (default), `pixverse`, `openai`, or another registered provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub operation: Option<Operation>,
    #[serde(default)]
    pub params: GenerationParams,
    #[serde(default)]
    pub inputs: Vec<InputRef>,
    /// 0..=10, default 5; higher runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 10)]
    pub priority: Option<i16>,
    /// Not before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Creating twice with the same key within 24 hours returns the first job (per
    /// user; the same key with other parameters is a conflict). Over REST the
    /// `Idempotency-Key` header sets it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// A job not started by then is cancelled with error code `deadline_exceeded`
    /// (nothing charged); a processing one is cancelled at the provider where the
    /// provider has a call to stop it, else left to finish. In the future, at most
    /// 30 days ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_at: Option<DateTime<Utc>>,
    /// Generate even when an asset with the same parameter hash exists (the same as
    /// `reuse: "never"`).
    #[serde(default)]
    pub force_new: bool,
    /// What a create may reuse instead of generating: `exact` (default: the asset of a
    /// completed job with the same parameter hash), `similar` (that, else the most
    /// similar existing asset at least `reuse_min_similarity` alike; see
    /// `similar_assets`), or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<ReuseMode>,
    /// For `reuse: "similar"` and validate's `similar_assets`: how alike (0–1) an
    /// asset must be (default: the server's `generation.reuse_min_similarity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub reuse_min_similarity: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_account_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_generation_id: Option<Uuid>,
    /// Failed attempts allowed before the job fails (default from config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Free-form data carried along (e.g. `{"scene": …, "node": …}` for the sim bridge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParamIssue {
    /// The field, e.g. `params.duration` or `inputs[0]`.
    pub field: String,
    /// Machine code: `required`, `invalid_value`, `out_of_range`, `unsupported`, …
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ParamIssue {
    /// `field: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The answer of validate (and what create checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationReport {
    pub valid: bool,
    pub provider: String,
    pub operation: Option<Operation>,
    /// Parameters with the provider's defaults applied (when valid).
    #[schema(value_type = Option<Object>)]
    pub canonical_params: Option<serde_json::Value>,
    /// sha256 of the canonical form (provider, operation, parameters, inputs).
    pub params_hash: Option<String>,
    pub issues: Vec<ParamIssue>,
    /// The asset a create would reuse (same hash, not `force_new`).
    pub reusable_asset_id: Option<Uuid>,
    /// Existing assets the caller may read that are alike what this request would make
    /// (at least `reuse_min_similarity`), most similar first: what `reuse: "similar"`
    /// would take when no asset has the same hash.
    pub similar_assets: Vec<ReuseCandidate>,
}

/// What a create may reuse instead of generating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReuseMode {
    /// The asset of a completed job with the same parameter hash.
    #[default]
    Exact,
    /// That, else the most similar existing asset (see `similar_assets`).
    Similar,
    /// Always generate.
    Never,
}

/// An existing asset alike what a generation request would make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReuseCandidate {
    pub asset: Asset,
    /// 0–1, 1 the same: for `prompt`, the trigram similarity of the prompts (the
    /// asset's operation and inputs being the same); for `embedding`, 1 minus the
    /// cosine distance between the prompt's text embedding and the asset's.
    pub similarity: f64,
    /// `prompt` or `embedding`.
    pub matched_by: String,
}

/// A generation job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Generation {
    pub id: Uuid,
    pub user_id: UserId,
    pub provider: String,
    pub operation: Operation,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub inputs: Vec<InputRef>,
    pub params_hash: String,
    pub status: JobStatus,
    pub priority: i16,
    pub scheduled_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    pub force_new: bool,
    pub preferred_account_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// Claims so far (each worker lease is one attempt).
    pub attempt: i32,
    pub retry_count: i32,
    pub max_retries: i32,
    /// Percent done, 0 to 100: while processing, what the provider reports (the local
    /// renderer: frames drawn), 0 before its first report; 100 once completed; the
    /// last reported value once failed or cancelled; null while pending or paused.
    pub progress: Option<f32>,
    /// While pending: 1 = the next job a worker claims (computed at read time).
    #[serde(default)]
    pub queue_position: Option<i64>,
    /// While pending: when it is expected to start, from recent run times and the jobs
    /// running (null otherwise, or before any job has completed).
    #[serde(default)]
    pub estimated_start_at: Option<DateTime<Utc>>,
    pub asset_id: Option<Uuid>,
    /// The completed generation whose asset this one reuses (same parameter hash, or
    /// the job that made the similar asset a `reuse: "similar"` took).
    pub reused_from: Option<Uuid>,
    /// On a create with `reuse: "similar"` only: the existing assets alike what it
    /// would make, most similar first (the job reuses the first when no asset has the
    /// same hash and it is alike enough).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similar_assets: Vec<ReuseCandidate>,
    pub parent_generation_id: Option<Uuid>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Credits one provider submission is expected to cost (0: free or unknown).
    pub estimated_credits: i64,
    /// Net credits charged: accepted submissions minus the provider's refunds.
    pub credits_charged: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Cancelled with error code `deadline_exceeded` when not started by then.
    pub deadline_at: Option<DateTime<Utc>>,
}

/// Generation list filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GenerationFilter {
    /// Admins only: another user's jobs (otherwise one's own).
    pub user_id: Option<Uuid>,
    pub status: Option<Vec<JobStatus>>,
    pub provider: Option<String>,
    pub operation: Option<Operation>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    #[serde(default)]
    pub offset: u32,
    /// Default 50, at most 200.
    pub limit: Option<u32>,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub offset: u32,
    pub limit: u32,
}

/// A provider submit of one job attempt (the idempotency record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Submission {
    pub id: Uuid,
    pub generation_id: Uuid,
    pub attempt: i32,
    pub provider: String,
    pub account_id: Option<Uuid>,
    pub remote_id: Option<String>,
    pub status: SubmissionStatus,
    pub error_class: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Credits charged when the provider accepted it.
    pub credits: i64,
    /// The provider gave the credits back (Pixverse: moderation failures).
    pub credits_refunded: bool,
    pub submitted_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A provider account as shown to users (the key never leaves the server; only its
/// last four characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderAccount {
    pub id: Uuid,
    pub provider: String,
    pub label: String,
    /// `None`: shared with every user.
    pub owner_id: Option<Uuid>,
    pub api_key_hint: String,
    pub status: AccountStatus,
    pub priority: i32,
    pub credits: Option<i64>,
    pub max_concurrent_jobs: i32,
    pub current_jobs: i32,
    pub daily_limit: Option<i32>,
    pub jobs_today: i32,
    pub cooldown_until: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When `credits` was last read from the provider (`POST …/refresh`, or after an
    /// out-of-credits answer).
    pub balance_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new provider account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProviderAccount {
    pub provider: String,
    pub label: String,
    pub api_key: String,
    /// Admins: `true` makes a shared account; users always own theirs.
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub credits: Option<i64>,
    /// Default 2.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub max_concurrent_jobs: Option<i32>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub daily_limit: Option<i32>,
}

/// Changes to a provider account; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderAccountPatch {
    pub label: Option<String>,
    pub api_key: Option<String>,
    pub status: Option<AccountStatus>,
    pub priority: Option<i32>,
    pub credits: Option<i64>,
    #[schema(minimum = 0, maximum = 1000)]
    pub max_concurrent_jobs: Option<i32>,
    #[schema(minimum = 0)]
    pub daily_limit: Option<i32>,
    /// Clears the cooldown when true.
    #[serde(default)]
    pub clear_cooldown: bool,
}

/// A stored media file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Asset {
    pub id: Uuid,
    pub owner_id: UserId,
    pub media_type: MediaType,
    pub mime: String,
    /// sha256 hex of the content.
    pub content_hash: String,
    pub size_bytes: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub duration_ms: Option<i64>,
    pub has_thumbnail: bool,
    pub origin: AssetOrigin,
    pub provider: Option<String>,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    pub source_generation_id: Option<Uuid>,
    pub operation: Option<Operation>,
    pub prompt: Option<String>,
    /// Frames per second of a video track.
    pub fps: Option<f32>,
    /// Lowercase tags (see `PATCH /api/v1/assets/{id}`).
    pub tags: Vec<String>,
    /// When it was archived (hidden from lists and searches unless asked for);
    /// `null`: not archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// The asset this one was made from here: the previous version, or the video a
    /// clip or keyframe was cut from.
    pub parent_asset_id: Option<Uuid>,
    /// The version family (the id of its first version); `null`: in no family.
    pub version_family_id: Option<Uuid>,
    /// The number in the family, 1 for the first.
    pub version_number: Option<i32>,
    pub version_message: Option<String>,
    /// Whether the file is here (`downloaded`) or still only at the provider.
    pub sync_status: SyncStatus,
    pub created_at: DateTime<Utc>,
}

/// Asset list filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetFilter {
    /// Admins only: another user's assets.
    pub owner_id: Option<Uuid>,
    pub media_type: Option<MediaType>,
    pub origin: Option<AssetOrigin>,
    pub provider: Option<String>,
    pub source_generation_id: Option<Uuid>,
    pub content_hash: Option<String>,
    /// Assets carrying every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Archived assets: `false` (default) leaves them out, `true` lists only them.
    pub archived: Option<bool>,
    /// The versions, clips and keyframes made from this asset.
    pub parent_asset_id: Option<Uuid>,
    /// `remote`, `downloading`, `downloaded` or `error`.
    pub sync_status: Option<SyncStatus>,
    #[serde(default)]
    pub offset: u32,
    /// Default 50, at most 200.
    pub limit: Option<u32>,
}

/// A lineage edge parent → child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineageEdge {
    pub parent_asset_id: Uuid,
    pub child_asset_id: Uuid,
    /// The input's role in a generation (`source_image`, `source_video`,
    /// `transition_input`, `subject`, `background`), or how the child was made here:
    /// `version`, `clip`, `keyframe`.
    pub relation: String,
    pub operation: String,
    pub sequence: i32,
    pub generation_id: Option<Uuid>,
    /// The part of the parent used (a clip's segment; a keyframe's time), in ms.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// The same part in frames of the parent, where its frame rate is known.
    pub start_frame: Option<i32>,
    pub end_frame: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// An asset's direct lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetLineage {
    pub asset_id: Uuid,
    /// Edges to the assets this one was made from.
    pub parents: Vec<LineageEdge>,
    /// Edges to the assets made from this one.
    pub children: Vec<LineageEdge>,
}

/// Who is asking: users see and change only their own jobs, assets and accounts;
/// admins see all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub is_admin: bool,
}

impl Actor {
    pub fn user(user_id: UserId) -> Self {
        Actor {
            user_id,
            is_admin: false,
        }
    }
    pub fn admin(user_id: UserId) -> Self {
        Actor {
            user_id,
            is_admin: true,
        }
    }
    /// May this actor see something owned by `owner`?
    pub fn may_see(&self, owner: Uuid) -> bool {
        self.is_admin || self.user_id.0 == owner
    }
    /// May this actor read an asset owned by `owner`? Its own, any for admins, and scene
    /// content assets (owned by [`domain::user::CONTENT_OWNER`]) for everyone.
    pub fn may_read_asset(&self, owner: Uuid) -> bool {
        self.may_see(owner) || owner == domain::user::CONTENT_OWNER.0
    }
}

/// What a credit budget limits: one user's jobs, or the jobs of one world (those whose
/// `metadata.world` names it, as the scene media of that world's scenes do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    User,
    World,
}

impl BudgetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::User => "user",
            BudgetScope::World => "world",
        }
    }
}

/// A credit budget with what its scope has spent: unfinished jobs count with their
/// estimated credits, finished ones with the credits charged; "today" is the UTC day
/// the jobs were created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditBudget {
    pub scope: BudgetScope,
    /// The user id or the world id.
    pub scope_id: String,
    /// Most credits per UTC day (null: no daily limit).
    pub daily_limit: Option<i64>,
    /// Most credits in all (null: no total limit).
    pub total_limit: Option<i64>,
    pub spent_today: i64,
    pub spent_total: i64,
    pub updated_at: DateTime<Utc>,
}

/// `PUT /api/v1/admin/budgets/{scope}/{id}`: the limits (absent or null: none).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBudget {
    #[serde(default)]
    pub daily_limit: Option<i64>,
    #[serde(default)]
    pub total_limit: Option<i64>,
}
