//! The embedded, offline `local` provider (the default): renders H.264/MP4 at the
//! requested size and duration ([`LOCAL_FPS`]) with a PNG poster, from the prompt,
//! parameters and input assets, deterministic per seed (see [`crate::render`]).
//! Synchronous: submit returns the result, no polling; while it renders, it reports
//! the frames drawn as the request's progress.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::describe::{CreditRule, OperationLimits, ProviderDescription, ProviderStatus, strings};
use super::settings::{ProviderConfigError, parse};
use super::{
    BoxFuture, BuildContext, Credentials, MediaResult, PollResult, Provider, ProviderError,
    RemoteStatus, SubmitRequest, Submitted,
};
use crate::model::{GenerationParams, InputRef, Operation};
use crate::params::{
    ASPECT_RATIOS, Issues, MOTION_MODES, QUALITIES, one_of, prompt_checks, seed_checks, unsupported,
};
use crate::render::{
    DEFAULT_CRF, Ffmpeg, RenderInput, RenderSpec, output_size, render_with_progress,
};

/// The registry id.
pub const ID: &str = "local";

/// The `local` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Credits a second of rendered video costs (default 0: free). Rendering is the
    /// server's own CPU time; an operator who meters it sets a price, and credit
    /// budgets then count local jobs too.
    pub credits_per_second: i64,
}

/// Builds the provider from its entry (see [`super::registry::BUILT_IN`]).
pub fn build(
    entry: Option<&Value>,
    _ctx: BuildContext<'_>,
) -> Result<Arc<dyn Provider>, ProviderConfigError> {
    let LocalConfig { credits_per_second } = parse(ID, entry)?;
    if credits_per_second < 0 {
        return Err(ProviderConfigError::Invalid {
            provider: ID.into(),
            key: "credits_per_second".into(),
            message: "at least 0".into(),
        });
    }
    Ok(Arc::new(LocalProvider { credits_per_second }))
}

/// The embedded `local` provider: every operation, small deterministic renders.
pub fn validate(op: Operation, p: &GenerationParams, issues: &mut Issues) -> GenerationParams {
    prompt_checks(
        issues,
        p,
        matches!(op, Operation::TextToVideo | Operation::Fusion),
    );
    seed_checks(issues, p);
    one_of(issues, "aspect_ratio", &p.aspect_ratio, ASPECT_RATIOS);
    one_of(issues, "quality", &p.quality, QUALITIES);
    one_of(issues, "motion_mode", &p.motion_mode, MOTION_MODES);
    one_of(issues, "model", &p.model, &["local-v1"]);
    if let Some(d) = p.duration
        && !(1..=10).contains(&d)
    {
        issues.push("params.duration", "out_of_range", "1 to 10 seconds");
    }
    unsupported(issues, "size", p.size.is_some(), ID, op);
    unsupported(issues, "template_id", p.template_id.is_some(), ID, op);
    let mut c = p.clone();
    c.model.get_or_insert_with(|| "local-v1".into());
    c.duration.get_or_insert(2);
    c.quality.get_or_insert_with(|| "360p".into());
    c.aspect_ratio.get_or_insert_with(|| "16:9".into());
    c.motion_mode.get_or_insert_with(|| "normal".into());
    c
}

/// Frames per second of local renders.
pub const LOCAL_FPS: u32 = 24;

/// The local provider.
#[derive(Debug, Clone, Default)]
pub struct LocalProvider {
    /// See [`LocalConfig::credits_per_second`].
    pub credits_per_second: i64,
}

impl LocalProvider {
    /// Renders synchronously (CPU-bound: call from a blocking thread).
    pub fn render_request(req: &SubmitRequest) -> Result<MediaResult, ProviderError> {
        let p = &req.params;
        let prompt = p.prompt.clone().unwrap_or_default();
        let seed = match p.seed {
            Some(s) => s as u64,
            None => {
                let d = Sha256::digest(prompt.as_bytes());
                let mut b = [0u8; 8];
                b.copy_from_slice(&d[..8]);
                u64::from_le_bytes(b)
            }
        };
        let (width, height) = output_size(
            p.quality.as_deref().unwrap_or("360p"),
            p.aspect_ratio.as_deref().unwrap_or("16:9"),
        );
        let duration = p.duration.unwrap_or(2).clamp(1, 10);
        let inputs = req
            .inputs
            .iter()
            .map(|i| RenderInput {
                role: i.role,
                bytes: i.bytes.clone(),
            })
            .collect();
        let spec = RenderSpec {
            operation: req.operation,
            prompt,
            seed,
            width,
            height,
            fps: LOCAL_FPS,
            frames: duration * LOCAL_FPS,
            fast: p.motion_mode.as_deref() == Some("fast"),
            crf: DEFAULT_CRF,
            inputs,
        };
        // Finding ffmpeg may fetch it (first use): a failure there may pass.
        let ff = Ffmpeg::locate().map_err(|e| ProviderError::Transient {
            code: Some("ffmpeg_unavailable".into()),
            message: e.to_string(),
            retry_after: None,
        })?;
        let frames = spec.frames;
        let out = render_with_progress(&ff, &spec, |done| {
            req.progress.report(done as f32 / frames as f32)
        })
        .map_err(|e| ProviderError::InvalidRequest {
            code: Some("render_failed".into()),
            message: e.to_string(),
        })?;
        Ok(MediaResult {
            bytes: out.mp4,
            thumbnail: Some(out.poster_png),
            remote_url: None,
        })
    }
}

impl Provider for LocalProvider {
    fn id(&self) -> &str {
        ID
    }

    fn estimated_credits(&self, _op: Operation, params: &GenerationParams) -> i64 {
        self.credits_per_second
            .saturating_mul(i64::from(params.duration.unwrap_or(2)))
    }

    fn describe(&self) -> ProviderDescription {
        let operations = Operation::ALL
            .iter()
            .map(|&op| {
                let mut l = OperationLimits::new(
                    op,
                    matches!(op, Operation::TextToVideo | Operation::Fusion),
                )
                .default_value("model", "local-v1")
                .default_value("duration", 2)
                .default_value("quality", "360p")
                .default_value("aspect_ratio", "16:9")
                .default_value("motion_mode", "normal");
                l.max_inputs = Some(crate::params::input_shape(op).1);
                l.models = strings(&["local-v1"]);
                l.durations = (1..=10).collect();
                l.qualities = strings(QUALITIES);
                l.aspect_ratios = strings(ASPECT_RATIOS);
                l.other_params = strings(&["seed", "negative_prompt", "motion_mode"]);
                l
            })
            .collect();
        ProviderDescription {
            id: ID.into(),
            title: "Embedded offline renderer (H.264/MP4 with ffmpeg)".into(),
            status: ProviderStatus::Available,
            retired_on: None,
            accepts_jobs: true,
            requires_account: false,
            can_cancel: false,
            operations,
            credits: if self.credits_per_second > 0 {
                CreditRule::Table {
                    by: "model".into(),
                    per: super::describe::CreditUnit::Second,
                    prices: [("local-v1".to_owned(), self.credits_per_second)].into(),
                    multipliers: Vec::new(),
                }
            } else {
                CreditRule::Free
            },
        }
    }

    /// Reachable when ffmpeg is found (fetched on first use; a fetch that takes longer
    /// than the probe's timeout reports it as not yet there).
    fn probe(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async {
            let found = tokio::task::spawn_blocking(Ffmpeg::locate);
            match tokio::time::timeout(super::PROBE_TIMEOUT, found).await {
                Ok(Ok(Ok(_))) => Ok(()),
                Ok(Ok(Err(_))) => Err("ffmpeg is not available".into()),
                Ok(Err(_)) => Err("the ffmpeg check failed".into()),
                Err(_) => Err("ffmpeg is still being fetched".into()),
            }
        })
    }

    fn is_synchronous(&self) -> bool {
        true
    }

    fn requires_account(&self) -> bool {
        false
    }

    fn validate(
        &self,
        op: Operation,
        params: &GenerationParams,
        _inputs: &[InputRef],
        issues: &mut Issues,
    ) -> GenerationParams {
        validate(op, params, issues)
    }

    fn submit<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        req: &'a SubmitRequest,
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        Box::pin(async move {
            let owned = req.clone();
            let result = tokio::task::spawn_blocking(move || Self::render_request(&owned))
                .await
                .map_err(|e| ProviderError::Transient {
                    code: None,
                    message: format!("render task: {e}"),
                    retry_after: None,
                })??;
            Ok(Submitted {
                remote_id: format!("local-{}-{}", req.job_id.simple(), req.attempt),
                immediate: Some(result),
            })
        })
    }

    fn poll<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        _remote_id: &'a str,
    ) -> BoxFuture<'a, Result<PollResult, ProviderError>> {
        // Results come back from submit; a poll (after a crash) reports nothing to
        // adopt so the new attempt renders again.
        Box::pin(async move {
            Ok(PollResult {
                status: RemoteStatus::Deleted,
                progress: None,
                result_url: None,
                next_poll: None,
                error_code: None,
                error_message: None,
            })
        })
    }
}
