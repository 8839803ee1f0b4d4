//! Admin routes.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiJson, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tick))
        .routes(routes!(logs))
}

/// Filters of `GET /api/v1/admin/logs`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// This level and more severe: error, warn, info, debug, trace.
    pub level: Option<String>,
    /// Target prefix, e.g. `api`.
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub job_id: Option<String>,
    /// RFC 3339 time; lines at or after it.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339 time; lines before it.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Text in the message or fields (case-insensitive).
    pub q: Option<String>,
    /// Lines with an id below this, for paging back.
    pub before_id: Option<i64>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A stored log line.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLine {
    pub id: i64,
    pub ts: chrono::DateTime<chrono::Utc>,
    pub level: String,
    pub target: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub job_id: Option<String>,
    pub provider: Option<String>,
    pub account_id: Option<String>,
}

/// Stored log lines, newest first.
#[utoipa::path(get, path = "/api/v1/admin/logs", tag = "admin",
    security(("bearer" = [])),
    params(LogQuery),
    responses((status = 200, body = Vec<LogLine>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn logs(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    crate::error::ApiQuery(q): crate::error::ApiQuery<LogQuery>,
) -> crate::error::ApiResult<ApiJson<Vec<LogLine>>> {
    if q.level
        .as_deref()
        .is_some_and(|l| store::logs::levels_at_least(l).is_none())
    {
        return Err(crate::error::ApiError::validation(
            "level must be one of error, warn, info, debug, trace",
        ));
    }
    let filter = store::logs::LogFilter {
        level: q.level,
        target: q.target,
        request_id: q.request_id,
        user_id: q.user_id,
        session_id: q.session_id,
        job_id: q.job_id,
        since: q.since,
        until: q.until,
        text: q.q,
        before_id: q.before_id,
        limit: q.limit.unwrap_or(100),
    };
    let rows = store::logs::query(&s.db, &filter).await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|r| LogLine {
                id: r.id,
                ts: r.ts,
                level: r.level,
                target: r.target,
                message: r.message,
                fields: r.fields,
                request_id: r.request_id,
                user_id: r.user_id,
                session_id: r.session_id,
                job_id: r.job_id,
                provider: r.provider,
                account_id: r.account_id,
            })
            .collect(),
    ))
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
