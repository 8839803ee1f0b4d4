//! A contract fake of the OpenAI video API (`/v1/videos`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Action, Control, Endpoint, FakeServer, sample_gif, sample_png, serve};

struct Video {
    obj: Value,
    polls: usize,
}

struct St {
    api_key: String,
    control: Arc<Control>,
    next: AtomicU64,
    videos: Mutex<HashMap<String, Video>>,
    gif: Vec<u8>,
    png: Vec<u8>,
}

fn error(status: StatusCode, message: &str, etype: &str, code: Option<&str>) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": etype, "param": null, "code": code}}),
        ),
    )
        .into_response()
}

impl St {
    fn check(&self, headers: &HeaderMap) -> Option<Response> {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(format!("Bearer {}", self.api_key).as_str()) {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided",
                "invalid_request_error",
                Some("invalid_api_key"),
            ));
        }
        None
    }

    async fn scripted(&self, ep: Endpoint) -> Option<Response> {
        match self.control.next(ep)? {
            Action::RateLimit { retry_after_secs } => {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Rate limit reached",
                    "requests",
                    Some("rate_limit_exceeded"),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    r.headers_mut().insert("retry-after", v);
                }
                Some(r)
            }
            Action::OutOfCredits => Some(error(
                StatusCode::TOO_MANY_REQUESTS,
                "You exceeded your current quota",
                "insufficient_quota",
                Some("insufficient_quota"),
            )),
            Action::Moderation => Some(error(
                StatusCode::BAD_REQUEST,
                "Your request was blocked by our moderation system",
                "invalid_request_error",
                Some("moderation_blocked"),
            )),
            Action::ConcurrencyLimit => Some(error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many concurrent requests",
                "requests",
                Some("rate_limit_exceeded"),
            )),
            Action::ServerError => Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server error",
                "server_error",
                None,
            )),
            Action::Slow(d) => {
                tokio::time::sleep(d).await;
                None
            }
            Action::Malformed => Some((StatusCode::OK, "{\"id\": ").into_response()),
            Action::Unauthorized => Some(error(
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided",
                "invalid_request_error",
                Some("invalid_api_key"),
            )),
            Action::RemoteFailed => None,
        }
    }
}

async fn create(State(st): State<Arc<St>>, headers: HeaderMap, mut mp: Multipart) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let mut fields = serde_json::Map::new();
    while let Ok(Some(f)) = mp.next_field().await {
        let name = f.name().unwrap_or("").to_owned();
        if name == "input_reference" {
            let ct = f.content_type().unwrap_or("").to_owned();
            let len = f.bytes().await.map(|b| b.len()).unwrap_or(0);
            fields.insert(name, json!({"content_type": ct, "len": len}));
        } else {
            fields.insert(name, Value::String(f.text().await.unwrap_or_default()));
        }
    }
    let body = Value::Object(fields);
    st.control.with_record(|r| r.submits.push(body.clone()));
    if let Some(r) = st.scripted(Endpoint::Submit).await {
        return r;
    }
    let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or("");
    if prompt.is_empty() {
        st.control
            .with_record(|r| r.violations.push("missing prompt".into()));
        return error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'prompt'.",
            "invalid_request_error",
            Some("missing_required_parameter"),
        );
    }
    let seconds = body.get("seconds").and_then(Value::as_str).unwrap_or("4");
    if !["4", "8", "12"].contains(&seconds) {
        st.control
            .with_record(|r| r.violations.push(format!("bad seconds {seconds}")));
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid value for 'seconds'.",
            "invalid_request_error",
            Some("invalid_value"),
        );
    }
    let size = body
        .get("size")
        .and_then(Value::as_str)
        .unwrap_or("720x1280");
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("sora-2");
    let id = format!("video_{:024x}", st.next.fetch_add(1, Ordering::SeqCst));
    let obj = json!({
        "id": id, "object": "video", "created_at": 1_790_000_000, "model": model,
        "progress": 0, "prompt": prompt, "seconds": seconds, "size": size, "status": "queued",
    });
    if let Ok(mut v) = st.videos.lock() {
        v.insert(
            id.clone(),
            Video {
                obj: obj.clone(),
                polls: 0,
            },
        );
    }
    (StatusCode::OK, axum::Json(obj)).into_response()
}

async fn retrieve(
    State(st): State<Arc<St>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let action = st.control.next(Endpoint::Poll);
    match &action {
        Some(Action::Slow(d)) => tokio::time::sleep(*d).await,
        Some(Action::Malformed) => return (StatusCode::OK, "<<garbage>>").into_response(),
        Some(Action::ServerError) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "server_error",
                None,
            );
        }
        Some(Action::RateLimit { retry_after_secs }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached",
                "requests",
                Some("rate_limit_exceeded"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        _ => {}
    }
    let needed = st.control.polls_needed();
    let obj = {
        let Ok(mut v) = st.videos.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let Some(video) = v.get_mut(&id) else {
            return error(
                StatusCode::NOT_FOUND,
                "Video not found",
                "invalid_request_error",
                Some("not_found"),
            );
        };
        video.polls += 1;
        let (status, progress) = match action {
            Some(Action::Moderation) => ("failed", 100),
            Some(Action::RemoteFailed) => ("failed", 100),
            _ if video.polls >= needed => ("completed", 100),
            _ if video.polls == 1 => ("queued", 0),
            _ => ("in_progress", 50),
        };
        video.obj["status"] = json!(status);
        video.obj["progress"] = json!(progress);
        match action {
            Some(Action::Moderation) => {
                video.obj["error"] =
                    json!({"code": "moderation_blocked", "message": "blocked by moderation"});
            }
            Some(Action::RemoteFailed) => {
                video.obj["error"] =
                    json!({"code": "internal_error", "message": "generation failed"});
            }
            _ => {}
        }
        if status == "completed" {
            video.obj["completed_at"] = json!(1_790_000_100);
        }
        video.obj.clone()
    };
    let mut r = (StatusCode::OK, axum::Json(obj)).into_response();
    r.headers_mut()
        .insert("openai-poll-after-ms", HeaderValue::from_static("20"));
    r
}

/// `DELETE /v1/videos/{id}`: removes the video (later requests for it get 404).
async fn delete(State(st): State<Arc<St>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    if let Some(r) = st.scripted(Endpoint::Delete).await {
        return r;
    }
    let gone = st.videos.lock().ok().and_then(|mut v| v.remove(&id));
    match gone {
        Some(_) => (
            StatusCode::OK,
            axum::Json(json!({"id": id, "object": "video.deleted", "deleted": true})),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "Video not found",
            "invalid_request_error",
            Some("not_found"),
        ),
    }
}

#[derive(serde::Deserialize)]
struct Variant {
    variant: Option<String>,
}

async fn content(
    State(st): State<Arc<St>>,
    Path(id): Path<String>,
    Query(q): Query<Variant>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let done = st
        .videos
        .lock()
        .ok()
        .and_then(|v| v.get(&id).map(|x| x.obj["status"] == "completed"))
        .unwrap_or(false);
    if !done {
        return error(
            StatusCode::NOT_FOUND,
            "Video is not ready",
            "invalid_request_error",
            Some("not_found"),
        );
    }
    let variant = q.variant.unwrap_or_else(|| "video".into());
    if variant == "video"
        && let Some(r) = st.scripted(Endpoint::Content).await
    {
        return r;
    }
    match variant.as_str() {
        "video" => (
            StatusCode::OK,
            [("content-type", "image/gif")],
            st.gif.clone(),
        )
            .into_response(),
        "thumbnail" => (
            StatusCode::OK,
            [("content-type", "image/png")],
            st.png.clone(),
        )
            .into_response(),
        _ => error(
            StatusCode::BAD_REQUEST,
            "unknown variant",
            "invalid_request_error",
            Some("invalid_value"),
        ),
    }
}

/// Starts an OpenAI video fake accepting `api_key`; the base URL for the adapter is
/// `base_url() + "/v1"`.
pub async fn start(api_key: &str) -> std::io::Result<FakeServer> {
    let control = Arc::new(Control::default());
    control.set_polls_until_done(2);
    let st = Arc::new(St {
        api_key: api_key.to_owned(),
        control: control.clone(),
        next: AtomicU64::new(1),
        videos: Mutex::new(HashMap::new()),
        gif: sample_gif(11),
        png: sample_png(11),
    });
    let router = Router::new()
        .route("/v1/videos", axum::routing::post(create))
        .route("/v1/videos/{id}", get(retrieve).delete(delete))
        .route("/v1/videos/{id}/content", get(content))
        .with_state(st);
    serve(router, control).await
}
