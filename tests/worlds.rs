//! Several worlds served at once, over real HTTP: the admin routes list them and pause,
//! resume, step, advance, rescale and switch turn-based mode one world; a session
//! created in a world lives on that world's clock; the same controls as inspector
//! JSON-RPC methods.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{TempDir, TestServer, copy_demo_scenes, error_code};

/// The demo plus a world `arena` with one scene of its own.
fn two_worlds() -> TempDir {
    let scenes = copy_demo_scenes();
    let world = scenes.0.join("world.toml");
    let mut text = std::fs::read_to_string(&world).unwrap();
    text.push_str("\n[worlds.arena]\ntitle = \"Arena\"\nstart_scene = \"arena\"\n");
    std::fs::write(&world, text).unwrap();
    std::fs::write(
        scenes.0.join("arena.toml"),
        r#"id = "arena"
title = "The Arena"
entry = "gate"
world = "arena"

[[nodes]]
id = "gate"
kind = "choice"

[[nodes]]
id = "out"
kind = "end"
outcome = "neutral"

[[edges]]
id = "leave"
from = "gate"
to = "out"
label = "Leave"
reveal_ms = 60000
"#,
    )
    .unwrap();
    scenes
}

async fn start(scenes: &TempDir) -> TestServer {
    let dir = scenes.0.clone();
    TestServer::start_with(move |c| c.content.scenes_dir = dir).await
}

async fn worlds(t: &TestServer, admin: &str) -> Vec<Value> {
    let (s, v) = t.get("/api/v1/admin/worlds", Some(admin)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

async fn world(t: &TestServer, admin: &str, id: &str) -> Value {
    worlds(t, admin)
        .await
        .into_iter()
        .find(|w| w["id"] == id)
        .unwrap_or_else(|| panic!("world {id} not listed"))
}

async fn act(t: &TestServer, admin: &str, path: &str, body: Value) -> Value {
    let (s, v) = t
        .post(&format!("/api/v1/admin/worlds/{path}"), Some(admin), body)
        .await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

/// Waits until the tick loop has run `n` more ticks (observed, not slept for).
async fn ticks(t: &TestServer, admin: &str, n: u64) {
    let number = |v: Value| v["number"].as_u64().unwrap();
    let from = number(t.get("/api/v1/admin/tick", Some(admin)).await.1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while number(t.get("/api/v1/admin/tick", Some(admin)).await.1) < from + n {
        assert!(Instant::now() < deadline, "the tick loop stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn now(w: &Value) -> i64 {
    w["clock"]["now_ms"].as_i64().unwrap()
}

#[tokio::test]
async fn each_world_has_its_own_clock_and_controls() {
    let scenes = two_worlds();
    let t = start(&scenes).await;
    let admin = t.admin("root@example.com").await;
    let user = t.user("u@example.com").await;
    let listed = worlds(&t, &admin).await;
    let ids: Vec<&str> = listed.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["default", "arena"]);
    assert_eq!(listed[1]["title"], "Arena");

    // Pausing the arena stops its time and not the default world's.
    let paused = act(&t, &admin, "arena/pause", json!({})).await;
    assert_eq!(paused["clock"]["paused"], true);
    let (a0, d0) = (now(&paused), now(&world(&t, &admin, "default").await));
    ticks(&t, &admin, 3).await;
    assert_eq!(now(&world(&t, &admin, "arena").await), a0);
    assert!(now(&world(&t, &admin, "default").await) > d0);

    // A session created in the arena lives on the arena's (frozen) clock.
    let (s, v) = t
        .post(
            "/api/v1/game/sessions",
            Some(&user),
            json!({"world": "arena"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = t
        .get(&format!("/api/v1/game/sessions/{id}"), Some(&user))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["scene"], "arena");
    let events = v["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{v}");
    assert!(events.iter().all(|e| e["at_ms"] == a0), "{v}");
    assert_eq!(world(&t, &admin, "arena").await["sessions"], 1);

    // Advance by a delta: exactly the delta while paused.
    let advanced = act(&t, &admin, "arena/advance", json!({"ms": 5000})).await;
    assert_eq!(now(&advanced), a0 + 5000);

    // A step moves the paused world by one tick at the next tick.
    let stepped = act(&t, &admin, "arena/step", json!({})).await;
    assert_eq!(stepped["clock"]["step_pending"], true);
    ticks(&t, &admin, 2).await;
    let after = world(&t, &admin, "arena").await;
    assert_eq!(after["clock"]["step_pending"], false);
    assert!(now(&after) > a0 + 5000, "{after}");
    ticks(&t, &admin, 2).await;
    assert_eq!(now(&world(&t, &admin, "arena").await), now(&after));

    // Scale, turn-based, resume.
    let scaled = act(&t, &admin, "arena/time-scale", json!({"time_scale": 2.5})).await;
    assert_eq!(scaled["clock"]["scale_permille"], 2500);
    let turned = act(&t, &admin, "arena/turn-based", json!({"on": true})).await;
    assert_eq!(turned["clock"]["turn_based"], true);
    let resumed = act(&t, &admin, "arena/resume", json!({})).await;
    assert_eq!(resumed["clock"]["paused"], false);
    t.stop().await;
}

#[tokio::test]
async fn unknown_worlds_and_bad_values_are_refused() {
    let scenes = two_worlds();
    let t = start(&scenes).await;
    let admin = t.admin("root@example.com").await;
    let user = t.user("u@example.com").await;
    let (s, v) = t
        .post(
            "/api/v1/admin/worlds/nowhere/pause",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "not_found");
    let (s, v) = t
        .post(
            "/api/v1/admin/worlds/arena/time-scale",
            Some(&admin),
            json!({"time_scale": 0.0}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "validation_failed");
    let (s, _) = t
        .post("/api/v1/admin/worlds/arena/pause", Some(&user), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t.get("/api/v1/admin/worlds", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // A session in a world that is not served, or at a scene of another world.
    let (s, v) = t
        .post(
            "/api/v1/game/sessions",
            Some(&user),
            json!({"world": "moon"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown world 'moon'"),
        "{v}"
    );
    let (s, v) = t
        .post(
            "/api/v1/game/sessions",
            Some(&user),
            json!({"world": "arena", "scene": "gallery"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    t.stop().await;
}

#[tokio::test]
async fn the_controls_are_inspector_methods_too() {
    let scenes = two_worlds();
    let t = start(&scenes).await;
    let admin = t.admin("root@example.com").await;
    let call = |method: &str, params: Value| json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (s, v) = t
        .post(
            "/api/v1/admin/rpc",
            Some(&admin),
            call("worlds.list", json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["result"]["worlds"][1]["id"], "arena", "{v}");
    let (_, v) = t
        .post(
            "/api/v1/admin/rpc",
            Some(&admin),
            call(
                "worlds.set_turn_based",
                json!({"world": "arena", "on": true}),
            ),
        )
        .await;
    assert_eq!(v["result"]["clock"]["turn_based"], true, "{v}");
    let (_, v) = t
        .post(
            "/api/v1/admin/rpc",
            Some(&admin),
            call("worlds.pause", json!({"world": "nowhere"})),
        )
        .await;
    assert_eq!(v["error"]["code"], -23401, "{v}");
    let (_, v) = t
        .post(
            "/api/v1/admin/rpc",
            Some(&admin),
            call("worlds.advance", json!({"world": "arena"})),
        )
        .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    // The REST list shows what the method changed.
    assert_eq!(
        world(&t, &admin, "arena").await["clock"]["turn_based"],
        true
    );
    t.stop().await;
}
