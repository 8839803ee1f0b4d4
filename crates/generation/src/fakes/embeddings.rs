//! A contract fake of an OpenAI-compatible embeddings server (`POST /v1/embeddings`):
//! Bearer authentication, `{"model", "input": string | [string], "encoding_format"}`
//! → `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
//! "model", "usage"}`, 401 for a wrong key, 400 for a malformed body, 404 for an
//! unknown model.
//!
//! Its model, [`MODEL`], embeds texts and images into one small space of colours, as a
//! CLIP-like model would into a space of meanings: a text by the colour words it names
//! (red, orange, yellow, green, cyan, blue, purple, pink), an image (a `data:` URL of
//! a PNG) by its pixels' hues. So "a red square" lies near a red picture.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};

use super::{Control, Endpoint, FakeServer, serve};

/// The model the fake serves.
pub const MODEL: &str = "fake-colour-clip";

const HUES: [(&str, f32); 8] = [
    ("red", 0.0),
    ("orange", 30.0),
    ("yellow", 60.0),
    ("green", 120.0),
    ("cyan", 180.0),
    ("blue", 240.0),
    ("purple", 280.0),
    ("pink", 330.0),
];

struct St {
    api_key: String,
    control: Arc<Control>,
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}

/// Weight per colour word for a hue in degrees (soft: the two nearest share it).
fn by_hue(h: f32, weight: f32, v: &mut [f32; 8]) {
    for (i, (_, c)) in HUES.iter().enumerate() {
        let d = ((h - c).abs() % 360.0).min(360.0 - (h - c).abs() % 360.0);
        v[i] += weight * (1.0 - d / 60.0).max(0.0);
    }
}

fn embed_text(t: &str) -> [f32; 8] {
    let t = t.to_ascii_lowercase();
    let mut v = [0.01f32; 8];
    for (i, (word, _)) in HUES.iter().enumerate() {
        if t.contains(word) {
            v[i] += 1.0;
        }
    }
    v
}

fn embed_png(png: &[u8]) -> Option<[f32; 8]> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).ok()?;
    let channels = info.color_type.samples();
    let mut v = [0.01f32; 8];
    for px in buf[..info.buffer_size()].chunks_exact(channels) {
        if channels < 3 {
            continue;
        }
        let (r, g, b) = (
            f32::from(px[0]) / 255.0,
            f32::from(px[1]) / 255.0,
            f32::from(px[2]) / 255.0,
        );
        let max = r.max(g).max(b);
        let min = r.min(g).min(b);
        let sat = if max > 0.0 { (max - min) / max } else { 0.0 };
        if sat < 0.2 {
            continue;
        }
        let d = max - min;
        let h = if max == r {
            60.0 * ((g - b) / d).rem_euclid(6.0)
        } else if max == g {
            60.0 * ((b - r) / d + 2.0)
        } else {
            60.0 * ((r - g) / d + 4.0)
        };
        by_hue(h, sat, &mut v);
    }
    Some(v)
}

async fn embeddings(State(st): State<Arc<St>>, headers: HeaderMap, body: Bytes) -> Response {
    st.control
        .with_record(|r| *r.counts.entry(Endpoint::Submit).or_default() += 1);
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if key != Some(st.api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    if req["model"] != MODEL {
        return error(StatusCode::NOT_FOUND, "The model does not exist");
    }
    let inputs: Vec<String> = match &req["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "input must be a string or a list of strings",
            );
        }
    };
    if let Some(f) = req.get("encoding_format")
        && f != "float"
    {
        st.control
            .with_record(|r| r.violations.push(format!("encoding_format {f}")));
    }
    let mut data = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let v = match input.strip_prefix("data:image/png;base64,") {
            Some(b64) => {
                let Some(v) = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|png| embed_png(&png))
                else {
                    return error(StatusCode::BAD_REQUEST, "an image that is not a PNG");
                };
                v
            }
            None => embed_text(input),
        };
        data.push(json!({"object": "embedding", "index": i, "embedding": v}));
    }
    st.control
        .with_record(|r| r.submits.push(json!({"inputs": inputs.len()})));
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": MODEL,
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }))
    .into_response()
}

/// Starts the fake accepting `api_key`; the embedder's base URL is
/// `base_url() + "/v1"`.
pub async fn start(api_key: &str) -> std::io::Result<FakeServer> {
    let control = Arc::new(Control::default());
    let st = Arc::new(St {
        api_key: api_key.to_owned(),
        control: control.clone(),
    });
    let router = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(st);
    serve(router, control).await
}
