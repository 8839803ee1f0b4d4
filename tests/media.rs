//! Scene media end to end: the demo's first node carries a generation spec; the real
//! pipeline (local provider, in-process workers) renders it, the simulation pushes the asset
//! to the player standing in the node, later players see it at once, and the file is
//! served to any signed-in player.

use std::time::Duration;

use game_client::ClientError;
use protocol::v2::{ClientMessage, GameEvent, Media};
use reqwest::StatusCode;
use serde_json::Value;
use tests::TestServer;

use crate::game::{Player, connect, node};

async fn new_player(ts: &TestServer, token: &str) -> Player {
    let mut c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    c.authenticate(token).await.unwrap();
    let joined = c.create_session(None).await.unwrap();
    Player::new(c, &joined)
}

/// How `arrive` was presented: its media, and whether it was pending.
fn arrive_media(p: &Player) -> (Option<Media>, bool) {
    p.events
        .iter()
        .find_map(|(_, e)| match e {
            GameEvent::NodeEntered {
                node,
                media,
                media_pending,
                ..
            } if node == "arrive" => Some((media.clone(), *media_pending)),
            _ => None,
        })
        .expect("arrive presented")
}

/// Waits (generously: the local provider renders a real clip) for the pushed asset.
async fn pushed_asset(p: &mut Player) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(asset) = p.events.iter().find_map(|(_, e)| match e {
            GameEvent::MediaReady {
                scene,
                node,
                media: Media { url, media_type },
            } if scene == "gallery" && node == "arrive" => {
                assert_eq!(media_type, "video");
                url.strip_prefix("/api/v1/assets/")
                    .and_then(|r| r.strip_suffix("/file"))
                    .map(str::to_owned)
            }
            _ => None,
        }) {
            return asset;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no media_ready: {:?}",
            p.events
        );
        // `pump` records events; an idle stream times out between whole frames, and a
        // heartbeat then keeps the connection from its idle timeout.
        match p.pump().await {
            Ok(_) => {}
            Err(ClientError::Timeout(_)) => p
                .client
                .send(&ClientMessage::Heartbeat { client_time_ms: 0 })
                .await
                .unwrap(),
            Err(e) => panic!("connection failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_scene_node_gets_its_asset_pushed_to_players() {
    let ts = TestServer::start().await;
    let alice = ts.user("alice@example.com").await;
    let bob = ts.user("bob@example.com").await;
    let admin = ts.admin("admin@example.com").await;

    // Alice enters the media node before anything was generated: she sees the spec.
    let mut a = new_player(&ts, &alice).await;
    a.wait_for("arrive", node("arrive")).await;
    assert_eq!(
        arrive_media(&a),
        (None, true),
        "the media is pending at first"
    );
    // ... and the asset is pushed to her while she stands there.
    let asset = pushed_asset(&mut a).await;
    // Meanwhile she was told how far it had come: at least the first report (the job's
    // place in the queue, or its progress), before the asset, never going back.
    let ready_at = a
        .events
        .iter()
        .position(|(_, e)| matches!(e, GameEvent::MediaReady { .. }))
        .unwrap();
    let reports: Vec<(u8, Option<u32>)> = a.events[..ready_at]
        .iter()
        .filter_map(|(_, e)| match e {
            GameEvent::MediaProgress {
                scene,
                node,
                progress,
                queue_position,
                ..
            } if scene == "gallery" && node == "arrive" => Some((*progress, *queue_position)),
            _ => None,
        })
        .collect();
    eprintln!("media_progress reports before media_ready: {reports:?}");
    assert!(!reports.is_empty(), "no media_progress: {:?}", a.events);
    assert!(reports.iter().all(|(p, _)| *p <= 100), "{reports:?}");
    assert!(
        reports.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress went back: {reports:?}"
    );
    assert!(
        a.events[ready_at..]
            .iter()
            .all(|(_, e)| !matches!(e, GameEvent::MediaProgress { .. })),
        "progress after the media was ready: {:?}",
        a.events
    );

    // The job carries the scene and node, is owned by the content owner, and completed.
    let (status, jobs) = ts.get("/api/v1/generations?limit=50", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    let items = jobs["items"].as_array().expect("items");
    let mine: Vec<&Value> = items
        .iter()
        .filter(|j| j["metadata"]["node"] == "arrive")
        .collect();
    assert_eq!(mine.len(), 1, "one job for the spec: {jobs}");
    assert_eq!(mine[0]["metadata"]["scene"], "gallery");
    assert_eq!(mine[0]["status"], "completed");
    assert_eq!(mine[0]["asset_id"], Value::String(asset.clone()));

    // Bob, a different player, reads the asset and its file (content assets are shared).
    let (status, meta) = ts.get(&format!("/api/v1/assets/{asset}"), Some(&bob)).await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    let media_type = meta["media_type"].as_str().unwrap_or_default().to_owned();
    let file = reqwest::Client::new()
        .get(ts.url(&format!("/api/v1/assets/{asset}/file")))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    let bytes = file.bytes().await.unwrap();
    // The local provider's H.264/MP4.
    assert_eq!(media_type, "video");
    assert!(
        bytes.len() > 12 && &bytes[4..8] == b"ftyp",
        "{media_type}: {:?}",
        &bytes[..bytes.len().min(16)]
    );
    let info = generation::media::mp4::parse(&bytes).expect("an MP4");
    assert_eq!(info.video.map(|v| v.codec), Some(*b"avc1"));

    // Bob enters the node after the asset exists: he gets it in node_entered, no push, and
    // no second job is paid for.
    let mut b = new_player(&ts, &bob).await;
    b.wait_for("arrive", node("arrive")).await;
    assert_eq!(
        arrive_media(&b),
        (
            Some(Media {
                url: format!("/api/v1/assets/{asset}/file"),
                media_type: "video".into(),
            }),
            false
        )
    );
    let (_, jobs) = ts.get("/api/v1/generations?limit=50", Some(&admin)).await;
    let count = jobs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|j| j["metadata"]["node"] == "arrive")
        .count();
    assert_eq!(count, 1, "{jobs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scene_files_are_served_from_the_assets_directory() {
    let dir = tests::TempDir::new("scene-assets");
    std::fs::create_dir_all(dir.0.join("doors")).unwrap();
    // The scenes name it, so it must be real media.
    let clip = std::fs::read(tests::demo_assets().join("vault_door.mp4")).unwrap();
    std::fs::write(dir.0.join("vault_door.mp4"), &clip).unwrap();
    std::fs::write(dir.0.join("doors").join("red.png"), b"\x89PNG....").unwrap();
    std::fs::write(dir.0.join(".secret"), b"hidden").unwrap();
    let assets = dir.0.clone();
    let ts = TestServer::start_with(move |c| c.content.assets_dir = Some(assets)).await;

    // Public (no token), with the type its extension says, deeper paths too.
    let res = ts
        .http
        .get(ts.url("/assets/vault_door.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "video/mp4");
    assert_eq!(res.bytes().await.unwrap().to_vec(), clip);
    let res = ts
        .http
        .get(ts.url("/assets/doors/red.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    // A range, as a video element asks.
    let res = ts
        .http
        .get(ts.url("/assets/vault_door.mp4"))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap().to_vec(), clip[100..200].to_vec());

    // Missing, hidden and escaping paths are all "not found", in the error envelope.
    for path in [
        "/assets/missing.mp4",
        "/assets/.secret",
        "/assets/doors",
        "/assets/..%2F..%2Fetc%2Fpasswd",
        "/assets/doors/..%2F..%2Fvault_door.mp4",
    ] {
        let res = ts.http.get(ts.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_generation_shows_the_spec_s_fallback_and_the_operator_sees_why() {
    // The demo's first node with a fallback, local renders priced, and the default
    // world's budget spent before anyone arrives.
    let scenes = tests::copy_demo_scenes();
    tests::edit(
        &scenes.0.join("gallery.toml"),
        "params = { duration = 3, aspect_ratio = \"16:9\" } }",
        "params = { duration = 3, aspect_ratio = \"16:9\" }, fallback = \"assets/vault_door.mp4\" }",
    );
    let dir = scenes.0.clone();
    let ts = TestServer::start_with(move |c| {
        c.content.scenes_dir = dir;
        c.generation.providers.set("local", "credits_per_second", 1);
    })
    .await;
    let admin = ts.admin("budget-op@example.com").await;
    let (s, v) = ts
        .call(
            reqwest::Method::PUT,
            "/api/v1/admin/budgets/world/default",
            Some(&admin),
            Some(serde_json::json!({"daily_limit": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The player arrives at the node, waits, and gets the fallback instead of an error.
    let alice = ts.user("fallback@example.com").await;
    let mut a = new_player(&ts, &alice).await;
    a.wait_for("arrive", node("arrive")).await;
    assert_eq!(arrive_media(&a), (None, true));
    a.wait_for("the fallback", |e| {
        matches!(e, GameEvent::MediaReady { node, media, .. }
            if node == "arrive" && media.url == "/assets/vault_door.mp4" && media.media_type == "video")
    })
    .await;
    // No job was created: the world's budget refused it.
    let (_, jobs) = ts.get("/api/v1/generations?limit=50", Some(&admin)).await;
    assert_eq!(jobs["total"], 0, "{jobs}");
    // Later players see the fallback at once.
    let bob = ts.user("fallback-later@example.com").await;
    let mut b = new_player(&ts, &bob).await;
    b.wait_for("arrive", node("arrive")).await;
    assert_eq!(
        arrive_media(&b),
        (
            Some(Media {
                url: "/assets/vault_door.mp4".into(),
                media_type: "video".into(),
            }),
            false
        )
    );
    // The operator's log says why.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, logs) = ts
            .get(
                "/api/v1/admin/logs?q=players%20get%20the%20fallback",
                Some(&admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{logs}");
        if let Some(line) = logs.as_array().and_then(|i| i.first()) {
            let text = line.to_string();
            assert!(text.contains("budget_exceeded"), "{text}");
            assert!(text.contains("vault_door.mp4"), "{text}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
