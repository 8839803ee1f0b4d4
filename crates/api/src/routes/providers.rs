//! The generation providers: what each runs (operations with their parameter limits),
//! how its credits are estimated, whether it can cancel, and its status for the caller
//! (`available`, `retired`, `unconfigured`). Reachability is in `/health`. And the
//! providers' own webhooks, signed, that make a running job's next poll happen at once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use generation::provider::ProviderDescription;
use generation::service::ProviderWebhook;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::routes::generations::actor;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(webhook))
}

/// A provider's webhook about one of its predictions (Replicate: set
/// `generation.providers.replicate.webhook_url` to this route's public URL). No bearer
/// token: the body must carry the provider's Standard Webhooks signature
/// (`webhook-id`, `webhook-timestamp` within five minutes, `webhook-signature`) made
/// with the signing key of one of the provider's accounts. The worker following that
/// prediction then polls it at once; the poll, not this body, decides what happened.
#[utoipa::path(post, path = "/api/v1/providers/{id}/webhook", tag = "providers",
    operation_id = "provider_webhook",
    params(("id" = String, Path, description = "provider id, e.g. `replicate`")),
    request_body(content = String, content_type = "application/json",
        description = "the provider's event (Replicate: the prediction)"),
    responses(
        (status = 204, description = "verified; the prediction is polled now"),
        (status = 401, description = "`unauthorized`: missing headers, a signature that does not verify, or a stale timestamp", body = ErrorBody),
        (status = 404, description = "no such provider", body = ErrorBody),
        (status = 422, description = "the body is not a JSON object, or names no prediction", body = ErrorBody)))]
async fn webhook(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    // The shape first: a provider's event is a JSON object.
    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).is_err() {
        return Err(generation::GenerationError::invalid(
            "body",
            "invalid_json",
            "a provider's webhook body is a JSON object",
        )
        .into());
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                generation::GenerationError::WebhookRefused(format!("missing {name} header"))
            })
    };
    let hook = ProviderWebhook {
        msg_id: header("webhook-id")?,
        timestamp: header("webhook-timestamp")?,
        signature: header("webhook-signature")?,
        body: &body,
    };
    s.generation.provider_webhook(&id, hook).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every provider, sorted by id: its operations with their parameter limits (allowed
/// models, durations, qualities, aspect ratios, sizes, other parameters, defaults), its
/// credit-estimate rule, whether it can cancel a running job, and its status for the
/// caller: `retired` (with `retired_on`; new jobs are refused unless `accepts_jobs`),
/// `unconfigured` (it needs a provider account and none can run the caller's jobs) or
/// `available`.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<ProviderDescription>),
        (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<ApiJson<Vec<ProviderDescription>>> {
    Ok(ApiJson(s.generation.list_providers(actor(&p)).await?))
}
