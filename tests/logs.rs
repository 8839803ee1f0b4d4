//! Log lines stored in `log_entry` and queried by operators.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tests::{TestServer, error_code};

async fn wait_for_lines(t: &TestServer, admin: &str, query: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = t
            .get(&format!("/api/v1/admin/logs?{query}"), Some(admin))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let lines = v.as_array().unwrap().clone();
        if !lines.is_empty() || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn request_logs_are_stored_and_queryable() {
    let t = TestServer::start().await;
    let admin = t.admin("root@example.com").await;
    let user = t.user("who@example.com").await;
    let res = t
        .http
        .get(t.url("/api/v1/users/me"))
        .bearer_auth(&user)
        .header("x-request-id", "log-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let lines = wait_for_lines(&t, &admin, "request_id=log-trace-1").await;
    assert!(!lines.is_empty(), "the request's lines were stored");
    let response = lines
        .iter()
        .find(|l| l["message"] == "response")
        .expect("the response line");
    assert_eq!(response["level"], "INFO");
    assert_eq!(response["target"], "api");
    assert_eq!(response["fields"]["status"], 200);
    assert!(
        response["user_id"].is_string(),
        "the user id from the request span: {response}"
    );

    let by_user = wait_for_lines(
        &t,
        &admin,
        &format!("user_id={}", response["user_id"].as_str().unwrap()),
    )
    .await;
    assert!(by_user.iter().all(|l| l["user_id"] == response["user_id"]));
    let by_text = wait_for_lines(&t, &admin, "request_id=log-trace-1&q=RESPON").await;
    assert!(!by_text.is_empty());
    let (_, none) = t
        .get(
            "/api/v1/admin/logs?request_id=log-trace-1&level=warn",
            Some(&admin),
        )
        .await;
    assert_eq!(
        none,
        serde_json::json!([]),
        "info lines are not warn or worse"
    );
    let (_, target) = t
        .get(
            "/api/v1/admin/logs?request_id=log-trace-1&target=api&limit=1",
            Some(&admin),
        )
        .await;
    assert_eq!(target.as_array().unwrap().len(), 1);

    let (s, v) = t.get("/api/v1/admin/logs?level=loud", Some(&admin)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "validation_failed");
    let (s, v) = t
        .get("/api/v1/admin/logs?since=yesterday", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = t.get("/api/v1/admin/logs", Some(&user)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    t.stop().await;
}
