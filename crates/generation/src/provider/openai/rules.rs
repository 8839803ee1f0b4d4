//! OpenAI's parameter rules.

use super::ID;
use crate::model::{GenerationParams, Operation};
use crate::params::{Issues, one_of, prompt_checks, unsupported};

pub const OPENAI_MODELS: &[&str] = &["sora-2", "sora-2-pro"];
pub const OPENAI_SIZES: &[&str] = &["720x1280", "1280x720", "1024x1792", "1792x1024"];
pub const OPENAI_SECONDS: &[u32] = &[4, 8, 12];

/// OpenAI video (Sora) rules: text_to_video and image_to_video only.
pub fn validate(op: Operation, p: &GenerationParams, issues: &mut Issues) -> GenerationParams {
    if !matches!(op, Operation::TextToVideo | Operation::ImageToVideo) {
        issues.push(
            "operation",
            "unsupported",
            format!("{ID} does not support {op}"),
        );
    }
    prompt_checks(issues, p, true);
    one_of(issues, "model", &p.model, OPENAI_MODELS);
    one_of(issues, "size", &p.size, OPENAI_SIZES);
    if let Some(d) = p.duration
        && !OPENAI_SECONDS.contains(&d)
    {
        issues.push("params.duration", "invalid_value", "4, 8 or 12 seconds");
    }
    for (field, present) in [
        ("negative_prompt", p.negative_prompt.is_some()),
        ("quality", p.quality.is_some()),
        ("aspect_ratio", p.aspect_ratio.is_some()),
        ("seed", p.seed.is_some()),
        ("motion_mode", p.motion_mode.is_some()),
        ("style", p.style.is_some()),
        ("camera_movement", p.camera_movement.is_some()),
        ("template_id", p.template_id.is_some()),
    ] {
        unsupported(issues, field, present, ID, op);
    }
    let mut c = p.clone();
    c.model.get_or_insert_with(|| "sora-2".into());
    c.duration.get_or_insert(4);
    c.size.get_or_insert_with(|| "720x1280".into());
    c
}
