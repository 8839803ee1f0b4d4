//! Parameter validation per provider × operation, canonical form and hashing.
//!
//! Create and validate run the same code ([`crate::GenerationService::validate`]), so
//! they give the same answers.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::{GenerationParams, InputRef, InputRole, MediaType, Operation, ParamIssue};

/// What validation knows about an input asset.
#[derive(Debug, Clone)]
pub struct InputInfo {
    pub asset_id: Uuid,
    pub media_type: MediaType,
    pub content_hash: String,
}

/// Collects issues.
#[derive(Debug, Default)]
pub struct Issues(pub Vec<ParamIssue>);

impl Issues {
    pub fn push(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(ParamIssue {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub const ASPECT_RATIOS: &[&str] = &["16:9", "4:3", "1:1", "3:4", "9:16"];
pub const QUALITIES: &[&str] = &["360p", "540p", "720p", "1080p"];
pub const MOTION_MODES: &[&str] = &["normal", "fast"];
pub const PIXVERSE_MODELS: &[&str] = &["v3.5", "v4", "v4.5", "v5"];
pub const OPENAI_MODELS: &[&str] = &["sora-2", "sora-2-pro"];
pub const OPENAI_SIZES: &[&str] = &["720x1280", "1280x720", "1024x1792", "1792x1024"];
pub const OPENAI_SECONDS: &[u32] = &[4, 8, 12];
pub const MAX_PROMPT_CHARS: usize = 2048;
pub const MAX_SEED: i64 = 2_147_483_647;

fn one_of(issues: &mut Issues, field: &str, value: &Option<String>, allowed: &[&str]) {
    if let Some(v) = value
        && !allowed.contains(&v.as_str())
    {
        issues.push(
            format!("params.{field}"),
            "invalid_value",
            format!("{v:?} is not one of {}", allowed.join(", ")),
        );
    }
}

fn unsupported(issues: &mut Issues, field: &str, present: bool, provider: &str, op: Operation) {
    if present {
        issues.push(
            format!("params.{field}"),
            "unsupported",
            format!("{provider} does not take {field} for {op}"),
        );
    }
}

fn prompt_checks(issues: &mut Issues, p: &GenerationParams, required: bool) {
    match &p.prompt {
        None => {
            if required {
                issues.push("params.prompt", "required", "a prompt is required");
            }
        }
        Some(s) if s.trim().is_empty() && required => {
            issues.push("params.prompt", "required", "the prompt is empty");
        }
        Some(s) if s.chars().count() > MAX_PROMPT_CHARS => issues.push(
            "params.prompt",
            "too_long",
            format!("at most {MAX_PROMPT_CHARS} characters"),
        ),
        Some(_) => {}
    }
    if let Some(s) = &p.negative_prompt
        && s.chars().count() > MAX_PROMPT_CHARS
    {
        issues.push(
            "params.negative_prompt",
            "too_long",
            format!("at most {MAX_PROMPT_CHARS} characters"),
        );
    }
}

fn seed_checks(issues: &mut Issues, p: &GenerationParams) {
    if let Some(s) = p.seed
        && !(0..=MAX_SEED).contains(&s)
    {
        issues.push(
            "params.seed",
            "out_of_range",
            format!("the seed must be within 0..={MAX_SEED}"),
        );
    }
}

/// The default role of the inputs of an operation.
pub fn default_role(op: Operation) -> Option<InputRole> {
    match op {
        Operation::TextToVideo => None,
        Operation::ImageToVideo => Some(InputRole::SourceImage),
        Operation::VideoExtend => Some(InputRole::SourceVideo),
        Operation::VideoTransition => Some(InputRole::TransitionInput),
        Operation::Fusion => Some(InputRole::Subject),
    }
}

/// How many inputs of which media type an operation takes: (min, max, media type).
pub fn input_shape(op: Operation) -> (usize, usize, Option<MediaType>) {
    match op {
        Operation::TextToVideo => (0, 0, None),
        Operation::ImageToVideo => (1, 1, Some(MediaType::Image)),
        Operation::VideoExtend => (1, 1, Some(MediaType::Video)),
        Operation::VideoTransition => (2, 7, Some(MediaType::Image)),
        Operation::Fusion => (1, 3, Some(MediaType::Image)),
    }
}

/// Checks the inputs' count, media types and roles; fills default roles.
pub fn check_inputs(
    issues: &mut Issues,
    op: Operation,
    inputs: &[InputRef],
    info: &[Option<InputInfo>],
    max: Option<usize>,
) -> Vec<InputRef> {
    let (min, op_max, media) = input_shape(op);
    let max = max.unwrap_or(op_max).min(op_max);
    if inputs.len() < min || inputs.len() > max {
        let want = if min == max {
            format!("exactly {min}")
        } else {
            format!("{min} to {max}")
        };
        issues.push(
            "inputs",
            "invalid_count",
            format!("{op} takes {want} input asset(s), got {}", inputs.len()),
        );
    }
    let mut out = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        match info.get(i).and_then(|x| x.as_ref()) {
            None => issues.push(
                format!("inputs[{i}].asset_id"),
                "not_found",
                format!("asset {} not found", input.asset_id),
            ),
            Some(inf) => {
                if let Some(m) = media
                    && inf.media_type != m
                {
                    issues.push(
                        format!("inputs[{i}].asset_id"),
                        "invalid_media_type",
                        format!("{op} takes {m} inputs, this asset is {}", inf.media_type),
                    );
                }
            }
        }
        let role = input.role.or(default_role(op));
        let allowed: &[InputRole] = match op {
            Operation::TextToVideo => &[],
            Operation::ImageToVideo => &[InputRole::SourceImage],
            Operation::VideoExtend => &[InputRole::SourceVideo],
            Operation::VideoTransition => &[InputRole::TransitionInput],
            Operation::Fusion => &[InputRole::Subject, InputRole::Background],
        };
        if let Some(r) = role
            && !allowed.contains(&r)
        {
            issues.push(
                format!("inputs[{i}].role"),
                "invalid_value",
                format!("{r} is not a role of {op} inputs"),
            );
        }
        if op == Operation::Fusion {
            match &input.ref_name {
                None => issues.push(
                    format!("inputs[{i}].ref_name"),
                    "required",
                    "fusion references need a ref_name",
                ),
                Some(n)
                    if n.is_empty()
                        || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    issues.push(
                        format!("inputs[{i}].ref_name"),
                        "invalid_value",
                        "ref_name must be letters, digits or _",
                    )
                }
                Some(_) => {}
            }
        } else if input.ref_name.is_some() {
            issues.push(
                format!("inputs[{i}].ref_name"),
                "unsupported",
                "ref_name applies to fusion only",
            );
        }
        out.push(InputRef {
            asset_id: input.asset_id,
            role,
            ref_name: input.ref_name.clone(),
        });
    }
    out
}

/// Fusion prompts name each reference as `@ref_name` followed by a space (or at the end).
fn fusion_prompt_refs(issues: &mut Issues, p: &GenerationParams, inputs: &[InputRef]) {
    let Some(prompt) = &p.prompt else { return };
    for (i, input) in inputs.iter().enumerate() {
        if let Some(name) = &input.ref_name {
            let tag = format!("@{name}");
            if !(prompt.contains(&format!("{tag} ")) || prompt.ends_with(&tag)) {
                issues.push(
                    format!("inputs[{i}].ref_name"),
                    "not_in_prompt",
                    format!("the prompt must name this reference as \"{tag} \""),
                );
            }
        }
    }
}

/// The embedded `local` provider: every operation, small deterministic renders.
pub fn validate_local(
    op: Operation,
    p: &GenerationParams,
    issues: &mut Issues,
) -> GenerationParams {
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
    unsupported(issues, "size", p.size.is_some(), "local", op);
    unsupported(issues, "template_id", p.template_id.is_some(), "local", op);
    let mut c = p.clone();
    c.model.get_or_insert_with(|| "local-v1".into());
    c.duration.get_or_insert(2);
    c.quality.get_or_insert_with(|| "360p".into());
    c.aspect_ratio.get_or_insert_with(|| "16:9".into());
    c.motion_mode.get_or_insert_with(|| "normal".into());
    c
}

/// Pixverse platform API rules (see the provider contract).
pub fn validate_pixverse(
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
    unsupported(issues, "size", p.size.is_some(), "pixverse", op);
    let takes_aspect = matches!(op, Operation::TextToVideo | Operation::Fusion);
    unsupported(
        issues,
        "aspect_ratio",
        !takes_aspect && p.aspect_ratio.is_some(),
        "pixverse",
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
            "pixverse",
            op,
        );
        unsupported(
            issues,
            "template_id",
            p.template_id.is_some(),
            "pixverse",
            op,
        );
        unsupported(
            issues,
            "camera_movement",
            p.camera_movement.is_some(),
            "pixverse",
            op,
        );
    }
    c
}

/// OpenAI video (Sora) rules: text_to_video and image_to_video only.
pub fn validate_openai(
    op: Operation,
    p: &GenerationParams,
    issues: &mut Issues,
) -> GenerationParams {
    if !matches!(op, Operation::TextToVideo | Operation::ImageToVideo) {
        issues.push(
            "operation",
            "unsupported",
            format!("openai does not support {op}"),
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
        unsupported(issues, field, present, "openai", op);
    }
    let mut c = p.clone();
    c.model.get_or_insert_with(|| "sora-2".into());
    c.duration.get_or_insert(4);
    c.size.get_or_insert_with(|| "720x1280".into());
    c
}

/// Writes a JSON value with object keys sorted, recursively (a canonical form that does
/// not depend on serde_json's map ordering).
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    canonical_json(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// sha256 over the canonical form of (provider, operation, canonical parameters, inputs
/// by content hash and role). The same request with the same input content hashes alike.
pub fn params_hash(
    provider: &str,
    op: Operation,
    params: &GenerationParams,
    inputs: &[InputRef],
    info: &[Option<InputInfo>],
) -> String {
    let inputs_v: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            serde_json::json!({
                "content": info.get(i).and_then(|x| x.as_ref()).map(|x| x.content_hash.clone()),
                "role": r.role.map(|x| x.as_str()),
                "ref_name": r.ref_name,
            })
        })
        .collect();
    let v = serde_json::json!({
        "v": 1,
        "provider": provider,
        "operation": op.as_str(),
        "params": serde_json::to_value(params).unwrap_or(Value::Null),
        "inputs": inputs_v,
    });
    let mut s = String::new();
    canonical_json(&v, &mut s);
    hex::encode(Sha256::digest(s.as_bytes()))
}
