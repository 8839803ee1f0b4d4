//! `POST /api/v1/admin/rpc`: the tick inspector over JSON-RPC 2.0 (admin only).
//!
//! BRP read methods go to the tick thread through [`inspector::Inspector`]; `tick.*`
//! methods are answered here from the lock-free tick figures. A method ending in
//! `+watch` answers with server-sent events: the base method is polled and each change
//! is sent (for `world.get_components+watch` and `world.list_components+watch` in BRP's
//! shape: changed components and removed ones, or added and removed names).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use inspector::{RpcError, codes};
use serde_json::{Map, Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ErrorBody;
use crate::extract::Admin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rpc))
}

/// How often a `+watch` stream looks for changes.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Methods answered without the tick thread.
pub const TICK_METHODS: &[&str] = &[
    "tick.stats",
    "tick.history",
    "tick.pause",
    "tick.resume",
    "tick.step",
];

fn reply(id: &Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
    }
}

/// JSON-RPC 2.0 inspector: BRP read methods (`world.query`, `world.get_components`,
/// `world.list_components`, `world.list_resources`, `world.get_resources`,
/// `schedule.list`, `rpc.discover`, `+watch` variants as server-sent events) and
/// `tick.stats`, `tick.history`, `tick.pause`, `tick.resume`, `tick.step`,
/// `session.inspect`, `world.inspect`, and the worlds' controls (`worlds.list`,
/// `worlds.pause`, `worlds.resume`, `worlds.step`, `worlds.advance`, `worlds.set_scale`,
/// `worlds.set_turn_based`, each with `{"world": id, ...}`).
#[utoipa::path(post, path = "/api/v1/admin/rpc", tag = "admin",
    security(("bearer" = [])),
    request_body(content = Object, description = "A JSON-RPC 2.0 request", content_type = "application/json"),
    responses(
        (status = 200, description = "A JSON-RPC 2.0 response, or an event stream for `+watch` methods"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn rpc(State(s): State<AppState>, Admin(admin): Admin, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return axum::Json(reply(
                &Value::Null,
                Err(RpcError::new(
                    codes::PARSE_ERROR,
                    format!("parse error: {e}"),
                )),
            ))
            .into_response();
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let (Some("2.0"), Some(method)) = (
        request.get("jsonrpc").and_then(Value::as_str),
        request.get("method").and_then(Value::as_str),
    ) else {
        return axum::Json(reply(
            &id,
            Err(RpcError::new(
                codes::INVALID_REQUEST,
                "a request needs \"jsonrpc\": \"2.0\" and a \"method\" string",
            )),
        ))
        .into_response();
    };
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    if let Some(base) = method.strip_suffix("+watch") {
        return watch(s, base.to_owned(), params, id).into_response();
    }
    if matches!(method, "tick.pause" | "tick.resume" | "tick.step")
        || (method.starts_with("worlds.") && method != "worlds.list")
    {
        tracing::info!(admin_id = %admin.user.id, method, "admin action");
    }
    axum::Json(reply(&id, call(&s, method, params).await)).into_response()
}

async fn call(s: &AppState, method: &str, params: Value) -> Result<Value, RpcError> {
    let tick = &s.tick;
    match method {
        "tick.stats" => {
            let snap = tick.stats.snapshot(tick.control.is_paused());
            serde_json::to_value(snap)
                .map_err(|e| RpcError::new(codes::INTERNAL_ERROR, e.to_string()))
        }
        "tick.history" => {
            let n = match &params {
                Value::Null => 100,
                p => p
                    .get("count")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| RpcError::invalid_params("expected {\"count\": N}"))?,
            };
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            Ok(json!(tick.stats.history(n)))
        }
        "tick.pause" => {
            tick.control.pause();
            Ok(json!({"paused": true, "tick": tick.stats.number()}))
        }
        "tick.resume" => {
            tick.control.resume();
            Ok(json!({"paused": false, "tick": tick.stats.number()}))
        }
        "tick.step" => {
            let before = tick.stats.number();
            if !tick.control.step() {
                return Err(RpcError::new(
                    codes::INVALID_REQUEST,
                    "tick.step needs a paused loop: call tick.pause first",
                ));
            }
            // Wait (bounded) for the one tick to finish, so the caller sees its number.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while tick.stats.number() == before && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(json!({"paused": true, "tick": tick.stats.number()}))
        }
        "rpc.discover" => {
            let mut doc = s.inspector.call("rpc.discover", params).await?;
            if let Some(methods) = doc.get_mut("methods").and_then(Value::as_array_mut) {
                for m in TICK_METHODS {
                    methods.push(json!({"name": m, "params": []}));
                }
                for m in ["world.get_components+watch", "world.list_components+watch"] {
                    methods.push(json!({"name": m, "params": []}));
                }
            }
            Ok(doc)
        }
        other => s.inspector.call(other, params).await,
    }
}

/// Difference between two results of a watched method, in BRP's watch shape.
fn diff(method: &str, prev: Option<&Value>, next: &Value) -> Option<Value> {
    if prev == Some(next) {
        return None;
    }
    match method {
        "world.list_components" => {
            let names = |v: Option<&Value>| -> BTreeSet<String> {
                v.and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (old, new) = (names(prev), names(Some(next)));
            Some(json!({
                "added": new.difference(&old).collect::<Vec<_>>(),
                "removed": old.difference(&new).collect::<Vec<_>>(),
            }))
        }
        "world.get_components" => {
            let lenient = next.get("components").is_some() && next.get("errors").is_some();
            let comps = |v: Option<&Value>| -> Map<String, Value> {
                let v = if lenient {
                    v.and_then(|v| v.get("components"))
                } else {
                    v
                };
                v.and_then(Value::as_object).cloned().unwrap_or_default()
            };
            let (old, new) = (comps(prev), comps(Some(next)));
            let changed: Map<String, Value> = new
                .iter()
                .filter(|(k, v)| old.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let removed: Vec<&String> = old.keys().filter(|k| !new.contains_key(*k)).collect();
            if lenient {
                Some(json!({"components": changed, "removed": removed, "errors": next["errors"]}))
            } else {
                Some(json!({"components": changed, "removed": removed}))
            }
        }
        _ => Some(next.clone()),
    }
}

fn watch(
    s: AppState,
    method: String,
    params: Value,
    id: Value,
) -> Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>> {
    let stream = async_stream_like(move |tx| async move {
        let mut prev: Option<Value> = None;
        let mut interval = tokio::time::interval(WATCH_INTERVAL);
        loop {
            interval.tick().await;
            let result = call(&s, &method, params.clone()).await;
            let msg = match result {
                Ok(next) => match diff(&method, prev.as_ref(), &next) {
                    Some(d) => {
                        prev = Some(next);
                        reply(&id, Ok(d))
                    }
                    None => continue,
                },
                Err(e) => {
                    let end = reply(&id, Err(e));
                    let _ = tx.send(Event::default().data(end.to_string())).await;
                    break;
                }
            };
            if tx
                .send(Event::default().data(msg.to_string()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream fed by a task through a small channel; the task ends when the client goes.
fn async_stream_like<F, Fut>(f: F) -> impl futures_core::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    ReceiverStream(rx)
}

struct ReceiverStream(tokio::sync::mpsc::Receiver<Event>);

impl futures_core::Stream for ReceiverStream {
    type Item = Result<Event, Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|o| o.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_diffs_follow_brp_shapes() {
        let a = json!(["x::A", "x::B"]);
        let b = json!(["x::B", "x::C"]);
        assert_eq!(diff("world.list_components", Some(&a), &a), None);
        assert_eq!(
            diff("world.list_components", Some(&a), &b),
            Some(json!({"added": ["x::C"], "removed": ["x::A"]}))
        );
        let g1 = json!({"components": {"x::A": 1, "x::B": 2}, "errors": {}});
        let g2 = json!({"components": {"x::A": 1, "x::B": 3}, "errors": {}});
        let g3 = json!({"components": {"x::B": 3}, "errors": {}});
        assert_eq!(
            diff("world.get_components", Some(&g1), &g2),
            Some(json!({"components": {"x::B": 3}, "removed": [], "errors": {}}))
        );
        assert_eq!(
            diff("world.get_components", Some(&g2), &g3),
            Some(json!({"components": {}, "removed": ["x::A"], "errors": {}}))
        );
        assert_eq!(diff("tick.stats", None, &json!(1)), Some(json!(1)));
    }
}
