//! Credit budgets against the real server: an admin sets a user's and a world's limits;
//! creates over them are refused with 402 `budget_exceeded`, atomically under
//! concurrency; cancelled jobs give their reservation back.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{TestServer, error_code};

const GENERATIONS: &str = "/api/v1/generations";
const BUDGETS: &str = "/api/v1/admin/budgets";

/// A local job of `secs` seconds (one credit a second here), scheduled far ahead so
/// that it stays pending, counting its estimate.
fn job(prompt: &str, secs: u32) -> Value {
    json!({"provider": "local", "operation": "text_to_video",
           "params": {"prompt": prompt, "duration": secs},
           "scheduled_at": "2100-01-01T00:00:00Z"})
}

async fn user_id(t: &TestServer, token: &str) -> String {
    let (s, me) = t.get("/api/v1/users/me", Some(token)).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    me["id"].as_str().unwrap().to_owned()
}

async fn put_budget(t: &TestServer, admin: &str, path: &str, body: Value) -> Value {
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("{BUDGETS}/{path}"),
            Some(admin),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn priced(c: &mut pixsim_server::Config) {
    c.generation.providers.set("local", "credits_per_second", 1);
    c.generation.user_active_limit = Some(100);
}

#[tokio::test]
async fn a_user_budget_refuses_what_goes_over_it_and_counts_cancels_back() {
    let t = TestServer::start_with(priced).await;
    let admin = t.admin("budget-admin@example.com").await;
    let me = t.user("budget-user@example.com").await;
    let my_id = user_id(&t, &me).await;

    // Only admins see or set budgets.
    let (s, _) = t.get(BUDGETS, Some(&me)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("{BUDGETS}/user/{my_id}"),
            Some(&me),
            Some(json!({"daily_limit": 1000})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let b = put_budget(
        &t,
        &admin,
        &format!("user/{my_id}"),
        json!({"daily_limit": 5}),
    )
    .await;
    assert_eq!(b["scope"], "user");
    assert_eq!(b["daily_limit"], 5);
    assert!(b["total_limit"].is_null());
    assert_eq!(b["spent_today"], 0);

    // 2 + 2 credits fit under 5; 2 more do not.
    let (s, first) = t.post(GENERATIONS, Some(&me), job("a kite", 2)).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["estimated_credits"], 2);
    let (s, v) = t.post(GENERATIONS, Some(&me), job("a boat", 2)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t.post(GENERATIONS, Some(&me), job("a train", 2)).await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
    assert_eq!(error_code(&v), "budget_exceeded");
    let d = &v["error"]["details"];
    assert_eq!(
        (&d["scope"], &d["scope_id"], &d["period"]),
        (&json!("user"), &json!(my_id), &json!("daily"))
    );
    assert_eq!(
        (&d["limit"], &d["spent"], &d["estimated_credits"]),
        (&json!(5), &json!(4), &json!(2))
    );
    // Nothing was created by the refusal.
    let (_, list) = t.get(GENERATIONS, Some(&me)).await;
    assert_eq!(list["total"], 2, "{list}");
    // One credit still fits exactly.
    let (s, v) = t.post(GENERATIONS, Some(&me), job("a leaf", 1)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t.post(GENERATIONS, Some(&me), job("a stone", 1)).await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");

    // A cancelled job was never charged: its reservation comes back.
    let id = first["id"].as_str().unwrap();
    let (s, v) = t
        .call(
            Method::POST,
            &format!("{GENERATIONS}/{id}/cancel"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t.post(GENERATIONS, Some(&me), job("a train", 2)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // The admin sees the spending.
    let (s, all) = t.get(BUDGETS, Some(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope_id"] == my_id.as_str())
        .unwrap();
    assert_eq!(
        (&mine["spent_today"], &mine["spent_total"]),
        (&json!(5), &json!(5))
    );

    // Another user is not limited by my budget.
    let other = t.user("budget-other@example.com").await;
    let (s, v) = t.post(GENERATIONS, Some(&other), job("a whale", 10)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Removing the budget lifts the limit.
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("{BUDGETS}/user/{my_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = t.post(GENERATIONS, Some(&me), job("a comet", 10)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("{BUDGETS}/user/{my_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Bad budgets.
    for (path, body) in [
        ("user/not-a-uuid", json!({"daily_limit": 1})),
        (&format!("user/{my_id}") as &str, json!({"total_limit": -1})),
    ] {
        let (s, v) = t
            .call(
                Method::PUT,
                &format!("{BUDGETS}/{path}"),
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
    }
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("{BUDGETS}/galaxy/x"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    t.stop().await;
}

#[tokio::test]
async fn concurrent_creates_never_overspend_and_a_world_budget_counts_its_jobs() {
    let t = TestServer::start_with(priced).await;
    let admin = t.admin("budget-admin2@example.com").await;
    let me = t.user("budget-racer@example.com").await;
    let my_id = user_id(&t, &me).await;
    put_budget(
        &t,
        &admin,
        &format!("user/{my_id}"),
        json!({"total_limit": 10}),
    )
    .await;

    // Twenty creates of 2 credits at once: exactly five fit.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let http = t.http.clone();
        let url = t.url(GENERATIONS);
        let token = me.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&job(&format!("racer {i}"), 2))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, refused), (5, 15));

    // A world's budget counts the jobs that name it, whoever creates them.
    put_budget(&t, &admin, "world/harbor", json!({"total_limit": 3})).await;
    let other = t.user("budget-writer@example.com").await;
    let mut in_world = job("the harbor at night", 2);
    in_world["metadata"] = json!({"world": "harbor"});
    let (s, v) = t.post(GENERATIONS, Some(&other), in_world.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    in_world["params"]["prompt"] = json!("the harbor at dawn");
    let (s, v) = t.post(GENERATIONS, Some(&other), in_world.clone()).await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
    assert_eq!(v["error"]["details"]["scope"], "world");
    assert_eq!(v["error"]["details"]["scope_id"], "harbor");
    // Outside the world the same user is free to spend.
    let (s, v) = t
        .post(GENERATIONS, Some(&other), job("the harbor at dawn", 2))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    t.stop().await;
}
