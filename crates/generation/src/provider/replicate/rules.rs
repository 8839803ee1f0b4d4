//! Replicate's parameter rules: those of the Wan 2.5 video models the adapter speaks
//! to (see `docs/providers.md`).

use super::ID;
use super::config::ReplicateConfig;
use crate::model::{GenerationParams, Operation};
use crate::params::{Issues, one_of, prompt_checks, seed_checks, unsupported};

/// Seconds a video may last.
pub const REPLICATE_DURATIONS: &[u32] = &[5, 10];
/// Output qualities.
pub const REPLICATE_QUALITIES: &[&str] = &["480p", "720p", "1080p"];
/// Aspect ratios of `text_to_video` (`image_to_video` keeps the image's).
pub const REPLICATE_ASPECTS: &[&str] = &["16:9", "9:16"];
/// Most characters of a negative prompt.
pub const MAX_NEGATIVE_PROMPT_CHARS: usize = 500;

/// The Wan 2.5 `size` input (`width*height`) of a quality and an aspect ratio.
pub fn size_for(quality: &str, aspect: &str) -> &'static str {
    match (quality, aspect == "9:16") {
        ("480p", false) => "832*480",
        ("480p", true) => "480*832",
        ("1080p", false) => "1920*1080",
        ("1080p", true) => "1080*1920",
        (_, false) => "1280*720",
        (_, true) => "720*1280",
    }
}

/// Replicate rules: `text_to_video` and `image_to_video`, on the configured models.
pub fn validate(
    cfg: &ReplicateConfig,
    op: Operation,
    p: &GenerationParams,
    issues: &mut Issues,
) -> GenerationParams {
    let Some(model) = cfg.model_for(op) else {
        issues.push(
            "operation",
            "unsupported",
            format!("{ID} does not support {op}"),
        );
        return p.clone();
    };
    prompt_checks(issues, p, true);
    seed_checks(issues, p);
    one_of(issues, "model", &p.model, &[model]);
    one_of(issues, "quality", &p.quality, REPLICATE_QUALITIES);
    if let Some(d) = p.duration
        && !REPLICATE_DURATIONS.contains(&d)
    {
        issues.push("params.duration", "invalid_value", "5 or 10 seconds");
    }
    if let Some(n) = &p.negative_prompt
        && n.chars().count() > MAX_NEGATIVE_PROMPT_CHARS
    {
        issues.push(
            "params.negative_prompt",
            "too_long",
            format!("at most {MAX_NEGATIVE_PROMPT_CHARS} characters"),
        );
    }
    let text = op == Operation::TextToVideo;
    if text {
        one_of(issues, "aspect_ratio", &p.aspect_ratio, REPLICATE_ASPECTS);
    } else {
        unsupported(issues, "aspect_ratio", p.aspect_ratio.is_some(), ID, op);
    }
    for (field, present) in [
        ("size", p.size.is_some()),
        ("motion_mode", p.motion_mode.is_some()),
        ("style", p.style.is_some()),
        ("camera_movement", p.camera_movement.is_some()),
        ("template_id", p.template_id.is_some()),
    ] {
        unsupported(issues, field, present, ID, op);
    }
    let mut c = p.clone();
    c.model.get_or_insert_with(|| model.to_owned());
    c.duration.get_or_insert(5);
    c.quality.get_or_insert_with(|| "720p".into());
    if text {
        c.aspect_ratio.get_or_insert_with(|| "16:9".into());
    }
    c
}
