//! Admin routes.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiJson, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tick))
}

/// Tick loop figures over the last 1,200 ticks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TickView {
    /// Ticks completed.
    pub number: u64,
    pub target_rate_hz: f64,
    pub actual_rate_hz: f64,
    pub last_us: f64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Ticks that ended after the next one was due.
    pub overruns: u64,
    pub window: usize,
    pub paused: bool,
}

/// Live tick figures.
#[utoipa::path(get, path = "/api/v1/admin/tick", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = TickView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn tick(State(s): State<AppState>, Admin(_admin): Admin) -> ApiJson<TickView> {
    let t = s.tick.stats.snapshot(s.tick.control.is_paused());
    ApiJson(TickView {
        number: t.number,
        target_rate_hz: t.target_rate_hz,
        actual_rate_hz: t.actual_rate_hz,
        last_us: t.last_us,
        p50_us: t.p50_us,
        p95_us: t.p95_us,
        p99_us: t.p99_us,
        max_us: t.max_us,
        overruns: t.overruns,
        window: t.window,
        paused: t.paused,
    })
}
