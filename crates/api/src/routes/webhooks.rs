//! Webhooks: endpoints a user registers to receive their job and asset events as signed
//! POSTs (Standard Webhooks), with a delivery log and redelivery. Each endpoint is its
//! owner's alone.

use axum::extract::State;
use axum::http::StatusCode;
use generation::model::{DeliveryStatus, Page};
use generation::webhooks::{DeliveryFilter, NewWebhook, Webhook, WebhookCreated, WebhookDelivery};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::routes::generations::actor;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, remove))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

/// Registers an endpoint. Every event of the caller's jobs and assets whose type it
/// names is POSTed to `url` with the headers `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`, keyed
/// by the secret's bytes after `whsec_`), retried with backoff for about a day until
/// the receiver answers 2xx. Events of one job arrive one at a time, in order. The
/// answer carries the secret; it is never shown again.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookCreated),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "the caller has the most endpoints allowed (`[webhooks] max_per_user`)", body = ErrorBody),
        (status = 422, description = "invalid or refused URL, unknown event types", body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(new): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, ApiJson<WebhookCreated>)> {
    let created = s.generation.create_webhook(actor(&p), new).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// The caller's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Webhook>),
        (status = 401, body = ErrorBody)))]
async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<ApiJson<Vec<Webhook>>> {
    Ok(ApiJson(s.generation.list_webhooks(actor(&p)).await?))
}

/// One endpoint of the caller.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "webhook id")),
    responses(
        (status = 200, body = Webhook),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such endpoint of yours", body = ErrorBody)))]
async fn show(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Webhook>> {
    Ok(ApiJson(s.generation.get_webhook(actor(&p), id).await?))
}

/// Deletes an endpoint, its undelivered messages and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "webhook id")),
    responses(
        (status = 204),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such endpoint of yours", body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    s.generation.delete_webhook(actor(&p), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Filter of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this status: `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u32>,
    /// Page size: default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The delivery log of an endpoint, newest first: each message (one event), its
/// status, the body sent and its attempts.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "webhook id"), DeliveryQuery),
    responses(
        (status = 200, body = Page<WebhookDelivery>),
        (status = 400, description = "malformed id or query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such endpoint of yours", body = ErrorBody)))]
async fn deliveries(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<ApiJson<Page<WebhookDelivery>>> {
    let status = q
        .status
        .as_deref()
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<DeliveryStatus>()
                .map_err(|e| ApiError::BadRequest {
                    code: "invalid_query",
                    message: format!("status: {e}"),
                })
        })
        .transpose()?;
    let filter = DeliveryFilter {
        status,
        offset: q.offset.unwrap_or(0),
        limit: q.limit,
    };
    Ok(ApiJson(
        s.generation
            .webhook_deliveries(actor(&p), id, filter)
            .await?,
    ))
}

/// Sends a delivered or failed message again, now, with a fresh retry schedule and the
/// same `webhook-id`.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "webhook id"),
        ("delivery_id" = Uuid, Path, description = "delivery id")),
    responses(
        (status = 202, body = WebhookDelivery),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such endpoint of yours or delivery", body = ErrorBody),
        (status = 409, description = "the delivery is still pending", body = ErrorBody)))]
async fn redeliver(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath((id, delivery_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, ApiJson<WebhookDelivery>)> {
    let d = s
        .generation
        .redeliver_webhook(actor(&p), id, delivery_id)
        .await?;
    Ok((StatusCode::ACCEPTED, ApiJson(d)))
}
