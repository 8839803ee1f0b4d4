//! Assets over REST (upload, list, get, file with Range, lineage, visibility) and the
//! generation events WebSocket.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tests::{TestServer, error_code};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A valid 3×2 RGB PNG (red pixels).
const PNG: [u8; 73] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0x12, 0x16, 0xf1,
    0x4d, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x41, 0x0c, 0x70, 0x16, 0x00, 0x41, 0xd2, 0x05, 0xfb, 0x87, 0xf0, 0xb9, 0x48, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

pub(crate) const BOUNDARY: &str = "pixsim-test-boundary-7f3a";

/// A multipart/form-data body with one part (`name`, optional part content type).
pub(crate) fn multipart(name: &str, bytes: &[u8], content_type: Option<&str>) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"upload.bin\"\r\n"
    )
    .into_bytes();
    if let Some(ct) = content_type {
        body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload_raw(
    t: &TestServer,
    token: Option<&str>,
    body: Vec<u8>,
    content_type: &str,
) -> Response {
    let mut req = t
        .http
        .post(t.url("/api/v1/assets/upload"))
        .header(CONTENT_TYPE, content_type)
        .body(body);
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    req.send().await.unwrap()
}

/// Uploads a file as the `file` field; returns status, JSON body and the Location.
pub(crate) async fn upload(
    t: &TestServer,
    token: &str,
    bytes: &[u8],
    part_type: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let res = upload_raw(
        t,
        Some(token),
        multipart("file", bytes, part_type),
        &format!("multipart/form-data; boundary={BOUNDARY}"),
    )
    .await;
    let status = res.status();
    let location = res
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap(), location)
}

async fn upload_png(t: &TestServer, token: &str) -> Value {
    let (s, asset, _) = upload(t, token, &PNG, Some("image/png")).await;
    assert_eq!(s, StatusCode::CREATED, "{asset}");
    asset
}

async fn get_file(t: &TestServer, token: &str, path: &str, range: Option<&str>) -> Response {
    let mut req = t.http.get(t.url(path)).bearer_auth(token);
    if let Some(r) = range {
        req = req.header(RANGE, r);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn upload_list_get_and_visibility() {
    let t = TestServer::start().await;
    let ann = t.user("ann@example.com").await;
    let bob = t.user("bob@example.com").await;
    let admin = t.admin("root@example.com").await;

    let (s, asset, location) = upload(&t, &ann, &PNG, Some("image/png")).await;
    assert_eq!(s, StatusCode::CREATED, "{asset}");
    let id = asset["id"].as_str().unwrap().to_owned();
    assert_eq!(location.as_deref(), Some(&*format!("/api/v1/assets/{id}")));
    assert_eq!(asset["media_type"], "image");
    assert_eq!(asset["mime"], "image/png");
    assert_eq!(asset["size_bytes"], PNG.len());
    assert_eq!(asset["width"], 3);
    assert_eq!(asset["height"], 2);
    assert_eq!(asset["origin"], "uploaded");
    assert_eq!(asset["has_thumbnail"], true);
    assert_eq!(asset["content_hash"].as_str().unwrap().len(), 64);
    let (_, me) = t.get("/api/v1/users/me", Some(&ann)).await;
    assert_eq!(asset["owner_id"], me["id"]);

    // The owner sees it, in the list and alone.
    let (s, got) = t.get(&format!("/api/v1/assets/{id}"), Some(&ann)).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got, asset);
    let (s, page) = t.get("/api/v1/assets", Some(&ann)).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], id);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["limit"], 50);
    // Filters and pagination.
    let (_, page) = t
        .get(
            "/api/v1/assets?media_type=image&origin=uploaded",
            Some(&ann),
        )
        .await;
    assert_eq!(page["total"], 1);
    let (_, page) = t.get("/api/v1/assets?media_type=video", Some(&ann)).await;
    assert_eq!(page["total"], 0);
    let (_, page) = t.get("/api/v1/assets?offset=1&limit=1", Some(&ann)).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    assert_eq!(page["limit"], 1);
    let (s, body) = t
        .get("/api/v1/assets?media_type=hologram", Some(&ann))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "invalid_query");

    // Lineage of an upload: no parents, no children.
    let (s, lin) = t
        .get(&format!("/api/v1/assets/{id}/lineage"), Some(&ann))
        .await;
    assert_eq!(s, StatusCode::OK, "{lin}");
    assert_eq!(lin, json!({"asset_id": id, "parents": [], "children": []}));

    // Another user: as if it did not exist; their own list is empty, even when asking
    // for ann's assets.
    for path in [
        format!("/api/v1/assets/{id}"),
        format!("/api/v1/assets/{id}/file"),
        format!("/api/v1/assets/{id}/thumbnail"),
        format!("/api/v1/assets/{id}/lineage"),
    ] {
        let (s, body) = t.get(&path, Some(&bob)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(error_code(&body), "not_found");
    }
    let (_, page) = t
        .get(
            &format!("/api/v1/assets?owner_id={}", me["id"].as_str().unwrap()),
            Some(&bob),
        )
        .await;
    assert_eq!(page["total"], 0);

    // Admins see everything, and can filter by owner.
    let (s, got) = t.get(&format!("/api/v1/assets/{id}"), Some(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["id"], id);
    let (_, page) = t
        .get(
            &format!("/api/v1/assets?owner_id={}", me["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_eq!(page["total"], 1);
    let res = get_file(&t, &admin, &format!("/api/v1/assets/{id}/file"), None).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Unknown ids and no token.
    let (s, body) = t
        .get(
            &format!("/api/v1/assets/{}", uuid::Uuid::new_v4()),
            Some(&ann),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    let (s, body) = t.get("/api/v1/assets", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    t.stop().await;
}

/// `[generation] max_upload_bytes` of the validation test: above the global 1 MiB JSON
/// body limit, so the test also shows that limit does not apply to uploads.
const UPLOAD_LIMIT: u64 = 1536 * 1024;

#[tokio::test]
async fn uploads_are_validated() {
    let t = TestServer::start_with(|c| c.generation.max_upload_bytes = UPLOAD_LIMIT).await;
    assert_eq!(
        t.server.state.generation.config().max_upload_bytes,
        UPLOAD_LIMIT
    );
    let ann = t.user("ann@example.com").await;

    // Not a known media format.
    let (s, body, _) = upload(&t, &ann, b"certainly not an image", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "validation_failed");
    assert_eq!(body["error"]["details"]["code"], "invalid_media");
    // The declared kind must match the content.
    let (s, body, _) = upload(&t, &ann, &PNG, Some("video/mp4")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["code"], "invalid_media");
    // Empty.
    let (s, body, _) = upload(&t, &ann, b"", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // No `file` field.
    let (s, body, _) = {
        let res = upload_raw(
            &t,
            Some(&ann),
            multipart("picture", &PNG, None),
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .await;
        (res.status(), res.json::<Value>().await.unwrap(), ())
    };
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "validation_failed");
    // Not multipart.
    let res = upload_raw(&t, Some(&ann), PNG.to_vec(), "image/png").await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "unsupported_media_type");
    // Malformed multipart.
    let res = upload_raw(
        &t,
        Some(&ann),
        b"--nope\r\n\r\ngarbage".to_vec(),
        &format!("multipart/form-data; boundary={BOUNDARY}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_multipart");
    // No token.
    let res = upload_raw(
        &t,
        None,
        multipart("file", &PNG, None),
        &format!("multipart/form-data; boundary={BOUNDARY}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Larger than the configured limit: a valid PNG header followed by padding, one
    // byte too many.
    let max = UPLOAD_LIMIT as usize;
    let mut big = PNG.to_vec();
    big.resize(max + 1, 0);
    let (s, body, _) = upload(&t, &ann, &big, Some("image/png")).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");
    // A declared length far over the limit is refused before the body is read.
    big.resize(max + 1024 * 1024, 0);
    let (s, body, _) = upload(&t, &ann, &big, None).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");
    drop(big);
    // A file over the global 1 MiB JSON limit but exactly at the upload limit is
    // accepted.
    let mut ok = PNG.to_vec();
    ok.resize(max, 0);
    let (s, body, _) = upload(&t, &ann, &ok, None).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["size_bytes"], ok.len());

    // Nothing else was stored.
    let (_, page) = t.get("/api/v1/assets", Some(&ann)).await;
    assert_eq!(page["total"], 1, "{page}");
    t.stop().await;
}

#[tokio::test]
async fn file_download_supports_ranges() {
    let t = TestServer::start().await;
    let ann = t.user("ann@example.com").await;
    let asset = upload_png(&t, &ann).await;
    let path = format!("/api/v1/assets/{}/file", asset["id"].as_str().unwrap());

    let res = get_file(&t, &ann, &path, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        res.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", asset["content_hash"].as_str().unwrap())
    );
    let etag = res.headers()["etag"].clone();
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG.as_slice());
    let res = t
        .http
        .get(t.url(&path))
        .bearer_auth(&ann)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    let res = get_file(&t, &ann, &path, Some("bytes=0-3")).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(
        res.headers()[CONTENT_RANGE],
        format!("bytes 0-3/{}", PNG.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &PNG[..4]);

    // A suffix range: the last 4 bytes (the end of IEND).
    let res = get_file(&t, &ann, &path, Some("bytes=-4")).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &PNG[PNG.len() - 4..]);

    // A range past the end: 416, saying the size.
    let res = get_file(&t, &ann, &path, Some("bytes=1000-2000")).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        res.headers()[CONTENT_RANGE],
        format!("bytes */{}", PNG.len()).as_str()
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "range_not_satisfiable");
    // A Range the server cannot take (several ranges, another unit, garbage) is
    // ignored: the whole file, as RFC 9110 §14.2 says.
    for range in [
        "bytes=0-1,4-5",
        "items=0-3",
        "bytes=4-1",
        "bytes=x-",
        "nonsense",
    ] {
        let res = get_file(&t, &ann, &path, Some(range)).await;
        assert_eq!(res.status(), StatusCode::OK, "{range}");
        assert!(!res.headers().contains_key(CONTENT_RANGE), "{range}");
        assert_eq!(
            res.bytes().await.unwrap().as_ref(),
            PNG.as_slice(),
            "{range}"
        );
    }

    // An uploaded image has a thumbnail: the image, never enlarged.
    let thumb = format!("/api/v1/assets/{}/thumbnail", asset["id"].as_str().unwrap());
    let res = get_file(&t, &ann, &thumb, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(png_size(&res.bytes().await.unwrap()), (3, 2));
    t.stop().await;
}

/// Width and height from a PNG's IHDR.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], &PNG[..8], "a PNG signature");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test]
async fn an_uploaded_video_is_probed_from_its_boxes_and_gets_a_poster_thumbnail() {
    use generation::render::{DEFAULT_CRF, Ffmpeg, RenderSpec, render};
    let t = TestServer::start().await;
    let ann = t.user("ann@example.com").await;
    let bob = t.user("bob@example.com").await;
    let clip = render(
        &Ffmpeg::locate().unwrap(),
        &RenderSpec {
            operation: generation::model::Operation::TextToVideo,
            prompt: "an upload".into(),
            seed: 1,
            width: 640,
            height: 360,
            fps: 24,
            frames: 36,
            fast: false,
            crf: DEFAULT_CRF,
            inputs: Vec::new(),
        },
    )
    .unwrap();
    let (s, asset, _) = upload(&t, &ann, &clip.mp4, Some("video/mp4")).await;
    assert_eq!(s, StatusCode::CREATED, "{asset}");
    assert_eq!(asset["media_type"], "video");
    assert_eq!(asset["mime"], "video/mp4");
    assert_eq!(
        (&asset["width"], &asset["height"]),
        (&json!(640), &json!(360))
    );
    assert_eq!(asset["duration_ms"], 1500);
    assert_eq!(asset["has_thumbnail"], true);
    let thumb = format!("/api/v1/assets/{}/thumbnail", asset["id"].as_str().unwrap());
    let res = get_file(&t, &ann, &thumb, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "image/png");
    // A frame of the clip, scaled to the thumbnail size.
    assert_eq!(png_size(&res.bytes().await.unwrap()), (320, 180));
    // Only as visible as the asset.
    let (s, body) = t.get(&thumb, Some(&bob)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "not_found");
    t.stop().await;
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(t: &TestServer, query: &str) -> String {
    format!(
        "{}/api/v1/ws/generations{query}",
        t.base.replacen("http://", "ws://", 1)
    )
}

pub(crate) async fn ws_with_query(t: &TestServer, token: &str) -> Ws {
    let (ws, res) = tokio_tungstenite::connect_async(ws_url(t, &format!("?token={token}")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

async fn ws_with_header(t: &TestServer, token: &str) -> Ws {
    let mut req = ws_url(t, "").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

/// The next JSON text frame (control frames skipped); panics after 30 s.
pub(crate) async fn next_event(ws: &mut Ws) -> Value {
    let deadline = Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout(deadline, ws.next())
            .await
            .expect("no event within 30 s")
            .expect("socket ended")
            .unwrap();
        match msg {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The WebSocket refusal's HTTP status and body.
async fn refused(req: impl IntoClientRequest + Unpin) -> (StatusCode, Value) {
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
            let body = res
                .body()
                .as_ref()
                .map(|b| serde_json::from_slice(b).unwrap())
                .unwrap_or(Value::Null);
            (status, body)
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the socket was accepted"),
    }
}

#[tokio::test]
async fn websocket_streams_own_generation_events() {
    let t = TestServer::start().await;
    let ann = t.user("ann@example.com").await;
    let bob = t.user("bob@example.com").await;
    let admin = t.admin("root@example.com").await;
    let mut ann_ws = ws_with_query(&t, &ann).await;
    let mut bob_ws = ws_with_header(&t, &bob).await;
    let mut admin_ws = ws_with_query(&t, &admin).await;

    let (s, job) = t
        .post(
            "/api/v1/generations",
            Some(&ann),
            json!({"operation": "text_to_video", "params": {"prompt": "a fox in the snow", "duration": 1}}),
        )
        .await;
    assert!(s.is_success(), "{s} {job}");
    let job_id = job["id"].as_str().unwrap().to_owned();

    // ann: job:created first, then (job:updated …), asset:created and job:completed.
    let first = next_event(&mut ann_ws).await;
    assert_eq!(first["type"], "job:created", "{first}");
    assert_eq!(first["generation"]["id"], job_id);
    let (mut completed, mut created_asset) = (None, None);
    while completed.is_none() || created_asset.is_none() {
        let ev = next_event(&mut ann_ws).await;
        match ev["type"].as_str().unwrap() {
            "job:updated" => assert_eq!(ev["generation"]["id"], job_id),
            "job:completed" => completed = Some(ev),
            "asset:created" => created_asset = Some(ev),
            other => panic!("unexpected event {other}: {ev}"),
        }
    }
    let completed = completed.unwrap();
    let created_asset = created_asset.unwrap();
    assert_eq!(completed["generation"]["id"], job_id);
    assert_eq!(completed["generation"]["status"], "completed");
    let asset_id = completed["asset"]["id"].as_str().unwrap().to_owned();
    assert_eq!(completed["generation"]["asset_id"], asset_id);
    assert_eq!(created_asset["asset"]["id"], asset_id);
    assert_eq!(created_asset["asset"]["origin"], "generated");

    // The admin's socket saw the same job.
    let ev = next_event(&mut admin_ws).await;
    assert_eq!(ev["type"], "job:created");
    assert_eq!(ev["generation"]["id"], job_id);

    // The generated asset is ann's, with a file and a thumbnail.
    let (s, lin) = t
        .get(&format!("/api/v1/assets/{asset_id}/lineage"), Some(&ann))
        .await;
    assert_eq!(s, StatusCode::OK, "{lin}");
    let res = get_file(&t, &ann, &format!("/api/v1/assets/{asset_id}/file"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[CONTENT_TYPE].to_str().unwrap(),
        completed["asset"]["mime"].as_str().unwrap()
    );
    assert_eq!(completed["asset"]["has_thumbnail"], true);
    let thumb = format!("/api/v1/assets/{asset_id}/thumbnail");
    let res = get_file(&t, &ann, &thumb, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "image/png");
    let png = res.bytes().await.unwrap();
    // The local provider's poster: the clip's middle frame at its size.
    assert_eq!(
        png_size(&png),
        (
            completed["asset"]["width"].as_u64().unwrap() as u32,
            completed["asset"]["height"].as_u64().unwrap() as u32
        )
    );
    let res = get_file(&t, &ann, &thumb, Some("bytes=0-7")).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), png.slice(..8));
    let (s, _) = t.get(&thumb, Some(&bob)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // bob's socket received none of ann's events: the first thing it gets is the event
    // of bob's own upload.
    let bobs = upload_png(&t, &bob).await;
    let ev = next_event(&mut bob_ws).await;
    assert_eq!(ev["type"], "asset:created", "{ev}");
    assert_eq!(ev["asset"]["id"], bobs["id"]);
    // ann does not get bob's.
    let own = upload_png(&t, &ann).await;
    let ev = next_event(&mut ann_ws).await;
    assert_eq!(ev["asset"]["id"], own["id"], "{ev}");

    // A client close is answered with a close frame, then the stream ends.
    ann_ws.close(None).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut frames = Vec::new();
        while let Some(Ok(m)) = ann_ws.next().await {
            frames.push(m);
        }
        frames
    })
    .await
    .unwrap();
    assert!(
        rest.iter()
            .all(|m| matches!(m, Message::Close(_) | Message::Text(_))),
        "{rest:?}"
    );
    drop(bob_ws);
    drop(admin_ws);
    t.stop().await;
}

#[tokio::test]
async fn websocket_refuses_bad_tokens_and_reports_lag() {
    let t = TestServer::start().await;
    let ann = t.user("ann@example.com").await;

    let (s, body) = refused(ws_url(&t, "?token=not-a-token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    let (s, body) = refused(ws_url(&t, "")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    let mut req = ws_url(&t, &format!("?token={ann}"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    let (s, _) = refused(req).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the header wins over the query"
    );
    // A logged-out token is refused.
    let gone = t.login("ann@example.com", "password123").await;
    let (s, _) = t.post("/api/v1/auth/logout", Some(&gone), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = refused(ws_url(&t, &format!("?token={gone}"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A plain GET (no upgrade) is told to upgrade.
    let res = t
        .http
        .get(t.url("/api/v1/ws/generations"))
        .bearer_auth(&ann)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "upgrade_required");

    // More events than the broadcast buffer holds, faster than the socket drains them:
    // the client is told how many it missed, and the stream goes on.
    let asset = upload_png(&t, &ann).await;
    let mut ws = ws_with_query(&t, &ann).await;
    let sender = t.server.state.generation.event_sender();
    let sent = 10_000u64;
    for _ in 0..sent {
        let ev = serde_json::from_value(json!({"type": "asset:created", "asset": asset})).unwrap();
        let _ = sender.send(ev);
    }
    let (mut missed, mut received) = (0u64, 0u64);
    while missed + received < sent {
        let ev = next_event(&mut ws).await;
        match ev["type"].as_str().unwrap() {
            "lagged" => missed += ev["missed"].as_u64().unwrap(),
            "asset:created" => received += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(missed + received, sent);
    assert!(missed > 0, "no lag reported");
    // Still streaming after the lag.
    let later = upload_png(&t, &ann).await;
    let ev = next_event(&mut ws).await;
    assert_eq!(ev["asset"]["id"], later["id"]);
    ws.send(Message::Close(None)).await.unwrap();
    t.stop().await;
}
