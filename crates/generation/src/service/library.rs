//! The asset library (issue #23): tags and archiving, version families, clips and
//! keyframes cut by the local encoder, variants made on demand and cached, and branch
//! points. Reads need what [`Actor::may_read_asset`] allows; changes need the asset to
//! be the actor's own (or an admin): a content asset is readable by all and changed by
//! admins only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::generation::assets::{AssetRow, NewAsset};
use store::generation::library::{self as lib, BranchRow, ClipRow, NewClip, VariantRow};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::GenerationService;
use super::assets::AssetFile;
use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::model::{Actor, Asset, AssetOrigin, MediaType};
use crate::render::Ffmpeg;
use crate::render::codec::{Output, Transcode, transcode_file};

/// Tags an asset may carry.
pub const MAX_TAGS: usize = 32;
/// Characters in a tag.
pub const MAX_TAG_LEN: usize = 48;
/// The shortest clip.
pub const MIN_CLIP_MS: i64 = 100;
/// Variants of one branch point.
pub const MAX_BRANCH_VARIANTS: usize = 16;

/// Changes to an asset's library fields.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetPatch {
    /// Replaces the tags: words of lowercase letters, digits, `-`, `_`, `:` and `.`
    /// (given in any case; stored lowercase), at most 32 of at most 48 characters.
    pub tags: Option<Vec<String>>,
    /// `true` archives the asset (hidden from lists and searches unless asked for),
    /// `false` restores it.
    pub archived: Option<bool>,
    /// `true` (admins only) gives the asset to the scene content: every player may
    /// fetch it and scenes may name it, its clips and its branch points. There is no
    /// way back (sessions may be showing it).
    pub publish: Option<bool>,
}

/// A new version of an asset.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// The asset that becomes the next version (the caller's, in no family yet).
    pub asset_id: Uuid,
    /// What changed.
    #[schema(max_length = 500)]
    pub message: Option<String>,
}

/// An asset's version family.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssetVersions {
    /// The family (the id of its first version); `null` when the asset has no other
    /// versions (it is then the only item).
    pub family_id: Option<Uuid>,
    /// By version number.
    pub versions: Vec<Asset>,
}

/// A segment of a video to cut into its own asset.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClipRequest {
    /// Where the clip starts in the video (ms).
    #[schema(minimum = 0)]
    pub start_ms: i64,
    /// Where it ends (ms), at least 100 ms after the start and at most the video's
    /// duration.
    #[schema(minimum = 1)]
    pub end_ms: i64,
    #[schema(max_length = 200)]
    pub label: Option<String>,
}

/// A clip: its segment of the source video, and its own asset (whose file is the cut
/// segment, served at `/api/v1/assets/{asset.id}/file`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Clip {
    /// The clip's id: its asset's.
    pub id: Uuid,
    pub source_asset_id: Uuid,
    pub start_ms: i64,
    pub end_ms: i64,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub asset: Asset,
}

/// A still to take from a video.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyframe {
    /// The frame's time in the video (ms), at most its duration.
    #[schema(minimum = 0)]
    pub at_ms: i64,
}

/// The renditions every asset may have, made on first request and cached.
#[derive(Debug, Clone, Copy)]
struct Preset {
    name: &'static str,
    description: &'static str,
    /// The output for a video and for an image (`None`: not for that kind).
    video: Option<Output>,
    image: Option<Output>,
    max_height: Option<u32>,
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "360p",
        description: "at most 360 lines (H.264 MP4 for a video, PNG for an image): for mobile",
        video: Some(Output::Mp4),
        image: Some(Output::Png),
        max_height: Some(360),
    },
    Preset {
        name: "720p",
        description: "at most 720 lines (H.264 MP4 for a video, PNG for an image)",
        video: Some(Output::Mp4),
        image: Some(Output::Png),
        max_height: Some(720),
    },
    Preset {
        name: "poster",
        description: "a full-size PNG: a video's frame one second in (half way through a shorter one), or the image",
        video: Some(Output::Png),
        image: Some(Output::Png),
        max_height: None,
    },
];

/// The names of the variant presets (`360p`, `720p`, `poster`).
pub fn variant_names() -> impl Iterator<Item = &'static str> {
    PRESETS.iter().map(|p| p.name)
}

/// A variant of an asset: a preset, and its file once made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Variant {
    pub name: String,
    pub description: String,
    /// Made and cached (else it is made on its first `GET`).
    pub ready: bool,
    pub mime: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub size_bytes: Option<i64>,
    /// Where to fetch it.
    pub url: String,
}

/// One way a branch point's story can go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchVariant {
    /// Unique in the branch point: letters, digits and `_`, not starting with a digit.
    pub key: String,
    pub label: Option<String>,
    /// Relative weight in the draw among the variants whose condition holds (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 0)]
    pub weight: f64,
    /// A condition in the scene expression language (e.g. `var.trust >= 3`); `null`:
    /// always eligible.
    pub condition: Option<String>,
    /// The video the story goes on with (an asset the caller may read).
    pub asset_id: Option<Uuid>,
}

fn one() -> f64 {
    1.0
}

/// A new branch point.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBranch {
    /// Where in the video the story can fork (ms), at most its duration.
    #[schema(minimum = 0)]
    pub at_ms: i64,
    #[schema(max_length = 200)]
    pub label: Option<String>,
    /// 1 to 16 variants.
    pub variants: Vec<BranchVariant>,
}

/// A branch point in a video.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Branch {
    pub id: Uuid,
    pub asset_id: Uuid,
    pub at_ms: i64,
    pub label: Option<String>,
    pub variants: Vec<BranchVariant>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<BranchRow> for Branch {
    type Error = GenerationError;
    fn try_from(r: BranchRow) -> Result<Self, GenerationError> {
        let variants = serde_json::from_value(r.variants).map_err(|e| {
            GenerationError::Store(store::StoreError::Corrupt(format!("branch variants: {e}")))
        })?;
        Ok(Branch {
            id: r.id,
            asset_id: r.asset_id,
            at_ms: r.at_ms,
            label: r.label,
            variants,
            created_at: r.created_at,
        })
    }
}

/// One variant of one asset, being made.
type VariantKey = (Uuid, &'static str);

/// Encoder runs: at most one per core at once, and one per variant (a second request
/// for a variant being made waits for it instead of making it again).
pub(crate) struct Transcoder {
    slots: Semaphore,
    making: Mutex<HashMap<VariantKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for Transcoder {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Transcoder {
            slots: Semaphore::new(cores),
            making: Mutex::new(HashMap::new()),
        }
    }
}

impl Transcoder {
    fn lock_for(&self, key: VariantKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.making.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, l| Arc::strong_count(l) > 1);
        m.entry(key).or_default().clone()
    }
}

/// Normalized tags, or why they are refused.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, GenerationError> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "at most {MAX_TAGS} tags (got {})",
            tags.len()
        )));
    }
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        let t = t.trim().to_lowercase();
        let ok = !t.is_empty()
            && t.chars().count() <= MAX_TAG_LEN
            && t.chars().all(|c| c.is_alphanumeric() || "-_:.".contains(c));
        if !ok {
            return Err(invalid(format!(
                "tag {t:?} is not 1 to {MAX_TAG_LEN} letters, digits, '-', '_', ':' or '.'"
            )));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn invalid(msg: impl Into<String>) -> GenerationError {
    GenerationError::InvalidRequest(msg.into())
}

impl GenerationService {
    /// The asset, when the actor may change it (its own, or any for admins).
    async fn own_asset_row(&self, actor: Actor, id: Uuid) -> Result<AssetRow, GenerationError> {
        let row = self.visible_asset_row(actor, id).await?;
        if !actor.may_see(row.fields.owner_id) {
            return Err(GenerationError::Forbidden(
                "only its owner or an admin may change this asset",
            ));
        }
        Ok(row)
    }

    /// Changes tags and archived state.
    pub async fn patch_asset(
        &self,
        actor: Actor,
        id: Uuid,
        patch: &AssetPatch,
    ) -> Result<Asset, GenerationError> {
        self.own_asset_row(actor, id).await?;
        let tags = patch.tags.as_deref().map(normalize_tags).transpose()?;
        let owner = match patch.publish {
            None => None,
            Some(false) => {
                return Err(invalid(
                    "publish: only true (a published asset stays published)",
                ));
            }
            Some(true) if !actor.is_admin => {
                return Err(GenerationError::Forbidden(
                    "only admins publish assets to the scenes",
                ));
            }
            Some(true) => Some(domain::user::CONTENT_OWNER.0),
        };
        let row = lib::patch(
            &self.shared.pool,
            id,
            tags.as_deref(),
            patch.archived,
            owner,
        )
        .await?;
        Ok(row.into())
    }

    /// Makes `req.asset_id` the next version of `id`'s family.
    pub async fn add_version(
        &self,
        actor: Actor,
        id: Uuid,
        req: &NewVersion,
    ) -> Result<Asset, GenerationError> {
        if req.asset_id == id {
            return Err(invalid("an asset cannot be a version of itself"));
        }
        if req
            .message
            .as_ref()
            .is_some_and(|m| m.chars().count() > 500)
        {
            return Err(invalid("message: at most 500 characters"));
        }
        let base = self.own_asset_row(actor, id).await?;
        let new = self.own_asset_row(actor, req.asset_id).await?;
        if base.fields.owner_id != new.fields.owner_id {
            return Err(invalid("the versions of a family have one owner"));
        }
        if base.fields.media_type != new.fields.media_type {
            return Err(invalid(format!(
                "a {} cannot be a version of a {}",
                new.fields.media_type, base.fields.media_type
            )));
        }
        let row = lib::add_version(&self.shared.pool, id, req.asset_id, req.message.as_deref())
            .await
            .map_err(|e| match e {
                lib::VersionError::AlreadyVersioned { .. } => {
                    GenerationError::Conflict(e.to_string())
                }
                lib::VersionError::Store(s) => s.into(),
            })?;
        Ok(row.into())
    }

    /// The version family of an asset, by number (just the asset when it has none).
    pub async fn versions(&self, actor: Actor, id: Uuid) -> Result<AssetVersions, GenerationError> {
        let row = self.visible_asset_row(actor, id).await?;
        let Some(family) = row.library.version_family_id else {
            return Ok(AssetVersions {
                family_id: None,
                versions: vec![row.into()],
            });
        };
        let rows = lib::versions(&self.shared.pool, family).await?;
        Ok(AssetVersions {
            family_id: Some(family),
            versions: rows
                .into_iter()
                .filter(|r| actor.may_read_asset(r.fields.owner_id))
                .map(Asset::from)
                .collect(),
        })
    }

    /// Cuts `[start_ms, end_ms)` of a video into a new asset (its own playable file,
    /// re-encoded by the local encoder), recorded as a clip of the video.
    pub async fn create_clip(
        &self,
        actor: Actor,
        source: Uuid,
        req: &NewClipRequest,
    ) -> Result<Clip, GenerationError> {
        let src = self.own_asset_row(actor, source).await?;
        super::assets::require_downloaded(&src)?;
        let duration = video_duration(&src)?;
        if req.start_ms < 0 || req.end_ms <= req.start_ms {
            return Err(invalid("start_ms must be at least 0 and before end_ms"));
        }
        if req.end_ms - req.start_ms < MIN_CLIP_MS {
            return Err(invalid(format!("a clip lasts at least {MIN_CLIP_MS} ms")));
        }
        if req.end_ms > duration {
            return Err(invalid(format!(
                "end_ms {} is after the video's end ({duration} ms)",
                req.end_ms
            )));
        }
        let label = req
            .label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        if label.is_some_and(|l| l.chars().count() > 200) {
            return Err(invalid("label: at most 200 characters"));
        }
        let t = Transcode {
            output: Output::Mp4,
            start_ms: req.start_ms as u64,
            end_ms: Some(req.end_ms as u64),
            max_height: None,
        };
        let new = self
            .derive(&src, &t, "clip", (req.start_ms, req.end_ms), label)
            .await?;
        let clip = lib::clips_by_id(&self.shared.pool, &[new.fields.id])
            .await?
            .into_iter()
            .next()
            .ok_or(GenerationError::NotFound("clip"))?;
        Ok(clip_of(clip, new.into()))
    }

    /// The clips cut from a video, by start.
    pub async fn clips(&self, actor: Actor, source: Uuid) -> Result<Vec<Clip>, GenerationError> {
        self.visible_asset_row(actor, source).await?;
        let clips = lib::clips(&self.shared.pool, source).await?;
        let ids: Vec<Uuid> = clips.iter().map(|c| c.asset_id).collect();
        let assets = store::generation::assets::get_many(&self.shared.pool, &ids).await?;
        Ok(clips
            .into_iter()
            .filter_map(|c| {
                let a = assets.iter().find(|a| a.fields.id == c.asset_id)?.clone();
                actor
                    .may_read_asset(a.fields.owner_id)
                    .then(|| clip_of(c, a.into()))
            })
            .collect())
    }

    /// Takes the frame at `at_ms` of a video as a new image asset (a PNG), joined to the
    /// video by a `keyframe` lineage edge with its time and frame.
    pub async fn create_keyframe(
        &self,
        actor: Actor,
        source: Uuid,
        req: &NewKeyframe,
    ) -> Result<Asset, GenerationError> {
        let src = self.own_asset_row(actor, source).await?;
        super::assets::require_downloaded(&src)?;
        let duration = video_duration(&src)?;
        if req.at_ms < 0 || req.at_ms > duration {
            return Err(invalid(format!(
                "at_ms must be within the video (0 to {duration} ms)"
            )));
        }
        // The last frame starts a little before the end.
        let at = req.at_ms.min((duration - 50).max(0));
        let t = Transcode {
            output: Output::Png,
            start_ms: at as u64,
            end_ms: None,
            max_height: None,
        };
        let new = self
            .derive(&src, &t, "keyframe", (req.at_ms, req.at_ms), None)
            .await?;
        Ok(new.into())
    }

    /// Runs the encoder on `src` and stores the result as a derived asset of the same
    /// owner, with its lineage (`relation`, the range used) and, for a clip, its row.
    async fn derive(
        &self,
        src: &AssetRow,
        t: &Transcode,
        relation: &str,
        range: (i64, i64),
        label: Option<&str>,
    ) -> Result<AssetRow, GenerationError> {
        let bytes = self.encode(src, t).await?;
        let kind = crate::media::sniff(&bytes)
            .ok_or_else(|| GenerationError::InvalidMedia("the encoder made no media".into()))?;
        let p = crate::media::probe(&bytes, &kind);
        let stored = self.shared.media.put(&bytes, kind.ext).await?;
        let thumbnail_path = crate::thumbnail::make(
            &self.shared.media,
            &stored.rel_path,
            kind.media_type,
            p.duration_ms,
        )
        .await;
        let f = &src.fields;
        let frames = f.fps.map(|fps| {
            let frame = |ms: i64| (ms as f64 * fps as f64 / 1000.0).round() as i32;
            (frame(range.0), frame(range.1))
        });
        let asset = NewAsset {
            prompt: f.prompt.clone(),
            fps: p.fps().or(f.fps),
            ..crate::media::file_asset(
                f.owner_id,
                &kind,
                &p,
                stored,
                thumbnail_path,
                AssetOrigin::Derived,
            )
        };
        let row = lib::insert_clip(
            &self.shared.pool,
            &NewClip {
                asset: &asset,
                source_asset_id: f.id,
                start_ms: range.0,
                end_ms: range.1,
                frames,
                label,
                relation,
            },
        )
        .await?;
        self.shared.emit(GenerationEvent::AssetCreated {
            asset: Box::new(row.clone().into()),
        });
        Ok(row)
    }

    /// The encoder's output for `src` (in a temporary file, read back), under the
    /// transcoder's limit of concurrent runs.
    async fn encode(&self, src: &AssetRow, t: &Transcode) -> Result<Vec<u8>, GenerationError> {
        let input = self.shared.media.path(&src.fields.path)?;
        let up = self.shared.media.incoming().await?;
        let out: PathBuf = up.temp_path().to_path_buf();
        let _slot = self
            .shared
            .transcodes
            .slots
            .acquire()
            .await
            .map_err(|_| GenerationError::Unsupported("the encoder is shutting down".into()))?;
        let t = *t;
        let out2 = out.clone();
        tokio::task::spawn_blocking(move || {
            let ff = Ffmpeg::locate()?;
            transcode_file(&ff, &input, &out2, &t)
        })
        .await
        .map_err(|e| GenerationError::Io(std::io::Error::other(e.to_string())))?
        .map_err(|e| GenerationError::InvalidMedia(format!("the local encoder failed: {e}")))?;
        let bytes = tokio::fs::read(&out).await?;
        drop(up);
        Ok(bytes)
    }

    /// The variant presets of an asset, with what is made already.
    pub async fn variants(&self, actor: Actor, id: Uuid) -> Result<Vec<Variant>, GenerationError> {
        let row = self.visible_asset_row(actor, id).await?;
        let made = lib::variants(&self.shared.pool, id).await?;
        Ok(PRESETS
            .iter()
            .filter(|p| preset_output(p, row.fields.media_type).is_some())
            .map(|p| {
                let v = made.iter().find(|v| v.name == p.name);
                Variant {
                    name: p.name.into(),
                    description: p.description.into(),
                    ready: v.is_some(),
                    mime: v.map(|v| v.mime.clone()),
                    width: v.and_then(|v| v.width),
                    height: v.and_then(|v| v.height),
                    size_bytes: v.map(|v| v.size_bytes),
                    url: format!("/api/v1/assets/{id}/variants/{}", p.name),
                }
            })
            .collect())
    }

    /// The file of a variant, made now if it is not cached yet (one encoder run per
    /// variant however many ask at once).
    pub async fn variant_file(
        &self,
        actor: Actor,
        id: Uuid,
        name: &str,
    ) -> Result<AssetFile, GenerationError> {
        let row = self.downloaded_asset_row(actor, id).await?;
        let preset = PRESETS
            .iter()
            .find(|p| p.name == name)
            .ok_or(GenerationError::NotFound("variant"))?;
        let output = preset_output(preset, row.fields.media_type)
            .ok_or(GenerationError::NotFound("variant"))?;
        let lock = self.shared.transcodes.lock_for((id, preset.name));
        let _made = lock.lock().await;
        let cached = lib::variants(&self.shared.pool, id)
            .await?
            .into_iter()
            .find(|v| v.name == preset.name);
        let v = match cached {
            Some(v) if self.shared.media.path(&v.path)?.exists() => v,
            _ => {
                let at = match row.fields.media_type {
                    MediaType::Video => row.fields.duration_ms.map_or(0, |d| (d / 2).min(1000)),
                    _ => 0,
                };
                let t = Transcode {
                    output,
                    start_ms: if output == Output::Png { at as u64 } else { 0 },
                    end_ms: None,
                    max_height: preset.max_height,
                };
                let bytes = self.encode(&row, &t).await?;
                let kind = crate::media::sniff(&bytes).ok_or_else(|| {
                    GenerationError::InvalidMedia("the encoder made no media".into())
                })?;
                let p = crate::media::probe(&bytes, &kind);
                let stored = self.shared.media.put(&bytes, kind.ext).await?;
                lib::put_variant(
                    &self.shared.pool,
                    &VariantRow {
                        asset_id: id,
                        name: preset.name.into(),
                        path: stored.rel_path,
                        mime: kind.mime.into(),
                        size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
                        width: p.width_i32(),
                        height: p.height_i32(),
                        created_at: Utc::now(),
                    },
                )
                .await?
            }
        };
        let path = self.shared.media.path(&v.path)?;
        let size = tokio::fs::metadata(&path).await?.len();
        let mut asset: Asset = row.into();
        // The variant's own content hash is its ETag.
        asset.content_hash = v
            .path
            .rsplit('/')
            .next()
            .and_then(|f| f.split('.').next())
            .unwrap_or_default()
            .to_owned();
        Ok(AssetFile {
            asset,
            path,
            mime: v.mime,
            size,
        })
    }

    /// Records a branch point in a video.
    pub async fn create_branch(
        &self,
        actor: Actor,
        asset_id: Uuid,
        req: &NewBranch,
    ) -> Result<Branch, GenerationError> {
        let src = self.own_asset_row(actor, asset_id).await?;
        let duration = video_duration(&src)?;
        if req.at_ms < 0 || req.at_ms > duration {
            return Err(invalid(format!(
                "at_ms must be within the video (0 to {duration} ms)"
            )));
        }
        if req.label.as_ref().is_some_and(|l| l.chars().count() > 200) {
            return Err(invalid("label: at most 200 characters"));
        }
        if req.variants.is_empty() || req.variants.len() > MAX_BRANCH_VARIANTS {
            return Err(invalid(format!(
                "a branch point has 1 to {MAX_BRANCH_VARIANTS} variants"
            )));
        }
        let mut keys = std::collections::HashSet::new();
        for v in &req.variants {
            let at = format!("variant {:?}", v.key);
            if !domain::narrative::ident::is_ident(&v.key) {
                return Err(invalid(format!(
                    "{at}: a key is letters, digits and '_', not starting with a digit"
                )));
            }
            if !keys.insert(v.key.as_str()) {
                return Err(invalid(format!("{at}: the key is used twice")));
            }
            if !v.weight.is_finite() || v.weight < 0.0 {
                return Err(invalid(format!("{at}: the weight is a number at least 0")));
            }
            if let Some(c) = &v.condition
                && let Err(e) = domain::narrative::expr::parse(c)
            {
                return Err(invalid(format!("{at}: condition {c:?}: {e}")));
            }
            if let Some(next) = v.asset_id {
                let a = self
                    .visible_asset_row(actor, next)
                    .await
                    .map_err(|_| invalid(format!("{at}: asset {next} does not exist")))?;
                if a.fields.media_type != MediaType::Video {
                    return Err(invalid(format!("{at}: asset {next} is not a video")));
                }
            }
        }
        if !req.variants.iter().any(|v| v.weight > 0.0) {
            return Err(invalid("at least one variant has a weight above 0"));
        }
        let variants =
            serde_json::to_value(&req.variants).map_err(|e| invalid(format!("variants: {e}")))?;
        let row = lib::insert_branch(
            &self.shared.pool,
            Uuid::now_v7(),
            asset_id,
            req.at_ms,
            req.label.as_deref(),
            &variants,
        )
        .await?;
        row.try_into()
    }

    /// The branch points of a video, by time.
    pub async fn branches(
        &self,
        actor: Actor,
        asset_id: Uuid,
    ) -> Result<Vec<Branch>, GenerationError> {
        self.visible_asset_row(actor, asset_id).await?;
        lib::branches(&self.shared.pool, asset_id)
            .await?
            .into_iter()
            .map(Branch::try_from)
            .collect()
    }

    /// Deletes a branch point of the asset.
    pub async fn delete_branch(
        &self,
        actor: Actor,
        asset_id: Uuid,
        branch_id: Uuid,
    ) -> Result<(), GenerationError> {
        self.own_asset_row(actor, asset_id).await?;
        let found = lib::branches_by_id(&self.shared.pool, &[branch_id]).await?;
        if !found.iter().any(|b| b.asset_id == asset_id) {
            return Err(GenerationError::NotFound("branch point"));
        }
        lib::delete_branch(&self.shared.pool, branch_id).await?;
        Ok(())
    }

    /// What the library holds of the clips, branch points and assets scenes name (for
    /// the content check): the ones that exist, with their owners.
    pub async fn library_refs(
        &self,
        clips: &[Uuid],
        branches: &[Uuid],
        assets: &[Uuid],
    ) -> Result<LibraryRefs, GenerationError> {
        let pool = &self.shared.pool;
        let clips = lib::clips_by_id(pool, clips).await?;
        let branches = lib::branches_by_id(pool, branches)
            .await?
            .into_iter()
            .map(Branch::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<Uuid> = assets.to_vec();
        ids.extend(clips.iter().map(|c| c.asset_id));
        ids.extend(branches.iter().map(|b| b.asset_id));
        let assets = store::generation::assets::get_many(pool, &ids)
            .await?
            .into_iter()
            .map(|a| (a.fields.id, Asset::from(a)))
            .collect();
        Ok(LibraryRefs {
            clips: clips.into_iter().map(|c| (c.asset_id, c)).collect(),
            branches: branches.into_iter().map(|b| (b.id, b)).collect(),
            assets,
        })
    }
}

/// The library objects scenes name, as [`GenerationService::library_refs`] found them.
#[derive(Debug, Clone, Default)]
pub struct LibraryRefs {
    pub clips: HashMap<Uuid, ClipRow>,
    pub branches: HashMap<Uuid, Branch>,
    pub assets: HashMap<Uuid, Asset>,
}

fn clip_of(c: ClipRow, asset: Asset) -> Clip {
    Clip {
        id: c.asset_id,
        source_asset_id: c.source_asset_id,
        start_ms: c.start_ms,
        end_ms: c.end_ms,
        label: c.label,
        created_at: c.created_at,
        asset,
    }
}

fn preset_output(p: &Preset, media_type: MediaType) -> Option<Output> {
    match media_type {
        MediaType::Video => p.video,
        MediaType::Image => p.image,
        MediaType::Audio => None,
    }
}

/// A video's duration (ms), or why the asset is not one to cut.
fn video_duration(row: &AssetRow) -> Result<i64, GenerationError> {
    if row.fields.media_type != MediaType::Video {
        return Err(invalid(format!(
            "the asset is a {}, not a video",
            row.fields.media_type
        )));
    }
    row.fields
        .duration_ms
        .filter(|d| *d > 0)
        .ok_or_else(|| invalid("the video's duration is unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_lowercased_sorted_and_checked() {
        let t = |v: &[&str]| normalize_tags(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            t(&["Night", "rain", " night "]).ok(),
            Some(vec!["night".into(), "rain".into()])
        );
        assert!(t(&["two words"]).is_err());
        assert!(t(&[""]).is_err());
        assert!(t(&[&"x".repeat(49)]).is_err());
        assert!(t(&vec!["a"; 33]).is_err());
        assert_eq!(
            t(&["season:1", "act-2", "v1.5"]).ok().map(|v| v.len()),
            Some(3)
        );
    }
}
