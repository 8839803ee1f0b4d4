//! Admin: the served worlds and their clocks (`/api/v1/admin/worlds`): list them, and
//! pause, resume, step one tick, advance by a delta, set the time scale or turn-based
//! mode of one world. Each route calls the tick inspector's `worlds.*` method of the
//! same name (answered on the tick thread between ticks), so REST and JSON-RPC are one
//! implementation; the answer is the world after the change.

use axum::extract::State;
use inspector::{RpcError, codes};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_worlds))
        .routes(routes!(pause_world))
        .routes(routes!(resume_world))
        .routes(routes!(step_world))
        .routes(routes!(advance_world))
        .routes(routes!(set_time_scale))
        .routes(routes!(set_turn_based))
}

/// A world's clock.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorldClockView {
    /// World time (ms).
    pub now_ms: i64,
    /// Ticks run.
    pub tick: u64,
    /// Time scale in permille (1000: real time).
    pub scale_permille: u32,
    pub paused: bool,
    /// Time moves only on a tick with a command for this world (or a step).
    pub turn_based: bool,
    /// A step asked for and not yet run.
    pub step_pending: bool,
}

/// A served world.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorldView {
    /// World id (`default`, or `[worlds.<id>]` in `world.toml`).
    pub id: String,
    pub title: Option<String>,
    pub clock: WorldClockView,
    /// Live sessions in this world.
    pub sessions: usize,
}

/// `POST /api/v1/admin/worlds/{world}/advance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceRequest {
    /// World ms to move forward at once (at most a day); due timers fire in the next tick.
    #[schema(maximum = 86_400_000)]
    pub ms: u64,
}

/// `POST /api/v1/admin/worlds/{world}/time-scale`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeScaleRequest {
    /// World ms per real ms, 0.001 to 1000.
    #[schema(minimum = 0.001, maximum = 1000.0)]
    pub time_scale: f64,
}

/// `POST /api/v1/admin/worlds/{world}/turn-based`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnBasedRequest {
    pub on: bool,
}

/// The inspector's error as the API's envelope.
fn api_error(e: RpcError) -> ApiError {
    match e.code {
        codes::ENTITY_NOT_FOUND => ApiError::NotFound(e.message),
        codes::INVALID_PARAMS => ApiError::validation(e.message),
        _ => ApiError::internal(e.message),
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> ApiResult<T> {
    serde_json::from_value(v).map_err(ApiError::internal)
}

/// Calls a `worlds.*` control on one world and answers the world after it.
async fn control(
    s: &AppState,
    admin: &auth::Principal,
    method: &str,
    world: String,
    mut params: Value,
) -> ApiResult<ApiJson<WorldView>> {
    tracing::info!(admin_id = %admin.user.id, method, world = %world, "admin action");
    params["world"] = json!(world);
    let v = s.inspector.call(method, params).await.map_err(api_error)?;
    Ok(ApiJson(decode(v)?))
}

/// The served worlds with their clocks, the default world first.
#[utoipa::path(get, path = "/api/v1/admin/worlds", operation_id = "admin_list_worlds", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<WorldView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_worlds(
    State(s): State<AppState>,
    Admin(_admin): Admin,
) -> ApiResult<ApiJson<Vec<WorldView>>> {
    let v = s
        .inspector
        .call("worlds.list", Value::Null)
        .await
        .map_err(api_error)?;
    Ok(ApiJson(decode(v["worlds"].clone())?))
}

/// Pauses one world: its time stops, its sessions' timers wait (commands still run).
#[utoipa::path(post, path = "/api/v1/admin/worlds/{world}/pause", operation_id = "admin_pause_world", tag = "admin",
    security(("bearer" = [])),
    params(("world" = String, Path, description = "world id")),
    responses((status = 200, body = WorldView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn pause_world(
    State(s): State<AppState>,
    Admin(admin): Admin,
    ApiPath(world): ApiPath<String>,
) -> ApiResult<ApiJson<WorldView>> {
    control(&s, &admin, "worlds.pause", world, json!({})).await
}

/// Resumes one paused world.
#[utoipa::path(post, path = "/api/v1/admin/worlds/{world}/resume", operation_id = "admin_resume_world", tag = "admin",
    security(("bearer" = [])),
    params(("world" = String, Path, description = "world id")),
    responses((status = 200, body = WorldView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn resume_world(
    State(s): State<AppState>,
    Admin(admin): Admin,
    ApiPath(world): ApiPath<String>,
) -> ApiResult<ApiJson<WorldView>> {
    control(&s, &admin, "worlds.resume", world, json!({})).await
}

/// Moves one paused or turn-based world by exactly one tick, at the next tick.
#[utoipa::path(post, path = "/api/v1/admin/worlds/{world}/step", operation_id = "admin_step_world", tag = "admin",
    security(("bearer" = [])),
    params(("world" = String, Path, description = "world id")),
    responses((status = 200, body = WorldView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn step_world(
    State(s): State<AppState>,
    Admin(admin): Admin,
    ApiPath(world): ApiPath<String>,
) -> ApiResult<ApiJson<WorldView>> {
    control(&s, &admin, "worlds.step", world, json!({})).await
}

/// Moves one world's time forward by a delta at once (paused or not).
#[utoipa::path(post, path = "/api/v1/admin/worlds/{world}/advance", operation_id = "admin_advance_world", tag = "admin",
    security(("bearer" = [])),
    params(("world" = String, Path, description = "world id")),
    request_body = AdvanceRequest,
    responses((status = 200, body = WorldView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn advance_world(
    State(s): State<AppState>,
    Admin(admin): Admin,
    ApiPath(world): ApiPath<String>,
    ApiJson(req): ApiJson<AdvanceRequest>,
) -> ApiResult<ApiJson<WorldView>> {
    control(&s, &admin, "worlds.advance", world, json!({"ms": req.ms})).await
}

/// Sets one world's time scale.
#[utoipa::path(post, path = "/api/v1/admin/worlds/{world}/time-scale", operation_id = "admin_set_world_time_scale", tag = "admin",
    security(("bearer" = [])),
    params(("world" = String, Path, description = "world id")),
    request_body = TimeScaleRequest,
    responses((status = 200, body = WorldView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_time_scale(
    State(s): State<AppState>,
    Admin(admin): Admin,
    ApiPath(world): ApiPath<String>,
    ApiJson(req): ApiJson<TimeScaleRequest>,
) -> ApiResult<ApiJson<WorldView>> {
    let params = json!({"time_scale": req.time_scale});
    control(&s, &admin, "worlds.set_scale", world, params).await
}

/// Switches one world's turn-based mode.
#[utoipa::path(post, path = "/api/v1/admin/worlds/{world}/turn-based", operation_id = "admin_set_world_turn_based", tag = "admin",
    security(("bearer" = [])),
    params(("world" = String, Path, description = "world id")),
    request_body = TurnBasedRequest,
    responses((status = 200, body = WorldView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_turn_based(
    State(s): State<AppState>,
    Admin(admin): Admin,
    ApiPath(world): ApiPath<String>,
    ApiJson(req): ApiJson<TurnBasedRequest>,
) -> ApiResult<ApiJson<WorldView>> {
    control(
        &s,
        &admin,
        "worlds.set_turn_based",
        world,
        json!({"on": req.on}),
    )
    .await
}
