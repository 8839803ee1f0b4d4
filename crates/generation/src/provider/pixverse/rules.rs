//! Pixverse's parameter rules.

use super::ID;
use crate::model::{GenerationParams, InputRef, Operation};
use crate::params::{
    ASPECT_RATIOS, Issues, MOTION_MODES, QUALITIES, fusion_prompt_refs, one_of, prompt_checks,
    seed_checks, unsupported,
};

pub const PIXVERSE_MODELS: &[&str] = &["v3.5", "v4", "v4.5", "v5"];

/// Pixverse platform API rules (see the provider contract).
pub fn validate(
    op: Operation,
    p: &GenerationParams,
    inputs: &[InputRef],
    issues: &mut Issues,
) -> GenerationParams {
    prompt_checks(issues, p, true);
    seed_checks(issues, p);
    one_of(issues, "model", &p.model, PIXVERSE_MODELS);
    one_of(issues, "quality", &p.quality, QUALITIES);
    one_of(issues, "motion_mode", &p.motion_mode, MOTION_MODES);
    one_of(issues, "aspect_ratio", &p.aspect_ratio, ASPECT_RATIOS);
    unsupported(issues, "size", p.size.is_some(), ID, op);
    let takes_aspect = matches!(op, Operation::TextToVideo | Operation::Fusion);
    unsupported(
        issues,
        "aspect_ratio",
        !takes_aspect && p.aspect_ratio.is_some(),
        ID,
        op,
    );
    let mut c = p.clone();
    let model = c.model.get_or_insert_with(|| "v5".into()).clone();
    let quality = c.quality.get_or_insert_with(|| "540p".into()).clone();
    let duration = *c.duration.get_or_insert(5);
    if takes_aspect {
        c.aspect_ratio.get_or_insert_with(|| "16:9".into());
    }
    if ![5, 8].contains(&duration) {
        issues.push("params.duration", "invalid_value", "5 or 8 seconds");
    } else if quality == "1080p" && duration != 5 {
        issues.push(
            "params.duration",
            "invalid_value",
            "1080p allows 5 seconds only",
        );
    }
    if c.motion_mode.as_deref() == Some("fast") && (duration != 5 || quality == "1080p") {
        issues.push(
            "params.motion_mode",
            "invalid_value",
            "fast motion needs 5 seconds and a quality below 1080p",
        );
    }
    if c.style.is_some() && model != "v3.5" && op != Operation::VideoExtend {
        issues.push(
            "params.style",
            "unsupported",
            "style applies to model v3.5 only",
        );
    }
    if op == Operation::Fusion {
        if !["v4.5", "v5"].contains(&model.as_str()) {
            issues.push(
                "params.model",
                "invalid_value",
                "fusion needs model v4.5 or later",
            );
        }
        fusion_prompt_refs(issues, p, inputs);
    }
    if matches!(op, Operation::VideoTransition | Operation::VideoExtend) {
        unsupported(
            issues,
            "negative_prompt",
            p.negative_prompt.is_some(),
            ID,
            op,
        );
        unsupported(issues, "template_id", p.template_id.is_some(), ID, op);
        unsupported(
            issues,
            "camera_movement",
            p.camera_movement.is_some(),
            ID,
            op,
        );
    }
    c
}
