//! A contract fake of the Pixverse platform API.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Action, Control, Endpoint, FakeServer, sample_gif, serve};

struct St {
    api_key: String,
    control: Arc<Control>,
    next_id: AtomicI64,
    /// video id → polls so far.
    videos: Mutex<HashMap<i64, usize>>,
    /// Videos whose charge went back (moderation failures), once each.
    refunded: Mutex<HashSet<i64>>,
    base: Mutex<String>,
    gif: Vec<u8>,
}

fn envelope(code: i64, msg: &str, resp: Value) -> Value {
    json!({"ErrCode": code, "ErrMsg": msg, "Resp": resp})
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

impl St {
    /// Checks the headers; `Some(response)` refuses the request.
    fn check(&self, headers: &HeaderMap) -> Option<Response> {
        let key = headers.get("api-key").and_then(|v| v.to_str().ok());
        let trace = headers.get("ai-trace-id").and_then(|v| v.to_str().ok());
        let mut problem = None;
        match trace {
            None => problem = Some("missing Ai-trace-id".to_owned()),
            Some(t) => {
                let fresh = self
                    .control
                    .with_record(|r| r.trace_ids.insert(t.to_owned()))
                    .unwrap_or(false);
                if !fresh {
                    problem = Some(format!("reused Ai-trace-id {t}"));
                }
            }
        }
        if let Some(p) = problem {
            self.control.with_record(|r| r.violations.push(p.clone()));
            return Some(reply(
                StatusCode::BAD_REQUEST,
                envelope(400017, &p, json!({})),
            ));
        }
        if key != Some(self.api_key.as_str()) {
            return Some(reply(
                StatusCode::UNAUTHORIZED,
                envelope(10002, "invalid api key", json!({})),
            ));
        }
        None
    }

    /// Applies a scripted action; `None` continues normally.
    async fn scripted(&self, ep: Endpoint) -> Option<Response> {
        let action = self.control.next(ep)?;
        match action {
            Action::RateLimit { retry_after_secs } => {
                let mut r = reply(
                    StatusCode::TOO_MANY_REQUESTS,
                    envelope(429, "too many requests", json!({})),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    r.headers_mut().insert("retry-after", v);
                }
                Some(r)
            }
            Action::Moderation if ep == Endpoint::Upload => Some(reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"err_code": 500052, "err_msg": "image moderation failed", "resp": ""}),
            )),
            Action::Moderation => Some(reply(
                StatusCode::OK,
                envelope(500054, "content moderation failed", json!({})),
            )),
            Action::OutOfCredits => Some(reply(
                StatusCode::OK,
                envelope(500090, "insufficient balance", json!({})),
            )),
            Action::ConcurrencyLimit => Some(reply(
                StatusCode::OK,
                envelope(500044, "concurrent generation limit reached", json!({})),
            )),
            Action::ServerError => {
                Some((StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response())
            }
            Action::Slow(d) => {
                tokio::time::sleep(d).await;
                None
            }
            Action::Malformed => {
                Some((StatusCode::OK, "{\"ErrCode\": 0, \"Resp\": ").into_response())
            }
            Action::Unauthorized => Some(reply(
                StatusCode::UNAUTHORIZED,
                envelope(10002, "invalid api key", json!({})),
            )),
            Action::RemoteFailed => None,
        }
    }
}

fn violation(st: &St, msg: String) -> Response {
    st.control.with_record(|r| r.violations.push(msg.clone()));
    reply(StatusCode::BAD_REQUEST, envelope(400017, &msg, json!({})))
}

async fn upload(
    State(st): State<Arc<St>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    mut mp: Multipart,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    if let Some(r) = st.scripted(Endpoint::Upload).await {
        return r;
    }
    let field_name = if kind == "image" { "image" } else { "file" };
    let mut got = None;
    while let Ok(Some(f)) = mp.next_field().await {
        if f.name() == Some(field_name) {
            got = f.bytes().await.ok();
        }
    }
    let Some(bytes) = got.filter(|b| !b.is_empty()) else {
        return violation(&st, format!("upload without a `{field_name}` file"));
    };
    let id = st.next_id.fetch_add(1, Ordering::SeqCst);
    let base = st.base.lock().map(|b| b.clone()).unwrap_or_default();
    if kind == "image" {
        if crate::media::sniff(&bytes).map(|s| s.media_type) != Some(crate::model::MediaType::Image)
        {
            return reply(
                StatusCode::OK,
                envelope(500031, "unsupported image format", json!({})),
            );
        }
        reply(
            StatusCode::OK,
            envelope(
                0,
                "success",
                json!({"img_id": id, "img_url": format!("{base}/media/img-{id}")}),
            ),
        )
    } else {
        reply(
            StatusCode::OK,
            envelope(
                0,
                "success",
                json!({"media_id": id, "media_type": "video", "url": format!("{base}/media/media-{id}")}),
            ),
        )
    }
}

fn require(body: &Value, fields: &[&str]) -> Result<(), String> {
    for f in fields {
        if body.get(*f).is_none_or(Value::is_null) {
            return Err(format!("missing required field {f}"));
        }
    }
    Ok(())
}

async fn generate(
    State(st): State<Arc<St>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return violation(&st, format!("generate with content type {ct:?}"));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return violation(&st, "generate body is not json".into());
    };
    st.control.with_record(|r| r.submits.push(body.clone()));
    if let Some(r) = st.scripted(Endpoint::Submit).await {
        return r;
    }
    let common = ["prompt", "model", "duration", "quality"];
    let check = match kind.as_str() {
        "text" => require(&body, &common).and(require(&body, &["aspect_ratio"])),
        "img" => require(&body, &common).and(require(&body, &["img_id"])),
        "transition" => {
            require(&body, &common).and(require(&body, &["first_frame_img", "last_frame_img"]))
        }
        "extend" => require(&body, &common).and(
            if body.get("source_video_id").is_some() || body.get("video_media_id").is_some() {
                Ok(())
            } else {
                Err("extend needs source_video_id or video_media_id".into())
            },
        ),
        "fusion" => {
            require(&body, &common).and(require(&body, &["image_references", "aspect_ratio"]))
        }
        other => Err(format!("unknown generate kind {other}")),
    };
    if let Err(e) = check {
        return violation(&st, e);
    }
    for id_field in [
        "img_id",
        "first_frame_img",
        "last_frame_img",
        "source_video_id",
        "video_media_id",
    ] {
        if let Some(v) = body.get(id_field)
            && !v.is_i64()
        {
            return violation(&st, format!("{id_field} must be an integer"));
        }
    }
    if !body.get("duration").is_some_and(Value::is_u64) {
        return violation(&st, "duration must be an integer".into());
    }
    if !st.control.charge() {
        return reply(
            StatusCode::OK,
            envelope(500090, "insufficient balance", json!({})),
        );
    }
    let id = st.next_id.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut v) = st.videos.lock() {
        v.insert(id, 0);
    }
    reply(
        StatusCode::OK,
        envelope(0, "success", json!({"video_id": id})),
    )
}

async fn result(State(st): State<Arc<St>>, Path(id): Path<i64>, headers: HeaderMap) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    let action = st.control.next(Endpoint::Poll);
    let status = match action {
        Some(Action::Moderation) => 7,
        Some(Action::RemoteFailed) => 8,
        Some(Action::Slow(d)) => {
            tokio::time::sleep(d).await;
            0
        }
        Some(Action::Malformed) => {
            return (StatusCode::OK, "not json at all").into_response();
        }
        Some(Action::ServerError) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                envelope(500000, "internal error", json!({})),
            );
        }
        Some(Action::RateLimit { retry_after_secs }) => {
            let mut r = reply(
                StatusCode::TOO_MANY_REQUESTS,
                envelope(429, "slow down", json!({})),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        _ => 0,
    };
    let polls = {
        let Ok(mut v) = st.videos.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        match v.get_mut(&id) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                return reply(
                    StatusCode::OK,
                    envelope(400032, "video not found", json!({})),
                );
            }
        }
    };
    let status = if status != 0 {
        status
    } else if polls >= st.control.polls_needed() {
        1
    } else {
        5
    };
    // "7 moderation failed (credits refunded)".
    if status == 7 && st.refunded.lock().is_ok_and(|mut r| r.insert(id)) {
        st.control.refund();
    }
    let base = st.base.lock().map(|b| b.clone()).unwrap_or_default();
    let url = if status == 1 {
        format!("{base}/media/video-{id}.gif")
    } else {
        String::new()
    };
    reply(
        StatusCode::OK,
        envelope(
            0,
            "success",
            json!({"id": id, "status": status, "url": url, "prompt": "", "seed": 0,
                   "outputWidth": 16, "outputHeight": 16, "size": st.gif.len(),
                   "create_time": "2026-01-01 00:00:00", "modify_time": "2026-01-01 00:00:00"}),
        ),
    )
}

/// `GET /openapi/v2/account/balance` → `Resp{account_id, credit_monthly, credit_package}`
/// (the tracked balance of [`Control::set_balance`], else 100 + 50).
async fn balance(State(st): State<Arc<St>>, headers: HeaderMap) -> Response {
    if let Some(r) = st.check(&headers) {
        return r;
    }
    if let Some(r) = st.scripted(Endpoint::Balance).await {
        return r;
    }
    let (monthly, package) = st
        .control
        .balance()
        .map_or((100, 50), |b| (b.monthly, b.package));
    reply(
        StatusCode::OK,
        envelope(
            0,
            "success",
            json!({"account_id": 1, "credit_monthly": monthly, "credit_package": package}),
        ),
    )
}

async fn media(State(st): State<Arc<St>>, Path(_name): Path<String>) -> Response {
    match st.control.next(Endpoint::Content) {
        Some(Action::ServerError) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Action::Malformed) => (StatusCode::OK, "<html>not media</html>").into_response(),
        Some(Action::Slow(d)) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, st.gif.clone()).into_response()
        }
        _ => (
            StatusCode::OK,
            [("content-type", "image/gif")],
            st.gif.clone(),
        )
            .into_response(),
    }
}

/// Starts a Pixverse fake accepting `api_key`.
pub async fn start(api_key: &str) -> std::io::Result<FakeServer> {
    let control = Arc::new(Control::default());
    control.set_polls_until_done(1);
    let st = Arc::new(St {
        api_key: api_key.to_owned(),
        control: control.clone(),
        next_id: AtomicI64::new(300_000_000_001),
        videos: Mutex::new(HashMap::new()),
        refunded: Mutex::new(HashSet::new()),
        base: Mutex::new(String::new()),
        gif: sample_gif(7),
    });
    let router = Router::new()
        .route("/openapi/v2/{kind}/upload", post(upload))
        .route("/openapi/v2/video/{kind}/generate", post(generate))
        .route("/openapi/v2/video/result/{id}", get(result))
        .route("/openapi/v2/account/balance", get(balance))
        .route("/media/{name}", get(media))
        .with_state(st.clone());
    let server = serve(router, control).await?;
    if let Ok(mut b) = st.base.lock() {
        *b = server.base_url();
    }
    Ok(server)
}
