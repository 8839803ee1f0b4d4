//! A contract fake of Replicate's predictions API (`/v1`), as `docs/providers.md`
//! describes it: create (`POST /v1/models/{owner}/{name}/predictions`, and
//! `POST /v1/predictions` with a `version`), get (`GET /v1/predictions/{id}`: `starting`,
//! then `processing` with tqdm-style progress in `logs`, then `succeeded` with an output
//! URL this server serves, under `/delivery/…`), cancel
//! (`POST /v1/predictions/{id}/cancel`), `Authorization: Bearer` (or the older `Token`),
//! `Prefer: wait[=n]`, problem-details errors (401, 402, 404, 422, 429 with
//! `Retry-After`, 5xx), and a prediction refused by the safety checker (`failed`, its
//! error flagged as sensitive, `E005`). Webhooks: a create naming `webhook` has its
//! prediction finish [`WEBHOOK_AFTER`] later and the final prediction POSTed to that
//! URL, signed the Standard Webhooks way with [`WEBHOOK_SECRET`], which
//! `GET /v1/webhooks/default/secret` returns. Files: `POST /v1/files` (multipart
//! `content`) answers with the file's `urls.get`, which an image input may name; an
//! inline data URL over 1 MB is recorded as a violation (the Files API is for those).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Action, Control, Endpoint, FakeServer, sample_gif, serve};

/// The error text of a prediction the safety checker refused.
pub const SENSITIVE: &str =
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)";
/// The error text of a prediction that failed (out of memory).
pub const OOM: &str = "CUDA out of memory. Tried to allocate 2.00 GiB (E1001)";

/// The account's webhook signing secret (`GET /v1/webhooks/default/secret`).
pub const WEBHOOK_SECRET: &str = "whsec_cGl4c2ltLWZha2UtcmVwbGljYXRlLXdlYmhvb2sta2V5IQ==";

/// How long after its create a prediction that asked for a webhook finishes.
pub const WEBHOOK_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// Replicate recommends data URLs only for files below this size (1 MB).
const DATA_URL_RECOMMENDED: usize = 1_000_000;

/// The events `webhook_events_filter` may name.
const WEBHOOK_EVENTS: [&str; 4] = ["start", "output", "logs", "completed"];

/// Models the fake runs by `owner/name` (official models).
pub const MODELS: &[&str] = &["wan-video/wan-2.5-t2v", "wan-video/wan-2.5-i2v"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Succeed,
    Moderated,
    Fail,
}

struct Prediction {
    obj: Value,
    polls: usize,
    fate: Fate,
}

struct St {
    api_key: String,
    control: Arc<Control>,
    next: AtomicU64,
    predictions: Mutex<HashMap<String, Prediction>>,
    /// Uploaded files (`POST /v1/files`): id → (content type, size).
    files: Mutex<HashMap<String, (String, usize)>>,
    video: Vec<u8>,
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({"title": title, "detail": detail, "status": status.as_u16()})),
    )
        .into_response()
}

fn throttled(retry_after_secs: u64) -> Response {
    let mut r = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        &format!("Request was throttled. Expected available in {retry_after_secs} second."),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

fn unauthenticated() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "Unauthenticated",
        "You did not pass a valid authentication token",
    )
}

fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not found",
        "The requested resource could not be found.",
    )
}

fn is_terminal(status: &Value) -> bool {
    matches!(
        status.as_str(),
        Some("succeeded" | "failed" | "canceled" | "aborted")
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl St {
    fn violation(&self, v: String) {
        self.control.with_record(|r| r.violations.push(v));
    }

    /// `Authorization: Bearer <token>` (or the older `Token <token>`).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        [
            format!("Bearer {}", self.api_key),
            format!("Token {}", self.api_key),
        ]
        .contains(&auth.to_owned())
    }

    /// Scripted answers shared by the endpoints; `Ok(None)` continues normally,
    /// `Ok(Some(fate))` changes the prediction's fate.
    async fn scripted(&self, ep: Endpoint) -> Result<Option<Fate>, Response> {
        let Some(action) = self.control.next(ep) else {
            return Ok(None);
        };
        match action {
            Action::RateLimit { retry_after_secs } => Err(throttled(retry_after_secs)),
            // Replicate has no separate concurrency answer: it throttles.
            Action::ConcurrencyLimit => Err(throttled(1)),
            Action::OutOfCredits => Err(problem(
                StatusCode::PAYMENT_REQUIRED,
                "Insufficient credit",
                "You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing to purchase credit.",
            )),
            Action::ServerError => Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "The service is temporarily unavailable.",
            )),
            Action::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
            Action::Malformed => Err((StatusCode::OK, "{\"id\": ").into_response()),
            Action::Unauthorized => Err(unauthenticated()),
            Action::Moderation => Ok(Some(Fate::Moderated)),
            Action::RemoteFailed => Ok(Some(Fate::Fail)),
        }
    }

    /// Checks the model input against the model's schema (422 as Replicate answers).
    fn check_input(&self, model: &str, body: &Value) -> Option<Response> {
        let Some(input) = body.get("input").and_then(Value::as_object) else {
            return Some(self.invalid("input: input is required"));
        };
        let prompt = input.get("prompt").and_then(Value::as_str).unwrap_or("");
        if prompt.trim().is_empty() {
            return Some(self.invalid("input.prompt: prompt is required"));
        }
        if let Some(d) = input.get("duration")
            && !matches!(d.as_u64(), Some(5 | 10))
        {
            return Some(self.invalid("input.duration: must be one of [5, 10]"));
        }
        if model.ends_with("i2v") {
            let image = input.get("image").and_then(Value::as_str).unwrap_or("");
            let data_url = image.starts_with("data:") && image.contains(";base64,");
            if !(data_url || image.starts_with("https://") || image.starts_with("http://")) {
                return Some(self.invalid("input.image: a URL or a data URL is required"));
            }
            if data_url && image.len() > DATA_URL_RECOMMENDED * 4 / 3 + 64 {
                self.violation(format!(
                    "a data URL of {} characters: files over 1 MB go through the Files API",
                    image.len()
                ));
            }
            // One of our files: it must exist.
            if let Some((_, id)) = image.split_once("/v1/files/")
                && !self.files.lock().is_ok_and(|f| f.contains_key(id))
            {
                return Some(self.invalid("input.image: file not found"));
            }
            if let Some(r) = input.get("resolution")
                && !matches!(r.as_str(), Some("480p" | "720p" | "1080p"))
            {
                return Some(self.invalid("input.resolution: must be one of 480p, 720p, 1080p"));
            }
        } else if let Some(size) = input.get("size") {
            let ok = size
                .as_str()
                .and_then(|s| s.split_once('*'))
                .is_some_and(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok());
            if !ok {
                return Some(self.invalid("input.size: must be width*height"));
            }
        }
        None
    }

    fn invalid(&self, what: &str) -> Response {
        self.violation(format!("invalid input: {what}"));
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            &format!("- {what}"),
        )
    }
}

/// `POST /v1/models/{owner}/{name}/predictions`.
async fn create_official(
    State(st): State<Arc<St>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let model = format!("{owner}/{name}");
    if !MODELS.contains(&model.as_str()) {
        if st.authorized(&headers) {
            st.violation(format!("unknown model {model}"));
            return not_found();
        }
        return unauthenticated();
    }
    create(st, headers, body, model, None).await
}

/// `POST /v1/predictions` with `version` (a community model's version).
async fn create_version(State(st): State<Arc<St>>, headers: HeaderMap, body: Bytes) -> Response {
    let version = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_owned))
        .filter(|v| !v.is_empty());
    let Some(version) = version else {
        if !st.authorized(&headers) {
            return unauthenticated();
        }
        return st.invalid("version: version is required");
    };
    create(
        st,
        headers,
        body,
        "community/wan-i2v-or-t2v".into(),
        Some(version),
    )
    .await
}

async fn create(
    st: Arc<St>,
    headers: HeaderMap,
    body: Bytes,
    model: String,
    version: Option<String>,
) -> Response {
    if !st.authorized(&headers) {
        return unauthenticated();
    }
    let prefer = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(p) = &prefer {
        let ok = p == "wait"
            || p.strip_prefix("wait=")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| (1..=60).contains(&n));
        if !ok {
            st.violation(format!("bad Prefer header {p:?}"));
        }
    }
    let json_ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json_ct {
        st.violation("create without a JSON content type".into());
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        st.violation("create with a body that is not JSON".into());
        return problem(StatusCode::BAD_REQUEST, "Bad request", "malformed JSON");
    };
    st.control.with_record(|r| {
        r.submits
            .push(json!({"model": model, "version": version, "prefer": prefer, "body": body}))
    });
    let fate = match st.scripted(Endpoint::Submit).await {
        Ok(f) => f.unwrap_or(Fate::Succeed),
        Err(r) => return r,
    };
    // The version route's model takes either input shape: check it by its image.
    let schema = if version.is_some() && body["input"].get("image").is_some() {
        "i2v"
    } else {
        model.as_str()
    };
    if let Some(r) = st.check_input(schema, &body) {
        return r;
    }
    let id = format!("fk{:024x}", st.next.fetch_add(1, Ordering::SeqCst));
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let api = format!("http://{host}/v1/predictions/{id}");
    let obj = json!({
        "id": id,
        "model": model,
        "version": version.unwrap_or_else(|| "hidden".into()),
        "input": body["input"],
        "logs": "",
        "output": null,
        "data_removed": false,
        "error": null,
        "status": "starting",
        "created_at": now(),
        "urls": {"get": api, "cancel": format!("{api}/cancel"), "web": format!("http://{host}/p/{id}")},
    });
    if let Ok(mut p) = st.predictions.lock() {
        p.insert(
            id.clone(),
            Prediction {
                obj: obj.clone(),
                polls: 0,
                fate,
            },
        );
    }
    if let Some(url) = body.get("webhook") {
        match url.as_str() {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                let events = body.get("webhook_events_filter");
                let known = events.is_none_or(|e| {
                    e.as_array().is_some_and(|a| {
                        a.iter()
                            .all(|v| v.as_str().is_some_and(|v| WEBHOOK_EVENTS.contains(&v)))
                    })
                });
                if !known {
                    st.violation(format!("webhook_events_filter {events:?}"));
                }
                tokio::spawn(send_webhook(
                    st.clone(),
                    id,
                    host.to_owned(),
                    url.to_owned(),
                ));
            }
            _ => st.violation(format!("webhook {url:?} is not an http(s) URL")),
        }
    }
    (StatusCode::CREATED, axum::Json(obj)).into_response()
}

/// Finishes the prediction [`WEBHOOK_AFTER`] after its create and POSTs it, signed, to
/// its webhook (once: the fake does not retry).
async fn send_webhook(st: Arc<St>, id: String, host: String, url: String) {
    tokio::time::sleep(WEBHOOK_AFTER).await;
    let body = {
        let Ok(mut all) = st.predictions.lock() else {
            return;
        };
        let Some(p) = all.get_mut(&id) else { return };
        if !is_terminal(&p.obj["status"]) {
            finish(p, &host, &id);
        }
        p.obj.to_string()
    };
    let msg_id = format!("msg_{id}");
    let ts = chrono::Utc::now().timestamp();
    let Ok(key) = crate::webhooks::sign::secret_key(WEBHOOK_SECRET) else {
        return;
    };
    let Ok(sig) = crate::webhooks::sign::sign(&key, &msg_id, ts, body.as_bytes()) else {
        return;
    };
    let status = match reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    };
    st.control.with_record(|r| r.webhooks.push((url, status)));
}

/// `POST /v1/files`: a multipart upload whose `content` part is the file (with its
/// filename and content type); 201 with the file object, `urls.get` its URL for
/// prediction inputs.
async fn upload_file(State(st): State<Arc<St>>, headers: HeaderMap, mut mp: Multipart) -> Response {
    if !st.authorized(&headers) {
        return unauthenticated();
    }
    let mut file: Option<(String, String, usize)> = None;
    while let Ok(Some(field)) = mp.next_field().await {
        if field.name() != Some("content") {
            continue;
        }
        let name = field.file_name().unwrap_or_default().to_owned();
        let ct = field.content_type().unwrap_or_default().to_owned();
        let Ok(bytes) = field.bytes().await else {
            return problem(StatusCode::BAD_REQUEST, "Bad request", "unreadable content");
        };
        file = Some((name, ct, bytes.len()));
    }
    let Some((name, ct, size)) = file else {
        st.violation("a file upload without a content part".into());
        return problem(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "content is required",
        );
    };
    if name.is_empty() || ct.is_empty() {
        st.violation(format!(
            "a file part without a filename or type ({name:?}, {ct:?})"
        ));
    }
    let id = format!("file{:020x}", st.next.fetch_add(1, Ordering::SeqCst));
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    if let Ok(mut f) = st.files.lock() {
        f.insert(id.clone(), (ct.clone(), size));
    }
    st.control.with_record(|r| {
        r.submits
            .push(json!({"file": {"id": id, "name": name, "content_type": ct, "size": size}}))
    });
    let obj = json!({
        "id": id,
        "name": name,
        "content_type": ct,
        "size": size,
        "etag": "fake",
        "checksums": {},
        "metadata": {},
        "created_at": now(),
        "expires_at": (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339(),
        "urls": {"get": format!("http://{host}/v1/files/{id}")},
    });
    (StatusCode::CREATED, axum::Json(obj)).into_response()
}

/// `GET /v1/webhooks/default/secret`: the account's signing secret.
async fn webhook_secret(State(st): State<Arc<St>>, headers: HeaderMap) -> Response {
    if !st.authorized(&headers) {
        return unauthenticated();
    }
    (StatusCode::OK, axum::Json(json!({"key": WEBHOOK_SECRET}))).into_response()
}

/// A prediction's end, by its fate.
fn finish(p: &mut Prediction, host: &str, id: &str) {
    p.obj["completed_at"] = json!(now());
    p.obj["started_at"] = json!(now());
    p.obj["metrics"] = json!({"predict_time": 41.2, "total_time": 45.0});
    match p.fate {
        Fate::Succeed => {
            p.obj["status"] = json!("succeeded");
            p.obj["logs"] = json!(logs_at(100));
            p.obj["output"] = json!(format!("http://{host}/delivery/{id}/output.mp4"));
        }
        Fate::Moderated => {
            p.obj["status"] = json!("failed");
            p.obj["error"] = json!(SENSITIVE);
        }
        Fate::Fail => {
            p.obj["status"] = json!("failed");
            p.obj["error"] = json!(OOM);
            p.obj["logs"] = json!(logs_at(25));
        }
    }
}

/// tqdm-style logs at `pct` percent.
fn logs_at(pct: usize) -> String {
    let mut logs = String::from("Loading pipeline...\n");
    for p in (0..=pct).step_by(25) {
        logs.push_str(&format!(
            "{p:3}%|{:<10}| {}/40\n",
            "#".repeat(p / 10),
            p * 40 / 100
        ));
    }
    if !pct.is_multiple_of(25) {
        logs.push_str(&format!(
            "{pct:3}%|{:<10}| {}/40\n",
            "#".repeat(pct / 10),
            pct * 40 / 100
        ));
    }
    logs
}

/// `GET /v1/predictions/{id}`.
async fn get_prediction(
    State(st): State<Arc<St>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !st.authorized(&headers) {
        return unauthenticated();
    }
    let scripted = match st.scripted(Endpoint::Poll).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let needed = st.control.polls_needed();
    let Ok(mut all) = st.predictions.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(p) = all.get_mut(&id) else {
        return not_found();
    };
    if let Some(f) = scripted {
        p.fate = f;
    }
    if is_terminal(&p.obj["status"]) {
        return (StatusCode::OK, axum::Json(p.obj.clone())).into_response();
    }
    p.polls += 1;
    let done = p.polls >= needed || p.fate != Fate::Succeed;
    if done {
        finish(p, &host, &id);
    } else if p.polls > 1 {
        p.obj["status"] = json!("processing");
        p.obj["started_at"] = json!(now());
        p.obj["logs"] = json!(logs_at((p.polls - 1) * 100 / needed));
    }
    (StatusCode::OK, axum::Json(p.obj.clone())).into_response()
}

/// `POST /v1/predictions/{id}/cancel`: a running prediction becomes `canceled`; one
/// already finished is answered as it is.
async fn cancel(State(st): State<Arc<St>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !st.authorized(&headers) {
        return unauthenticated();
    }
    if let Err(r) = st.scripted(Endpoint::Cancel).await {
        return r;
    }
    let Ok(mut all) = st.predictions.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(p) = all.get_mut(&id) else {
        return not_found();
    };
    if !is_terminal(&p.obj["status"]) {
        p.obj["status"] = json!("canceled");
        p.obj["completed_at"] = json!(now());
    }
    (StatusCode::OK, axum::Json(p.obj.clone())).into_response()
}

/// The output file of a succeeded prediction (Replicate serves these from its
/// delivery CDN, without the API token).
async fn delivery(State(st): State<Arc<St>>, Path(id): Path<String>) -> Response {
    if let Err(r) = st.scripted(Endpoint::Content).await {
        return r;
    }
    let ok = st
        .predictions
        .lock()
        .ok()
        .and_then(|p| p.get(&id).map(|p| p.obj["status"] == "succeeded"))
        .unwrap_or(false);
    if !ok {
        return not_found();
    }
    (
        StatusCode::OK,
        [("content-type", "image/gif")],
        st.video.clone(),
    )
        .into_response()
}

/// `GET /v1`: no resource (a reachability probe gets this 404).
async fn root(State(st): State<Arc<St>>) -> Response {
    if let Err(r) = st.scripted(Endpoint::Root).await {
        return r;
    }
    not_found()
}

/// Starts a Replicate fake accepting `api_key`; the adapter's base URL is
/// `base_url() + "/v1"`. Predictions succeed at the third poll by default
/// (`set_polls_until_done`).
pub async fn start(api_key: &str) -> std::io::Result<FakeServer> {
    let control = Arc::new(Control::default());
    control.set_polls_until_done(3);
    let st = Arc::new(St {
        api_key: api_key.to_owned(),
        control: control.clone(),
        next: AtomicU64::new(1),
        predictions: Mutex::new(HashMap::new()),
        files: Mutex::new(HashMap::new()),
        video: sample_gif(23),
    });
    let router = Router::new()
        .route(
            "/v1/models/{owner}/{name}/predictions",
            post(create_official),
        )
        .route("/v1/predictions", post(create_version))
        .route("/v1/predictions/{id}", get(get_prediction))
        .route("/v1/predictions/{id}/cancel", post(cancel))
        .route("/delivery/{id}/output.mp4", get(delivery))
        .route("/v1/webhooks/default/secret", get(webhook_secret))
        .route("/v1/files", post(upload_file))
        .route("/v1", get(root))
        .with_state(st);
    serve(router, control).await
}
