//! The admin tick inspector over real HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{TestServer, error_code};

async fn rpc(t: &TestServer, token: &str, body: Value) -> Value {
    let (s, v) = t.post("/api/v1/admin/rpc", Some(token), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    v
}

#[tokio::test]
async fn only_admins_reach_the_inspector() {
    let t = TestServer::start().await;
    let user = t.user("u@example.com").await;
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "tick.stats"});
    let (s, v) = t.post("/api/v1/admin/rpc", Some(&user), req.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&v), "forbidden");
    let (s, _) = t.post("/api/v1/admin/rpc", None, req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

#[tokio::test]
async fn brp_requests_and_json_rpc_errors() {
    let t = TestServer::start().await;
    let admin = t.admin("root@example.com").await;
    // As in the Bevy Remote Protocol's documented `world.query` example.
    let brp = json!({
        "method": "world.query",
        "id": 0,
        "jsonrpc": "2.0",
        "params": {
            "data": {
                "components": ["bevy_transform::components::transform::Transform"],
                "option": [],
                "has": []
            },
            "filter": {"with": [], "without": []},
            "strict": false
        }
    });
    let v = rpc(&t, &admin, brp.clone()).await;
    assert_eq!(v["id"], 0);
    assert_eq!(
        v["result"],
        json!([]),
        "no such component here: an empty match, as in BRP"
    );
    let mut strict = brp;
    strict["params"]["strict"] = json!(true);
    let v = rpc(&t, &admin, strict).await;
    assert_eq!(v["error"]["code"], -23402, "{v}");

    let v = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": "d", "method": "rpc.discover"}),
    )
    .await;
    let names: Vec<&str> = v["result"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for m in [
        "world.query",
        "world.get_components",
        "world.list_components",
        "world.list_resources",
        "world.get_resources",
        "schedule.list",
        "tick.stats",
        "tick.history",
        "tick.pause",
        "tick.resume",
        "tick.step",
        "world.get_components+watch",
        "world.list_components+watch",
    ] {
        assert!(names.contains(&m), "{m} missing from {names:?}");
    }
    let v = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "schedule.list"}),
    )
    .await;
    let schedules: Vec<&str> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["schedule"].as_str().unwrap())
        .collect();
    assert!(
        schedules.contains(&"FixedUpdate") && schedules.contains(&"PreUpdate"),
        "{schedules:?}"
    );
    let v = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": 3, "method": "world.list_resources"}),
    )
    .await;
    assert!(v["result"].is_array(), "{v}");
    let v = rpc(&t, &admin, json!({"jsonrpc": "2.0", "id": 4, "method": "world.get_components", "params": {"entity": 123456789, "components": []}})).await;
    assert_eq!(v["error"]["code"], -23401);

    let v = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": 5, "method": "no.such.method"}),
    )
    .await;
    assert_eq!(v["error"]["code"], -32601);
    let v = rpc(&t, &admin, json!({"id": 6, "method": "tick.stats"})).await;
    assert_eq!(v["error"]["code"], -32600);
    let res = t
        .http
        .post(t.url("/api/v1/admin/rpc"))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700);
    t.stop().await;
}

#[tokio::test]
async fn pause_then_step_advances_exactly_one_tick() {
    let t = TestServer::start().await;
    let admin = t.admin("root@example.com").await;
    let call = |m: &'static str| json!({"jsonrpc": "2.0", "id": m, "method": m});
    let v = rpc(&t, &admin, call("tick.step")).await;
    assert_eq!(v["error"]["code"], -32600, "step needs a pause: {v}");

    let paused = rpc(&t, &admin, call("tick.pause")).await;
    assert_eq!(paused["result"]["paused"], true);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let n0 = rpc(&t, &admin, call("tick.stats")).await["result"]["number"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n1 = rpc(&t, &admin, call("tick.stats")).await["result"]["number"]
        .as_u64()
        .unwrap();
    assert_eq!(n0, n1, "no tick while paused");
    let stepped = rpc(&t, &admin, call("tick.step")).await;
    assert_eq!(
        stepped["result"]["tick"].as_u64().unwrap(),
        n0 + 1,
        "{stepped}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = rpc(&t, &admin, call("tick.stats")).await;
    assert_eq!(
        stats["result"]["number"].as_u64().unwrap(),
        n0 + 1,
        "exactly one"
    );
    assert_eq!(stats["result"]["paused"], true);
    // The world can still be inspected while paused.
    let v = rpc(&t, &admin, call("schedule.list")).await;
    assert!(v["result"].is_array());

    rpc(&t, &admin, call("tick.resume")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = rpc(&t, &admin, call("tick.stats")).await["result"]["number"]
        .as_u64()
        .unwrap();
    assert!(later > n0 + 1, "ticking again");
    let h = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": 9, "method": "tick.history", "params": {"count": 5}}),
    )
    .await;
    let h = h["result"].as_array().unwrap();
    assert_eq!(h.len(), 5);
    assert!(
        h.windows(2)
            .all(|w| w[1]["number"].as_u64().unwrap() == w[0]["number"].as_u64().unwrap() + 1)
    );
    t.stop().await;
}

#[tokio::test]
async fn watch_methods_stream_server_sent_events() {
    let t = TestServer::start().await;
    let admin = t.admin("root@example.com").await;
    let mut res = t
        .http
        .post(t.url("/api/v1/admin/rpc"))
        .bearer_auth(&admin)
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tick.stats+watch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = Vec::new();
    let mut buf = String::new();
    while seen.len() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(data).unwrap();
                assert_eq!(v["id"], 7);
                seen.push(v["result"]["number"].as_u64().unwrap());
            }
        }
    }
    assert!(seen.windows(2).all(|w| w[1] > w[0]), "ticks move: {seen:?}");
    drop(res);
    t.stop().await;
}

#[tokio::test]
async fn remaining_methods_over_http() {
    let t = TestServer::start().await;
    let admin = t.admin("root@example.com").await;
    let v = rpc(&t, &admin, json!({"jsonrpc": "2.0", "id": 1, "method": "world.get_resources", "params": {"resource": "NotAResource"}})).await;
    assert_eq!(v["error"]["code"], -23402, "{v}");
    let v = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "session.list"}),
    )
    .await;
    assert_eq!(v["result"]["total"], 0, "{v}");
    let v = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": 3, "method": "world.inspect"}),
    )
    .await;
    assert_eq!(v["result"]["scenes"].as_array().unwrap().len(), 3, "{v}");
    let v = rpc(&t, &admin, json!({"jsonrpc": "2.0", "id": 4, "method": "session.inspect", "params": {"session": uuid::Uuid::new_v4()}})).await;
    assert_eq!(v["error"]["code"], -23401, "{v}");
    let v = rpc(
        &t,
        &admin,
        json!({"jsonrpc": "2.0", "id": 5, "method": "world.list_components"}),
    )
    .await;
    assert!(
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "sim::components::WorldClock"),
        "{v}"
    );

    // A BRP +watch method: the first event lists every component of the world entity.
    let world = rpc(&t, &admin, json!({"jsonrpc": "2.0", "id": 6, "method": "world.query", "params": {"data": {"components": ["WorldClock"]}}})).await;
    let entity = world["result"][0]["entity"].as_u64().unwrap();
    let mut res = t
        .http
        .post(t.url("/api/v1/admin/rpc"))
        .bearer_auth(&admin)
        .json(
            &json!({"jsonrpc": "2.0", "id": 7, "method": "world.get_components+watch",
                      "params": {"entity": entity, "components": ["WorldClock"]}}),
        )
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    let mut changes = 0;
    while changes < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(data).unwrap();
                assert!(
                    v["result"]["components"]["sim::components::WorldClock"]["now_ms"].is_i64(),
                    "{v}"
                );
                assert!(v["result"]["removed"].is_array());
                changes += 1;
            }
        }
    }
    t.stop().await;
}
