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

/// One field name per id: every line of a job's life, from the REST create to the
/// worker's end of the attempt, is found by `job_id`.
#[tokio::test]
async fn a_jobs_whole_life_is_found_by_job_id() {
    let t = TestServer::start().await;
    let admin = t.admin("ops@example.com").await;
    let user = t.user("maker@example.com").await;
    let body = serde_json::json!({
        "provider": "local",
        "operation": "text_to_video",
        "params": {"prompt": "a lighthouse", "duration": 1},
    });
    let (s, job) = t.post("/api/v1/generations", Some(&user), body).await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();

    let wanted = ["job created", "attempt started", "attempt ended"];
    let deadline = Instant::now() + Duration::from_secs(30);
    let lines = loop {
        let lines = wait_for_lines(&t, &admin, &format!("job_id={id}&limit=200")).await;
        let has = |m: &str| lines.iter().any(|l| l["message"] == m);
        if wanted.iter().all(|m| has(m)) || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for m in wanted {
        assert!(
            messages.contains(&m),
            "no {m:?} line for the job: {messages:?}"
        );
    }
    assert!(lines.iter().all(|l| l["job_id"] == id.as_str()));
    let started = lines
        .iter()
        .find(|l| l["message"] == "attempt started")
        .unwrap();
    assert_eq!(started["provider"], "local", "{started}");
    let ended = lines
        .iter()
        .find(|l| l["message"] == "attempt ended")
        .unwrap();
    assert!(
        ended["fields"]["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("Completed")),
        "{ended}"
    );
    t.stop().await;
}

/// The admin log is capped: the writer purges beyond `log.max_rows`.
#[tokio::test]
async fn the_admin_log_is_purged_to_its_cap() {
    let t = TestServer::start_with(|c| {
        c.log.max_rows = 5;
        c.log.purge_interval_secs = 0.1;
    })
    .await;
    for _ in 0..60 {
        let res = t.http.get(t.url("/health")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM log_entry")
            .fetch_one(&t.db.pool)
            .await
            .unwrap()
    };
    let purged = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(max((fields->>'deleted')::bigint), 0)::bigint FROM log_entry
             WHERE message = 'admin log purged'",
        )
        .fetch_one(&t.db.pool)
        .await
        .unwrap()
    };
    // Other tests in this process log too (every server's sink sees every line), so
    // the table never stays at exactly 5; it must come back near it, and the purges
    // must have said that they deleted lines (their own lines may be purged later).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut smallest = i64::MAX;
    let mut deleted = 0;
    while Instant::now() < deadline {
        smallest = smallest.min(count().await);
        deleted = deleted.max(purged().await);
        if smallest <= 25 && deleted > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(deleted > 0, "60 request lines and a cap of 5, yet no purge");
    assert!(
        smallest <= 25,
        "the log was not purged to its cap: {smallest} lines"
    );
    t.stop().await;
}
