//! Narrative content on the server: refused when invalid, reloaded when changed.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{TestServer, copy_demo_scenes, edit, test_config};

#[tokio::test]
async fn invalid_content_is_refused_at_startup_with_file_and_node() {
    let scenes = copy_demo_scenes();
    edit(
        &scenes.0.join("gallery.toml"),
        "to = \"mara_talk\"",
        "to = \"nowhere\"",
    );
    let db = store::testing::fresh_database().await.unwrap();
    let mut cfg = test_config(&db.url, scenes.0.join("state"));
    cfg.content.scenes_dir = scenes.0.clone();
    let err = pixsim_server::Server::start(cfg).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("gallery.toml"), "{text}");
    assert!(text.contains("nowhere"), "{text}");
    assert!(
        text.contains("arrive_next") || text.contains("'arrive'"),
        "{text}"
    );
}

async fn content_status(t: &TestServer) -> Value {
    t.get("/health", None).await.1["content"].clone()
}

async fn wait_for(t: &TestServer, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = content_status(t).await;
        if f(&c) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn content_reloads_and_keeps_the_old_one_when_the_new_one_is_invalid() {
    let scenes = copy_demo_scenes();
    let dir = scenes.0.clone();
    let t = TestServer::start_with(|c| {
        c.content.scenes_dir = dir;
        c.content.reload_interval_ms = 50;
    })
    .await;
    let first = content_status(&t).await;
    assert_eq!(first["scenes"], 3);
    assert!(first["last_error"].is_null());
    let v1 = first["version"].as_str().unwrap().to_owned();

    let gallery = scenes.0.join("gallery.toml");
    edit(&gallery, "to = \"mara_talk\"", "to = \"nowhere\"");
    let refused = wait_for(&t, "the refusal", |c| !c["last_error"].is_null()).await;
    assert_eq!(
        refused["version"],
        v1.as_str(),
        "the old content stays live"
    );
    assert!(
        refused["last_error"].as_str().unwrap().contains("nowhere"),
        "{refused}"
    );

    edit(&gallery, "to = \"nowhere\"", "to = \"mara_talk\"");
    edit(&gallery, "label = \"Step inside\"", "label = \"Step in\"");
    let reloaded = wait_for(&t, "the reload", |c| {
        c["last_error"].is_null() && c["version"] != v1.as_str()
    })
    .await;
    assert_eq!(reloaded["scenes"], 3);
    t.stop().await;
}

#[tokio::test]
async fn the_rest_scene_player_follows_hot_reloads() {
    let scenes = copy_demo_scenes();
    let dir = scenes.0.clone();
    let t = TestServer::start_with(|c| {
        c.content.scenes_dir = dir;
        c.content.reload_interval_ms = 50;
    })
    .await;
    let token = t.user("reload@example.com").await;
    let title = |list: &Value, id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["title"].as_str().unwrap().to_owned())
    };
    let (status, list) = t.get("/api/v1/game/scenes", Some(&token)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        title(&list, "gallery").as_deref(),
        Some("The Midnight Gallery")
    );
    assert_eq!(title(&list, "side"), None);
    let (status, _) = t
        .post(
            "/api/v1/game/sessions",
            Some(&token),
            serde_json::json!({"scene": "side"}),
        )
        .await;
    assert_eq!(status, 422, "no such scene yet");

    // A new title and a new scene on disk.
    edit(
        &scenes.0.join("gallery.toml"),
        "title = \"The Midnight Gallery\"",
        "title = \"The Gallery at Dawn\"",
    );
    std::fs::write(
        scenes.0.join("side.toml"),
        r#"id = "side"
title = "The Side Door"
entry = "knock"

[[nodes]]
id = "knock"
kind = "dialogue"
lines = [{ id = "side_1", speaker = "guard", text = "Who's there?" }]

[[nodes]]
id = "side_end"
kind = "end"
outcome = "neutral"

[[edges]]
id = "side_leave"
from = "knock"
to = "side_end"
label = "Walk away"
"#,
    )
    .unwrap();

    // The scene list, the scene itself and session creation all see the reload.
    let deadline = Instant::now() + Duration::from_secs(15);
    let list = loop {
        let (status, list) = t.get("/api/v1/game/scenes", Some(&token)).await;
        assert_eq!(status, 200, "{list}");
        if title(&list, "side").is_some() {
            break list;
        }
        assert!(Instant::now() < deadline, "the reload never showed: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        title(&list, "gallery").as_deref(),
        Some("The Gallery at Dawn")
    );
    assert_eq!(title(&list, "side").as_deref(), Some("The Side Door"));
    let (status, scene) = t.get("/api/v1/game/scenes/side", Some(&token)).await;
    assert_eq!(status, 200, "{scene}");
    assert_eq!(scene["entry"], "knock");
    assert_eq!(content_status(&t).await["scenes"], 4);

    // A session in the new scene runs on the reloaded simulation content.
    let (status, s) = t
        .post(
            "/api/v1/game/sessions",
            Some(&token),
            serde_json::json!({"scene": "side"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let events = s["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["event"]["NodeEntered"]["node"] == "knock"),
        "{s}"
    );
    let id = s["id"].as_str().unwrap();
    let (status, body) = t
        .post(
            &format!("/api/v1/game/sessions/{id}/choose"),
            Some(&token),
            serde_json::json!({"edge": "side_leave"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"]["SessionEnded"]["reason"] == "neutral"),
        "{body}"
    );
    t.stop().await;
}
