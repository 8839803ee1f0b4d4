//! `GET /metrics`: Prometheus text exposition (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Extension;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ErrorBody};
use crate::state::{AppState, ScrapeToken};

/// (method, route template, status).
type RequestKey = (String, String, u16);

/// Requests by (method, route, status): count and total seconds.
#[derive(Clone, Debug, Default)]
pub struct HttpMetrics(Arc<Mutex<BTreeMap<RequestKey, (u64, f64)>>>);

impl HttpMetrics {
    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = m
            .entry((method.to_owned(), route.to_owned(), status))
            .or_insert((0, 0.0));
        e.0 += 1;
        e.1 += secs;
    }
}

/// The route label of requests no route matched (the raw path would be unbounded).
pub const UNMATCHED: &str = "unmatched";

/// The method label: one of the methods of RFC 9110 (and PATCH), else `other`, so a
/// client cannot grow the label set with made-up methods.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware counting every request by method and route template (not the raw path,
/// so ids do not explode the label set).
pub async fn track(Extension(m): Extension<HttpMetrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    m.record(
        method,
        &route,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Escapes a label value per the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Writes `# HELP` and `# TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The scrape token (`http.metrics_token`) or an admin's token.
async fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = crate::extract::bearer_token(headers)?;
    if let Some(expected) = s.metrics_token.as_ref().map(ScrapeToken::as_str)
        && same(token.as_bytes(), expected.as_bytes())
    {
        return Ok(());
    }
    let principal = s.auth.authenticate(token).await?;
    if !principal.is_admin() {
        return Err(ApiError::Forbidden(
            "metrics are for admins and the scrape token only".into(),
        ));
    }
    Ok(())
}

/// Prometheus metrics of the server. Needs `Authorization: Bearer` with the scrape
/// token of the configuration (`http.metrics_token`) or an admin's token.
#[utoipa::path(get, path = "/metrics", tag = "health",
    security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "no token, or neither the scrape token nor a live session's", body = ErrorBody),
        (status = 403, description = "a user's token that is not an admin's", body = ErrorBody),
        (status = 429, description = "too many requests", body = ErrorBody),
        (status = 503, description = "the database is unavailable", body = ErrorBody)))]
async fn metrics(
    State(s): State<AppState>,
    Extension(http): Extension<HttpMetrics>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorize(&s, &headers).await {
        return e.into_response();
    }
    let mut out = String::with_capacity(4096);
    write_tick(&mut out, &s);
    write_systems(&mut out);
    write_sessions(&mut out, &s);
    write_db_pool(&mut out, &s);
    write_http(&mut out, &http);
    for source in &s.gauges.extra {
        out.push_str(&source().await);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// The tick loop: duration histogram, overruns, rate and pause state.
fn write_tick(out: &mut String, s: &AppState) {
    let stats = &s.tick.stats;
    stats.histogram().write_prometheus(
        out,
        "pixsim_tick_duration_seconds",
        "Duration of each simulation tick.",
    );
    head(
        out,
        "pixsim_tick_overruns_total",
        "counter",
        "Ticks that ended after the next one was due.",
    );
    let _ = writeln!(out, "pixsim_tick_overruns_total {}", stats.overruns());
    head(out, "pixsim_tick_rate_hz", "gauge", "Configured tick rate.");
    let _ = writeln!(
        out,
        "pixsim_tick_rate_hz {}",
        num(1.0 / stats.period().as_secs_f64())
    );
    head(
        out,
        "pixsim_tick_paused",
        "gauge",
        "1 while the tick loop is paused.",
    );
    let _ = writeln!(
        out,
        "pixsim_tick_paused {}",
        u8::from(s.tick.control.is_paused())
    );
}

/// Time spent in each ECS system (nothing while no system has run).
fn write_systems(out: &mut String) {
    let systems = tick::system_timings();
    if !systems.is_empty() {
        head(
            out,
            "pixsim_system_duration_seconds",
            "summary",
            "Time spent in each ECS system.",
        );
        for t in &systems {
            let name = label(&t.name);
            let _ = writeln!(
                out,
                "pixsim_system_duration_seconds_sum{{system=\"{name}\"}} {}",
                num(t.total_seconds)
            );
            let _ = writeln!(
                out,
                "pixsim_system_duration_seconds_count{{system=\"{name}\"}} {}",
                t.runs
            );
        }
    }
}

/// Game sessions loaded, and QUIC connections when the QUIC server runs.
fn write_sessions(out: &mut String, s: &AppState) {
    head(
        out,
        "pixsim_sessions",
        "gauge",
        "Game sessions loaded in the simulation.",
    );
    let _ = writeln!(
        out,
        "pixsim_sessions {}",
        s.gauges.sessions.load(std::sync::atomic::Ordering::Relaxed)
    );
    if let Some(q) = &s.gauges.quic {
        let q = q();
        head(
            out,
            "pixsim_quic_connections",
            "gauge",
            "Open QUIC connections.",
        );
        let _ = writeln!(out, "pixsim_quic_connections {}", q.connections);
        head(
            out,
            "pixsim_quic_connections_accepted_total",
            "counter",
            "QUIC connections accepted.",
        );
        let _ = writeln!(
            out,
            "pixsim_quic_connections_accepted_total {}",
            q.accepted_total
        );
    }
}

/// Database pool connections by state, and the pool size limit.
fn write_db_pool(out: &mut String, s: &AppState) {
    head(
        out,
        "pixsim_db_pool_connections",
        "gauge",
        "Database pool connections by state.",
    );
    let size = s.db.size();
    let idle = u32::try_from(s.db.num_idle()).unwrap_or(u32::MAX);
    let _ = writeln!(out, "pixsim_db_pool_connections{{state=\"idle\"}} {idle}");
    let _ = writeln!(
        out,
        "pixsim_db_pool_connections{{state=\"in_use\"}} {}",
        size.saturating_sub(idle)
    );
    head(
        out,
        "pixsim_db_pool_max_connections",
        "gauge",
        "Database pool size limit.",
    );
    let _ = writeln!(
        out,
        "pixsim_db_pool_max_connections {}",
        s.db.options().get_max_connections()
    );
}

/// HTTP requests and the time spent answering them, by method, route and status.
fn write_http(out: &mut String, http: &HttpMetrics) {
    let requests = http.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    head(
        out,
        "pixsim_http_requests_total",
        "counter",
        "HTTP requests by method, route and status.",
    );
    for ((method, route, status), (count, _)) in &requests {
        let _ = writeln!(
            out,
            "pixsim_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
            label(method),
            label(route)
        );
    }
    head(
        out,
        "pixsim_http_request_duration_seconds_total",
        "counter",
        "Time spent answering HTTP requests.",
    );
    for ((method, route, status), (_, secs)) in &requests {
        let _ = writeln!(
            out,
            "pixsim_http_request_duration_seconds_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {}",
            label(method),
            label(route),
            num(*secs)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(0.5), "0.5");
    }

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"FROBNICATE").expect("a token");
        assert_eq!(method_label(&made_up), "other");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
