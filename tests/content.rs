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
