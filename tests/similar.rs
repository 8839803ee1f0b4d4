//! Similarity search over asset embeddings (issue #23), on the real server and
//! PostgreSQL with pgvector: every asset is embedded in the background by the built-in
//! visual embedder; `GET /api/v1/assets/{id}/similar` answers the nearest ones the
//! caller may read, and `POST /api/v1/assets/search` (by an asset) and `…/search/image`
//! (by an uploaded picture) with filters.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::TestServer;

/// Renders `prompt` with `seed` on the local provider (2 s, 360p) and returns the
/// asset id.
async fn render(t: &TestServer, token: &str, prompt: &str, seed: u64) -> String {
    render_with(t, token, prompt, seed, 2, "360p").await
}

/// Renders `prompt` with `seed` for `duration` seconds at `quality` on the local
/// provider and returns the asset id once the job is completed.
pub(crate) async fn render_with(
    t: &TestServer,
    token: &str,
    prompt: &str,
    seed: u64,
    duration: u32,
    quality: &str,
) -> String {
    let (s, job) = t
        .post(
            "/api/v1/generations",
            Some(token),
            json!({"provider": "local", "operation": "text_to_video",
                   "params": {"prompt": prompt, "seed": seed, "duration": duration, "quality": quality}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = t
            .get(&format!("/api/v1/generations/{id}"), Some(token))
            .await;
        if v["status"] == "completed" {
            return v["asset_id"].as_str().unwrap().to_owned();
        }
        assert!(v["status"] != "failed", "{v}");
        assert!(Instant::now() < deadline, "not completed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `similar` on `id`, once the asset is embedded (409 until then).
async fn similar(t: &TestServer, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = t
            .get(
                &format!("/api/v1/assets/{id}/similar?limit=10"),
                Some(token),
            )
            .await;
        if s == StatusCode::OK {
            return v;
        }
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert!(Instant::now() < deadline, "never embedded: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The file of an asset, re-encoded by ffmpeg (smaller, another quality).
async fn re_encoded(t: &TestServer, token: &str, id: &str) -> Vec<u8> {
    let bytes = t
        .http
        .get(t.url(&format!("/api/v1/assets/{id}/file")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tests::TempDir::new("reencode");
    let (src, dst) = (dir.0.join("in.mp4"), dir.0.join("out.mp4"));
    std::fs::write(&src, &bytes).unwrap();
    let ff = embedded::ffmpeg::ffmpeg().unwrap();
    let status = std::process::Command::new(ff)
        .args(["-v", "error", "-y", "-i"])
        .arg(&src)
        .args([
            "-vf",
            "scale=480:-2",
            "-c:v",
            "libx264",
            "-crf",
            "33",
            "-an",
        ])
        .arg(&dst)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(&dst).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn similar_finds_the_re_encode_nearest_and_the_unrelated_render_last() {
    let t = TestServer::start().await;
    let alice = t.user("similar@example.com").await;
    let bob = t.user("stranger@example.com").await;
    let prompt = "a lighthouse on a cliff in a storm";
    let first = render(&t, &alice, prompt, 1).await;
    let second = render(&t, &alice, prompt, 2).await;
    let third = render(&t, &alice, prompt, 3).await;
    let unrelated = render(&t, &alice, "sunflowers in a field at noon", 1).await;
    let (s, up, _) = crate::assets::upload(
        &t,
        &alice,
        &re_encoded(&t, &alice, &first).await,
        Some("video/mp4"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{up}");
    let copy = up["id"].as_str().unwrap().to_owned();
    // Bob's render of the same prompt is his: never in Alice's answers.
    let bobs = render(&t, &bob, prompt, 1).await;

    let v = similar(&t, &alice, &first).await;
    assert_eq!(v["embedder"], "visual/1");
    let items = v["items"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap())
        .collect();
    let distances: Vec<f64> = items
        .iter()
        .map(|i| i["distance"].as_f64().unwrap())
        .collect();
    eprintln!("similar to the first render: {ids:?} {distances:?}");
    // The four other assets of Alice's (bob's is not hers), nearest first.
    assert_eq!(ids.len(), 4, "{v}");
    assert!(!ids.contains(&bobs.as_str()) && !ids.contains(&first.as_str()));
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert_eq!(ids[0], copy, "the re-encode is nearest: {v}");
    assert_eq!(ids[3], unrelated, "the unrelated render is last: {v}");
    assert!(ids[1..3].contains(&second.as_str()) && ids[1..3].contains(&third.as_str()));

    // The same by POST /search with the asset's id, and with filters.
    let (s, v) = t
        .post(
            "/api/v1/assets/search",
            Some(&alice),
            json!({"asset_id": first, "limit": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"][0]["asset"]["id"], copy.as_str());
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (s, v) = t
        .post(
            "/api/v1/assets/search",
            Some(&alice),
            json!({"asset_id": first, "media_type": "image"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"], json!([]), "no images: {v}");
    // A frame of the first render (its thumbnail), uploaded: the render and its copy
    // come first.
    let frame = t
        .http
        .get(t.url(&format!("/api/v1/assets/{first}/thumbnail")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let res = t
        .http
        .post(t.url("/api/v1/assets/search/image?limit=5"))
        .bearer_auth(&alice)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={}", crate::assets::BOUNDARY),
        )
        .body(crate::assets::multipart("file", &frame, Some("image/png")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let top: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap())
        .collect();
    eprintln!("by the first render's frame: {v}");
    assert!(
        top.len() == 5 && top[..2].contains(&first.as_str()) && top[..2].contains(&copy.as_str()),
        "{v}"
    );
    assert!(!top.contains(&bobs.as_str()));
    // A text needs an embedder with a text side; the visual one has none.
    let (s, v) = t
        .post(
            "/api/v1/assets/search",
            Some(&alice),
            json!({"text": "a lighthouse"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .post("/api/v1/assets/search", Some(&alice), json!({"limit": 3}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Bob cannot ask about Alice's asset; an unknown one is 404 too.
    let (s, _) = t
        .get(&format!("/api/v1/assets/{first}/similar"), Some(&bob))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = t
        .get(
            &format!("/api/v1/assets/{first}/similar?limit=0"),
            Some(&alice),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    t.stop().await;
}

/// With an OpenAI-compatible embeddings server (the contract fake, whose model embeds
/// texts and pictures by the colours they name or show), assets are embedded through it
/// and a text finds the picture it describes.
#[tokio::test(flavor = "multi_thread")]
async fn a_text_search_goes_through_an_openai_compatible_embeddings_server() {
    let fake = generation::fakes::embeddings::start("emb-key")
        .await
        .unwrap();
    let url = format!("{}/v1", fake.base_url());
    let t = TestServer::start_with(move |c| {
        c.generation.embedder = "openai".into();
        c.generation.embeddings_url = Some(url);
        c.generation.embeddings_model = generation::fakes::embeddings::MODEL.into();
        c.generation.embeddings_api_key = Some("emb-key".into());
        c.generation.allow_private_outbound = true;
    })
    .await;
    let me = t.user("text-search@example.com").await;
    let solid = |rgb: [u8; 3]| {
        generation::render::stills::encode_png_rgb(&rgb.repeat(32 * 32), 32, 32).unwrap()
    };
    let mut ids = Vec::new();
    for rgb in [[220, 30, 30], [30, 40, 220]] {
        let (s, v, _) = crate::assets::upload(&t, &me, &solid(rgb), Some("image/png")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (red, blue) = (ids[0].clone(), ids[1].clone());
    let search = |text: &'static str| {
        let t = &t;
        let me = &me;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (s, v) = t
                    .post(
                        "/api/v1/assets/search",
                        Some(me),
                        json!({"text": text, "limit": 2}),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
                // Both embedded (in the background): the answer is complete.
                if v["items"].as_array().unwrap().len() == 2 {
                    return v;
                }
                assert!(Instant::now() < deadline, "never embedded: {v}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let v = search("something red").await;
    assert_eq!(v["embedder"], "openai-compatible:fake-colour-clip");
    assert_eq!(v["items"][0]["asset"]["id"], red.as_str(), "{v}");
    let v = search("a blue sky").await;
    assert_eq!(v["items"][0]["asset"]["id"], blue.as_str(), "{v}");
    // Assets by their vectors too.
    let (s, v) = t
        .get(&format!("/api/v1/assets/{red}/similar"), Some(&me))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"][0]["asset"]["id"], blue.as_str());

    // Reuse before generating: with a text side, validate compares the prompt with
    // the videos' embeddings too (here any likeness counts: the fake's text and
    // picture spaces are coarse; the prompt shares no trigram with the video's, so
    // only its embedding can match it).
    let video = render(&t, &me, "a harbour wall at noon", 4).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = t
            .post(
                "/api/v1/generations/validate",
                Some(&me),
                json!({"provider": "local", "operation": "text_to_video",
                       "params": {"prompt": "red sky"}, "reuse_min_similarity": 0.0}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let found = v["similar_assets"].as_array().unwrap();
        if let Some(c) = found.iter().find(|c| c["matched_by"] == "embedding") {
            assert_eq!(
                c["asset"]["id"],
                video.as_str(),
                "only videos are candidates: {v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the video never matched: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
    t.stop().await;
}
