//! Parameter rules every provider shares (prompt, seed, inputs per operation, the
//! checks providers build their own rules from), canonical form and hashing. Each
//! provider's own rules live in its module (`provider::<id>::validate`).
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
pub const MAX_PROMPT_CHARS: usize = 2048;
pub const MAX_SEED: i64 = 2_147_483_647;

pub(crate) fn one_of(issues: &mut Issues, field: &str, value: &Option<String>, allowed: &[&str]) {
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

pub(crate) fn unsupported(
    issues: &mut Issues,
    field: &str,
    present: bool,
    provider: &str,
    op: Operation,
) {
    if present {
        issues.push(
            format!("params.{field}"),
            "unsupported",
            format!("{provider} does not take {field} for {op}"),
        );
    }
}

pub(crate) fn prompt_checks(issues: &mut Issues, p: &GenerationParams, required: bool) {
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

pub(crate) fn seed_checks(issues: &mut Issues, p: &GenerationParams) {
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
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            check_input(
                issues,
                op,
                media,
                i,
                input,
                info.get(i).and_then(|x| x.as_ref()),
            )
        })
        .collect()
}

/// Checks one input (the `i`th): that its asset exists and has the operation's media
/// type, its role and its ref_name; returns it with its default role filled in.
fn check_input(
    issues: &mut Issues,
    op: Operation,
    media: Option<MediaType>,
    i: usize,
    input: &InputRef,
    info: Option<&InputInfo>,
) -> InputRef {
    match info {
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
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
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
    InputRef {
        asset_id: input.asset_id,
        role,
        ref_name: input.ref_name.clone(),
    }
}

/// Fusion prompts name each reference as `@ref_name` followed by a space (or at the end).
pub(crate) fn fusion_prompt_refs(issues: &mut Issues, p: &GenerationParams, inputs: &[InputRef]) {
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
