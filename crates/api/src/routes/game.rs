//! The web scene player: scenes, game sessions, choices and a server-sent event
//! stream. Same sessions, validation and durability as the QUIC channel: a choice is
//! answered only once its effect is committed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use game::{CommandOutcome, GameError};
use protocol::v2::GameCommand;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_scenes))
        .routes(routes!(get_scene))
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(get_session))
        .routes(routes!(choose))
        .routes(routes!(events))
}

impl From<GameError> for ApiError {
    fn from(e: GameError) -> Self {
        match e {
            GameError::NotFound => ApiError::NotFound("no such game session".into()),
            GameError::Invalid(m) => ApiError::validation(m),
            GameError::Ended => ApiError::Conflict("the session has ended".into()),
            GameError::Busy => ApiError::Unavailable("the server is busy, retry later".into()),
            GameError::ShuttingDown => ApiError::Unavailable("the server is shutting down".into()),
            e @ GameError::SessionLimit { .. } => ApiError::RateLimited {
                message: e.to_string(),
                retry_after: std::time::Duration::from_secs(60),
            },
            other => ApiError::internal(other),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SceneSummary {
    pub id: String,
    pub title: String,
    /// Locked scenes cannot start a session.
    pub locked: bool,
    /// True for the world's start scene.
    pub start: bool,
}

/// The scenes of the world.
#[utoipa::path(get, path = "/api/v1/game/scenes", tag = "game",
    security(("bearer" = [])),
    responses((status = 200, body = [SceneSummary]), (status = 401, body = ErrorBody)))]
async fn list_scenes(
    State(s): State<AppState>,
    Auth(_p): Auth,
) -> ApiResult<ApiJson<Vec<SceneSummary>>> {
    let c = s.game.content();
    Ok(ApiJson(
        c.scenes
            .values()
            .map(|sc| SceneSummary {
                id: sc.id.clone(),
                title: sc.title.clone(),
                locked: c.world.locked_scenes.contains(&sc.id),
                start: c.world.start_scene == sc.id,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SceneDetail {
    pub id: String,
    pub title: String,
    pub entry: String,
    pub locked: bool,
    /// Node ids and kinds.
    pub nodes: Vec<NodeSummary>,
    pub edges: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeSummary {
    pub id: String,
    pub kind: String,
}

/// One scene.
#[utoipa::path(get, path = "/api/v1/game/scenes/{id}", tag = "game",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "scene id")),
    responses((status = 200, body = SceneDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_scene(
    State(s): State<AppState>,
    Auth(_p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<SceneDetail>> {
    let c = s.game.content();
    let sc = c
        .scenes
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no scene '{id}'")))?;
    Ok(ApiJson(SceneDetail {
        id: sc.id.clone(),
        title: sc.title.clone(),
        entry: sc.entry.clone(),
        locked: c.world.locked_scenes.contains(&sc.id),
        nodes: sc
            .nodes
            .iter()
            .map(|n| NodeSummary {
                id: n.id.clone(),
                kind: n.kind.name().to_string(),
            })
            .collect(),
        edges: sc.edges.len(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Start scene (the world's start scene when absent).
    pub scene: Option<String>,
    /// World (only `default`).
    pub world: Option<String>,
}

/// A committed event of a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct GameEventBody {
    pub seq: u64,
    /// World time (ms).
    pub at_ms: i64,
    /// The event (`protocol::v2::GameEvent` as JSON: `{"VariantName": {...}}`).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    pub id: Uuid,
    pub scene: Option<String>,
    pub ended: bool,
    /// Seq of the next event; all events below it are committed.
    pub next_seq: u64,
    /// Retained committed events with `seq >= from_seq`.
    pub events: Vec<GameEventBody>,
}

fn body(e: &game::Delivered) -> GameEventBody {
    let event = match e.event() {
        Ok(event) => serde_json::to_value(&event).unwrap_or(serde_json::Value::Null),
        Err(err) => {
            tracing::error!(error = %err, seq = e.seq, "a committed game event does not decode");
            serde_json::Value::Null
        }
    };
    GameEventBody {
        seq: e.seq,
        at_ms: e.at_ms,
        event,
    }
}

fn session_body(live: &game::LiveSession, from: u64) -> Result<SessionBody, ApiError> {
    let events = live
        .events_from(from)
        .map_err(|g| ApiError::Conflict(g.to_string()))?;
    Ok(SessionBody {
        id: live.id,
        scene: live.scene.clone(),
        ended: live.ended(),
        next_seq: live.next_seq(),
        events: events.iter().map(|e| body(e)).collect(),
    })
}

/// Waits (bounded) until the session's first events are committed.
async fn settle(live: &std::sync::Arc<game::LiveSession>, from: u64) {
    let mut sub = live.subscribe(from);
    let _ = tokio::time::timeout(Duration::from_secs(2), sub.next_batch()).await;
}

/// Starts a new game session owned by the caller.
#[utoipa::path(post, path = "/api/v1/game/sessions", tag = "game",
    security(("bearer" = [])),
    request_body = CreateSessionRequest,
    responses((status = 201, body = SessionBody), (status = 401, body = ErrorBody),
        (status = 422, description = "unknown or locked scene", body = ErrorBody),
        (status = 429, description = "too many live game sessions of this user; see Retry-After", body = ErrorBody),
        (status = 503, description = "busy or shutting down", body = ErrorBody)))]
async fn create_session(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateSessionRequest>,
) -> ApiResult<(StatusCode, ApiJson<SessionBody>)> {
    let live = s
        .game
        .create_session(p.user.id.0, req.scene, req.world)
        .await?;
    settle(&live, 0).await;
    Ok((StatusCode::CREATED, ApiJson(session_body(&live, 0)?)))
}

/// One of the caller's sessions in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionListItem {
    pub id: Uuid,
    /// The scene it stands in (its start scene until its first committed tick).
    pub scene: String,
    /// The node it stands at, as last stored; `null` before its first committed tick.
    pub node: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub ended: bool,
}

/// A page of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Newest first.
    pub items: Vec<SessionListItem>,
    pub offset: u32,
    pub limit: u32,
}

/// Page of `GET /api/v1/game/sessions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionPage {
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u32>,
    /// Page size: default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The caller's game sessions, newest first: where each stands and whether it ended, so
/// a player can pick one to resume (join it over the game channel).
#[utoipa::path(get, path = "/api/v1/game/sessions", tag = "game",
    security(("bearer" = [])),
    params(SessionPage),
    responses((status = 200, body = SessionList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn list_sessions(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<SessionPage>,
) -> ApiResult<ApiJson<SessionList>> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let items = s
        .game
        .list_sessions(p.user.id.0, i64::from(offset), i64::from(limit))
        .await?
        .into_iter()
        .map(|r| SessionListItem {
            id: r.id,
            scene: r.scene,
            node: r.node,
            created_at: r.created_at,
            updated_at: r.updated_at,
            ended: r.ended,
        })
        .collect();
    Ok(ApiJson(SessionList {
        items,
        offset,
        limit,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FromSeq {
    /// Only events with `seq >= from_seq` (default 0).
    #[param(minimum = 0)]
    pub from_seq: Option<u64>,
}

/// One of the caller's sessions with its retained events (another user's session is
/// "not found").
#[utoipa::path(get, path = "/api/v1/game/sessions/{id}", tag = "game",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "session id"), FromSeq),
    responses((status = 200, body = SessionBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "too many live game sessions of this user; see Retry-After", body = ErrorBody)))]
async fn get_session(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<FromSeq>,
) -> ApiResult<ApiJson<SessionBody>> {
    let live = s.game.join(p.user.id.0, id).await?;
    let from = q.from_seq.unwrap_or(0);
    if live.next_seq() == 0 {
        settle(&live, 0).await;
    }
    let oldest = live
        .events_from(0)
        .ok()
        .and_then(|e| e.first().map(|e| e.seq));
    Ok(ApiJson(session_body(&live, from.max(oldest.unwrap_or(0)))?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseRequest {
    /// Edge id of an offered choice.
    pub edge: Option<String>,
    /// Reflex input instead of a choice.
    pub minigame: Option<MiniGameInputBody>,
    /// Leave (end) the session instead.
    #[serde(default)]
    pub leave: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MiniGameInputBody {
    pub round: u32,
    pub nonce: u64,
    /// Claimed press time, world ms.
    pub client_time_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChooseResponse {
    /// Last event seq caused by the command.
    pub through_seq: Option<u64>,
    /// The committed events the command caused.
    pub events: Vec<GameEventBody>,
}

/// Takes a choice (or sends a reflex input, or leaves). Answers once the effect is
/// committed, with the events it caused.
#[utoipa::path(post, path = "/api/v1/game/sessions/{id}/choose", tag = "game",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "session id")),
    request_body = ChooseRequest,
    responses((status = 200, body = ChooseResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "session ended", body = ErrorBody),
        (status = 422, description = "invalid choice (nothing changed)", body = ErrorBody),
        (status = 429, description = "too many live game sessions of this user; see Retry-After", body = ErrorBody),
        (status = 503, description = "busy", body = ErrorBody)))]
async fn choose(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ChooseRequest>,
) -> ApiResult<ApiJson<ChooseResponse>> {
    let command = match (req.edge, req.minigame, req.leave) {
        (Some(edge), None, false) => GameCommand::Choose { edge },
        (None, Some(m), false) => GameCommand::MiniGameInput {
            round: m.round,
            nonce: m.nonce,
            client_time_ms: m.client_time_ms,
        },
        (None, None, true) => GameCommand::Leave,
        _ => {
            return Err(ApiError::validation(
                "give exactly one of `edge`, `minigame` or `leave: true`",
            ));
        }
    };
    let live = s.game.join(p.user.id.0, id).await?;
    let before = live.next_seq();
    let rx = s.game.command(&live, command)?;
    let outcome = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .map_err(|_| ApiError::Unavailable("the command was not committed in time".into()))?
        .map_err(|_| ApiError::Unavailable("the server is shutting down".into()))?;
    match outcome {
        CommandOutcome::Accepted { through_seq } => {
            let events = live
                .events_from(before)
                .unwrap_or_default()
                .iter()
                .filter(|e| through_seq.is_some_and(|t| e.seq <= t))
                .map(|e| body(e))
                .collect();
            Ok(ApiJson(ChooseResponse {
                through_seq,
                events,
            }))
        }
        CommandOutcome::Rejected { code, message } => match code.as_str() {
            "busy" => Err(ApiError::Unavailable(message)),
            "session_ended" => Err(ApiError::Conflict(message)),
            _ => Err(ApiError::Validation {
                message,
                details: Some(serde_json::json!({ "reason": code })),
            }),
        },
    }
}

/// Server-sent events: every committed event of the session from `from_seq` on
/// (`id:` is the seq, `event: game`), ending after the session ends. A stream that
/// asks for (or falls behind to) events older than the resend window gets an
/// `event: snapshot` (`{"next_seq", "ended", "snapshot"}`, the state as of `next_seq`)
/// and continues from `next_seq`.
#[utoipa::path(get, path = "/api/v1/game/sessions/{id}/events", tag = "game",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "session id"), FromSeq),
    responses((status = 200, description = "text/event-stream of GameEventBody", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "too many open streams of this user; see Retry-After", body = ErrorBody)))]
async fn events(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<FromSeq>,
) -> ApiResult<Sse<impl futures_core::Stream<Item = Result<SseEvent, Infallible>>>> {
    // At most `http.max_streams_per_user` streams per user (429 beyond); held while
    // the stream lives.
    let slot = s.streams.take(p.user.id)?;
    let live = s.game.join(p.user.id.0, id).await?;
    let sub = live.subscribe(q.from_seq.unwrap_or(0));
    // The stream ends as soon as the caller's session does (logout, revocation, a
    // password change, the user disabled).
    let mut watch = s.auth.watch(&p);
    let stream = futures::StreamExt::take_until(event_stream(s.game.clone(), sub), async move {
        let _slot = slot;
        watch.ended().await
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The SSE form of one committed event (`id:` its seq, `event: game`).
fn game_event(e: &game::Delivered) -> SseEvent {
    let data = serde_json::to_string(&body(e)).unwrap_or_default();
    SseEvent::default()
        .id(e.seq.to_string())
        .event("game")
        .data(data)
}

/// A session's snapshot as an SSE event (`event: snapshot`, data
/// `{"next_seq", "ended", "snapshot"}`), sent when the stream fell behind the resend
/// window: the events after it continue from `next_seq`.
#[derive(Debug, Serialize)]
struct SnapshotBody {
    next_seq: u64,
    ended: bool,
    snapshot: protocol::v2::Snapshot,
}

fn event_stream(
    game: game::GameHandle,
    sub: game::Subscription,
) -> impl futures_core::Stream<Item = Result<SseEvent, Infallible>> {
    let state = (sub, std::collections::VecDeque::<SseEvent>::new(), false);
    futures::stream::unfold(state, move |(mut sub, mut queue, mut done)| {
        let game = game.clone();
        async move {
            loop {
                if let Some(ev) = queue.pop_front() {
                    return Some((Ok(ev), (sub, queue, done)));
                }
                if done {
                    return None;
                }
                match sub.next_batch().await {
                    Ok(batch) if batch.is_empty() => done = true,
                    Ok(batch) => queue.extend(batch.iter().map(|e| game_event(e))),
                    // Fell behind the resend window: the snapshot replaces what is lost.
                    Err(gap) => match game.snapshot(sub.session()).await {
                        Ok(j) => {
                            sub.seek(j.next_seq);
                            let body = SnapshotBody {
                                next_seq: j.next_seq,
                                ended: j.ended,
                                snapshot: j.snapshot,
                            };
                            let data = serde_json::to_string(&body).unwrap_or_default();
                            queue.push_back(SseEvent::default().event("snapshot").data(data));
                        }
                        Err(e) => {
                            tracing::info!(%gap, error = %e, "no snapshot for an SSE stream");
                            queue.push_back(SseEvent::default().event("gap").data(gap.to_string()));
                            done = true;
                        }
                    },
                }
            }
        }
    })
}
