//! Scene generation specs: the create request a spec stands for, and the check of a
//! spec at content load (no database).

use crate::error::GenerationError;
use crate::model::{CreateGeneration, GenerationParams, InputRef, Operation, ParamIssue};
use crate::params::Issues;
use crate::provider::ProviderRegistry;

fn spec_issue(field: &str, e: impl std::fmt::Display) -> GenerationError {
    GenerationError::invalid(field, "invalid_value", e.to_string())
}

/// The create request a scene node's generation spec stands for: `params` are the
/// provider parameters, except `provider`, `priority`, `idempotency_key` and `inputs`,
/// which are taken out into the request's own fields; the prompt joins the parameters.
pub fn spec_request(
    spec: &domain::narrative::scene::GenerationSpec,
) -> Result<CreateGeneration, GenerationError> {
    let mut params = spec.params.clone();
    let provider = params
        .remove("provider")
        .and_then(|v| v.as_str().map(str::to_owned));
    let priority = params
        .remove("priority")
        .and_then(|v| v.as_i64())
        .map(|p| p as i16);
    let idempotency_key = params
        .remove("idempotency_key")
        .and_then(|v| v.as_str().map(str::to_owned));
    let inputs: Vec<InputRef> = match params.remove("inputs") {
        Some(v) => serde_json::from_value(v).map_err(|e| spec_issue("inputs", e))?,
        None => Vec::new(),
    };
    params.insert(
        "prompt".into(),
        serde_json::Value::String(spec.prompt.clone()),
    );
    let params: GenerationParams =
        serde_json::from_value(serde_json::Value::Object(params.into_iter().collect()))
            .map_err(|e| spec_issue("params", e))?;
    let operation = spec
        .operation
        .parse::<Operation>()
        .map_err(|e| spec_issue("operation", e))?;
    Ok(CreateGeneration {
        provider,
        operation: Some(operation),
        params,
        inputs,
        priority,
        idempotency_key,
        ..Default::default()
    })
}

/// Checks a scene node's generation spec without a database: its shape
/// ([`spec_request`]), that the provider (named, else `default_provider`) exists and that
/// its parameter rules hold. Input assets are checked only when the job is created.
/// Returns the problems as `field: message` lines (empty: fine).
pub fn check_spec(
    providers: &ProviderRegistry,
    default_provider: &str,
    spec: &domain::narrative::scene::GenerationSpec,
) -> Vec<String> {
    let req = match spec_request(spec) {
        Ok(r) => r,
        Err(GenerationError::InvalidParameters(issues)) => {
            return issues.iter().map(ParamIssue::to_string).collect();
        }
        Err(e) => return vec![e.to_string()],
    };
    let id = req.provider.as_deref().unwrap_or(default_provider);
    let Some(provider) = providers.get(id) else {
        return vec![format!(
            "provider: unknown provider {id:?}; known: {}",
            providers.ids().join(", ")
        )];
    };
    let Some(op) = req.operation else {
        return vec!["operation: an operation is required".into()];
    };
    let mut issues = Issues::default();
    super::jobs::retired_check(&mut issues, provider.as_ref());
    provider.validate(op, &req.params, &req.inputs, &mut issues);
    issues.0.iter().map(ParamIssue::to_string).collect()
}
