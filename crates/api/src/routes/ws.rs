//! `GET /api/v1/ws/generations`: the generation events as a WebSocket stream.
//!
//! Every [`GenerationEvent`] the caller may see (their own jobs and assets; all for
//! admins) is sent as one JSON text frame, `{"type": "job:created", …}`. A client too
//! slow for the event rate gets `{"type": "lagged", "missed": N}` and the stream goes
//! on. A socket whose session ends (logout, revocation, a password change, the user
//! disabled) is closed with code 1008 at once; the token is also checked again
//! periodically.

use std::time::Duration;

use auth::{AuthError, Principal};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use generation::GenerationEvent;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiQuery, ApiResult, ErrorBody, ErrorDetail};
use crate::extract::bearer_token;
use crate::state::AppState;

/// How often the server pings the client and checks that the session is still live.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Clients only need to send control frames; anything larger is refused.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(generations))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The access token, for clients that cannot set `Authorization` on a WebSocket
    /// (browsers). The header wins when both are given.
    pub token: Option<String>,
}

/// The token from `Authorization: Bearer …`, else from `?token=`.
fn token(headers: &HeaderMap, query: WsQuery) -> Result<String, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return bearer_token(headers).map(str::to_owned);
    }
    match query.token {
        Some(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => Err(ApiError::Unauthorized(
            "missing `Authorization: Bearer <token>` header or `token` query parameter".into(),
        )),
    }
}

/// Streams generation events (WebSocket). Authenticate with `Authorization: Bearer`
/// or `?token=`. Users receive the events of their own jobs and assets, admins all.
/// Each text frame is one event: `{"type": "job:created" | "job:updated" |
/// "job:completed" | "job:failed" | "asset:created", …}` (see `GenerationEvent`), or
/// `{"type": "lagged", "missed": N}` when the client fell behind and N events were
/// dropped. A pending job near the head of the queue (the first 100) gets a
/// `job:updated` when its `queue_position` changes, within a second.
#[utoipa::path(get, path = "/api/v1/ws/generations", operation_id = "generation_events", tag = "generations",
    params(WsQuery),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "WebSocket upgrade; then one JSON text frame per event", body = GenerationEvent),
        (status = 401, description = "missing, invalid or ended token", body = ErrorBody),
        (status = 400, description = "a malformed WebSocket upgrade request", body = ErrorBody),
        (status = 426, description = "not a WebSocket upgrade request", body = ErrorBody),
        (status = 429, description = "too many open streams of this user; see Retry-After", body = ErrorBody)))]
async fn generations(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<WsQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // Authenticate first: an unauthenticated caller learns nothing else.
    let token = token(&headers, q)?;
    let principal = s.auth.authenticate(&token).await?;
    tracing::Span::current().record("user_id", tracing::field::display(principal.user.id));
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            // No upgrade asked for at all: 426 Upgrade Required, naming the protocol
            // (RFC 9110 §15.5.22). A broken upgrade request keeps its own status.
            let asked = headers
                .get(header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let status = if asked {
                e.status()
            } else {
                StatusCode::UPGRADE_REQUIRED
            };
            let body = ErrorBody {
                error: ErrorDetail {
                    code: "upgrade_required".into(),
                    message: format!("a WebSocket upgrade request is required: {}", e.body_text()),
                    details: None,
                },
            };
            let mut res = (status, axum::Json(body)).into_response();
            if status == StatusCode::UPGRADE_REQUIRED {
                let h = res.headers_mut();
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            }
            return Ok(res);
        }
    };
    // At most `http.max_streams_per_user` streams per user (429 beyond).
    let slot = s.streams.take(principal.user.id)?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            stream(socket, s, token, principal).await
        }))
}

fn visible(p: &Principal, ev: &GenerationEvent) -> bool {
    p.is_admin() || ev.user_id() == p.user.id
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = socket.send(Message::Close(Some(frame))).await;
        // Wait for the client's close reply (or its going away).
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn stream(mut socket: WebSocket, s: AppState, token: String, mut principal: Principal) {
    let mut events = s.generation.subscribe();
    // Closed as soon as its session ends (logout, revoke, password change, disable).
    let mut watch = s.auth.watch(&principal);
    let ended = watch.ended();
    tokio::pin!(ended);
    let start = tokio::time::Instant::now() + CHECK_EVERY;
    let mut check = tokio::time::interval_at(start, CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => {
                let frame = match ev {
                    Ok(ev) if visible(&principal, &ev) => match serde_json::to_string(&ev) {
                        Ok(text) => text,
                        Err(e) => {
                            tracing::warn!(error = %e, kind = ev.kind(), "unserializable generation event");
                            continue;
                        }
                    },
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        serde_json::json!({"type": "lagged", "missed": missed}).to_string()
                    }
                    Err(RecvError::Closed) => {
                        close(&mut socket, close_code::AWAY, "server shutting down").await;
                        return;
                    }
                };
                if socket.send(Message::Text(frame.into())).await.is_err() {
                    return;
                }
            }
            msg = socket.recv() => match msg {
                // The client closed: flush the close reply, then end.
                Some(Ok(Message::Close(_))) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close()).await;
                    return;
                }
                None | Some(Err(_)) => return,
                // Pings are answered by the library; other client frames are ignored.
                Some(Ok(_)) => {}
            },
            () = &mut ended => {
                close(&mut socket, close_code::POLICY, "session ended").await;
                return;
            }
            _ = check.tick() => {
                match s.auth.authenticate(&token).await {
                    Ok(p) => principal = p,
                    Err(AuthError::InvalidToken | AuthError::SessionEnded) => {
                        close(&mut socket, close_code::POLICY, "session ended").await;
                        return;
                    }
                    // A database hiccup: keep streaming, check again later.
                    Err(e) => tracing::warn!(error = %e, "websocket session check failed"),
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}
