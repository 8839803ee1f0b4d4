//! Liveness, health and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(health))
        .routes(routes!(ready))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// Always `ok`.
    pub status: &'static str,
    pub version: String,
}

/// Liveness: answers without touching the database.
#[utoipa::path(get, path = "/", tag = "health", responses((status = 200, body = Live)))]
async fn live(State(s): State<AppState>) -> ApiJson<Live> {
    ApiJson(Live {
        status: "ok",
        version: s.info.version.clone(),
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Component {
    /// `up`, `down` or `disabled` (not configured).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TickHealth {
    pub number: u64,
    pub rate_hz: f64,
    pub actual_rate_hz: f64,
    pub last_us: f64,
    pub p99_us: f64,
    pub overruns: u64,
    pub paused: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy` or `degraded`.
    pub status: &'static str,
    pub version: String,
    pub database: Component,
    pub redis: Component,
    pub tick: TickHealth,
    pub content: crate::state::ContentStatus,
    /// Each generation provider's reachability (`local`: ffmpeg is there; a remote
    /// provider: its base URL answers), probed at most every
    /// `generation.provider_probe_secs` whatever the number of health checks. A
    /// provider that is down does not make the server `degraded`: jobs for it wait or
    /// fail on their own.
    pub providers: Vec<generation::ProviderReachability>,
}

async fn check_database(s: &AppState) -> Component {
    let t = std::time::Instant::now();
    match store::ping(&s.db, Duration::from_secs(2)).await {
        Ok(()) => Component {
            status: "up",
            error: None,
            latency_ms: Some(t.elapsed().as_secs_f64() * 1e3),
        },
        Err(e) => Component {
            status: "down",
            error: Some(e.to_string()),
            latency_ms: None,
        },
    }
}

async fn check_redis(s: &AppState) -> Component {
    let Some(redis) = &s.redis else {
        return Component {
            status: "disabled",
            error: None,
            latency_ms: None,
        };
    };
    let t = std::time::Instant::now();
    match redis.check().await {
        Ok(()) => Component {
            status: "up",
            error: None,
            latency_ms: Some(t.elapsed().as_secs_f64() * 1e3),
        },
        Err(e) => Component {
            status: "down",
            error: Some(e),
            latency_ms: None,
        },
    }
}

/// How long `/health` reuses its database and Redis probes: a flood of health checks
/// (the route needs no token) costs the database one ping per period, not one each.
pub const HEALTH_PROBE_TTL: Duration = Duration::from_secs(1);

/// The last database and Redis probes of `/health`, and when they ran.
#[derive(Clone, Debug, Default)]
pub struct HealthProbes(
    std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, Component, Component)>>>,
);

impl HealthProbes {
    /// The probes, run again when the last ones are older than [`HEALTH_PROBE_TTL`]
    /// (once however many ask meanwhile).
    async fn get(&self, s: &AppState) -> (Component, Component) {
        let mut last = self.0.lock().await;
        if let Some((at, db, redis)) = last.as_ref()
            && at.elapsed() < HEALTH_PROBE_TTL
        {
            return (db.clone(), redis.clone());
        }
        let (db, redis) = tokio::join!(check_database(s), check_redis(s));
        *last = Some((std::time::Instant::now(), db.clone(), redis.clone()));
        (db, redis)
    }
}

/// Health of each part. Always 200; `degraded` when a part is down. The database and
/// Redis are probed at most once a second (`/ready` probes on every call).
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Health)))]
async fn health(State(s): State<AppState>) -> ApiJson<Health> {
    let ((database, redis), providers) = tokio::join!(
        s.health_probes.get(&s),
        s.generation.provider_reachability()
    );
    let snap = s.tick.stats.snapshot(s.tick.control.is_paused());
    let status = if database.status == "up" && redis.status != "down" {
        "healthy"
    } else {
        "degraded"
    };
    ApiJson(Health {
        status,
        version: s.info.version.clone(),
        database,
        redis,
        tick: TickHealth {
            number: snap.number,
            rate_hz: snap.target_rate_hz,
            actual_rate_hz: snap.actual_rate_hz,
            last_us: snap.last_us,
            p99_us: snap.p99_us,
            overruns: snap.overruns,
            paused: snap.paused,
        },
        content: s.content.get(),
        providers,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`, `degraded` (optional parts down) or `unavailable`.
    pub status: &'static str,
    pub database: Component,
    pub redis: Component,
}

/// Readiness: 503 when the database is unreachable.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, body = Ready), (status = 503, body = Ready)))]
async fn ready(State(s): State<AppState>) -> (StatusCode, ApiJson<Ready>) {
    let (database, redis) = tokio::join!(check_database(&s), check_redis(&s));
    let (code, status) = if database.status != "up" {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else if redis.status == "down" {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    (
        code,
        ApiJson(Ready {
            status,
            database,
            redis,
        }),
    )
}
