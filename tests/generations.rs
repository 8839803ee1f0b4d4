//! Generation jobs and provider accounts over REST: the local provider renders offline
//! in the server's in-process worker.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{TestServer, error_code};

const GENERATIONS: &str = "/api/v1/generations";
const ACCOUNTS: &str = "/api/v1/accounts";

fn job_path(id: &str, action: &str) -> String {
    if action.is_empty() {
        format!("{GENERATIONS}/{id}")
    } else {
        format!("{GENERATIONS}/{id}/{action}")
    }
}

/// A local text_to_video request; unless `now`, scheduled far ahead so that no worker
/// takes it.
fn local_job(prompt: &str, now: bool) -> Value {
    let mut body = json!({
        "provider": "local",
        "operation": "text_to_video",
        "params": {"prompt": prompt, "duration": 1},
    });
    if !now {
        body["scheduled_at"] = json!("2100-01-01T00:00:00Z");
    }
    body
}

async fn create(t: &TestServer, token: &str, body: Value) -> Value {
    let (s, v) = t.post(GENERATIONS, Some(token), body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn act(t: &TestServer, token: &str, id: &str, action: &str) -> (StatusCode, Value) {
    t.call(Method::POST, &job_path(id, action), Some(token), None)
        .await
}

/// Polls a job until it reaches `status` (30 s at most).
async fn wait_for(t: &TestServer, token: &str, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = t.get(&job_path(id, ""), Some(token)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["status"] == status {
            return v;
        }
        assert!(
            v["status"] != "failed" && v["status"] != "cancelled",
            "job ended otherwise: {v}"
        );
        assert!(Instant::now() < deadline, "job still not {status}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_local_job_completes_with_an_asset() {
    let t = TestServer::start().await;
    let me = t.user("gen-local@example.com").await;

    let job = create(&t, &me, local_job("a lighthouse at dusk", true)).await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["provider"], "local");
    assert_eq!(job["operation"], "text_to_video");
    assert!(
        ["pending", "processing", "completed"].contains(&job["status"].as_str().unwrap()),
        "{job}"
    );
    // The canonical parameters carry the provider's defaults.
    assert_eq!(job["params"]["prompt"], "a lighthouse at dusk");
    assert_eq!(job["params"]["model"], "local-v1");
    assert_eq!(job["priority"], 5);

    let done = wait_for(&t, &me, &id, "completed").await;
    let asset_id = done["asset_id"]
        .as_str()
        .expect("a completed job has an asset");
    assert!(done["completed_at"].is_string(), "{done}");
    assert!(done["error_code"].is_null(), "{done}");

    // The asset exists, is a video of mine, and was made by this job.
    let (media, owner, source): (String, uuid::Uuid, Option<uuid::Uuid>) = sqlx::query_as(
        "SELECT media_type, owner_id, source_generation_id FROM assets WHERE id = $1::uuid",
    )
    .bind(asset_id)
    .fetch_one(&t.db.pool)
    .await
    .unwrap();
    assert_eq!(media, "video");
    assert_eq!(owner.to_string(), done["user_id"].as_str().unwrap());
    assert_eq!(source.map(|s| s.to_string()).as_deref(), Some(id.as_str()));
    // H.264 in MP4 at the asked size (360p 16:9) and duration, as read from the file.
    let (s, asset) = t
        .get(&format!("/api/v1/assets/{asset_id}"), Some(&me))
        .await;
    assert_eq!(s, StatusCode::OK, "{asset}");
    assert_eq!(asset["mime"], "video/mp4");
    assert_eq!(
        (&asset["width"], &asset["height"]),
        (&json!(640), &json!(360))
    );
    assert_eq!(asset["duration_ms"], 1000);
    assert_eq!(asset["has_thumbnail"], true);

    // One submission, succeeded.
    let (s, subs) = t.get(&job_path(&id, "submissions"), Some(&me)).await;
    assert_eq!(s, StatusCode::OK, "{subs}");
    let subs = subs.as_array().unwrap();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["generation_id"], id.as_str());
    assert_eq!(subs[0]["status"], "succeeded");

    // The same parameters again reuse the asset without rendering.
    let again = create(&t, &me, local_job("a lighthouse at dusk", true)).await;
    assert_ne!(again["id"], id.as_str());
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(again["asset_id"], asset_id);
    assert_eq!(again["reused_from"], id.as_str());
    // ... unless force_new.
    let mut fresh = local_job("a lighthouse at dusk", false);
    fresh["force_new"] = json!(true);
    let fresh = create(&t, &me, fresh).await;
    assert_eq!(fresh["status"], "pending", "{fresh}");
    assert!(fresh["reused_from"].is_null());
    t.stop().await;
}

#[tokio::test]
async fn validate_answers_as_create_does() {
    let t = TestServer::start().await;
    let me = t.user("gen-validate@example.com").await;
    let validate = format!("{GENERATIONS}/validate");

    // A valid request: 200 with the canonical form, nothing created.
    let (s, report) = t
        .post(&validate, Some(&me), local_job("a quiet harbour", true))
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["valid"], true);
    assert_eq!(report["provider"], "local");
    assert_eq!(report["canonical_params"]["quality"], "360p");
    assert!(
        report["params_hash"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    assert_eq!(report["issues"], json!([]));
    let (_, page) = t.get(GENERATIONS, Some(&me)).await;
    assert_eq!(page["total"], 0, "validate creates nothing: {page}");

    // Bad parameters: the same 422 envelope from both, listing every issue.
    let bad = json!({
        "provider": "local",
        "operation": "text_to_video",
        "params": {"prompt": "x", "duration": 99, "quality": "8k", "size": "10x10"},
        "priority": 11,
    });
    let (s1, v1) = t.post(GENERATIONS, Some(&me), bad.clone()).await;
    let (s2, v2) = t.post(&validate, Some(&me), bad).await;
    assert_eq!(s1, StatusCode::UNPROCESSABLE_ENTITY, "{v1}");
    assert_eq!((s1, &v1), (s2, &v2));
    assert_eq!(error_code(&v1), "validation_failed");
    assert_eq!(v1["error"]["details"]["code"], "invalid_parameters");
    let fields: Vec<&str> = v1["error"]["details"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["field"].as_str().unwrap())
        .collect();
    for f in ["params.duration", "params.quality", "priority"] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }

    // Missing operation, unknown provider: same again.
    for body in [
        json!({"params": {"prompt": "x"}}),
        json!({"provider": "nope", "operation": "text_to_video", "params": {"prompt": "x"}}),
        json!({"operation": "image_to_video", "params": {"prompt": "x"},
               "inputs": [{"asset_id": uuid::Uuid::new_v4()}]}),
    ] {
        let (s1, v1) = t.post(GENERATIONS, Some(&me), body.clone()).await;
        let (s2, v2) = t.post(&validate, Some(&me), body).await;
        assert_eq!(s1, StatusCode::UNPROCESSABLE_ENTITY, "{v1}");
        assert_eq!((s1, &v1), (s2, &v2));
    }

    // A provider needing an account the user lacks: 409 from both.
    let pixverse = json!({"provider": "pixverse", "operation": "text_to_video",
                          "params": {"prompt": "a cat"}});
    let (s1, v1) = t.post(GENERATIONS, Some(&me), pixverse.clone()).await;
    let (s2, v2) = t.post(&validate, Some(&me), pixverse).await;
    assert_eq!(s1, StatusCode::CONFLICT, "{v1}");
    assert_eq!(error_code(&v1), "conflict");
    assert_eq!((s1, &v1), (s2, &v2));

    let (_, page) = t.get(GENERATIONS, Some(&me)).await;
    assert_eq!(page["total"], 0, "nothing was created: {page}");
    t.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_job() {
    let t = TestServer::start().await;
    let me = t.user("gen-idem@example.com").await;
    let mut body = local_job("same job twice", false);
    body["idempotency_key"] = json!("order-42");
    let first = create(&t, &me, body.clone()).await;
    let second = create(&t, &me, body.clone()).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["idempotency_key"], "order-42");
    let (_, page) = t.get(GENERATIONS, Some(&me)).await;
    assert_eq!(page["total"], 1, "{page}");

    // The key with other parameters is a conflict.
    body["params"]["prompt"] = json!("another job");
    let (s, v) = t.post(GENERATIONS, Some(&me), body.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(error_code(&v), "conflict");

    // Keys are per user: another user's same key makes a new job.
    let other = t.user("gen-idem-2@example.com").await;
    body["params"]["prompt"] = json!("same job twice");
    let theirs = create(&t, &other, body).await;
    assert_ne!(theirs["id"], first["id"]);
    t.stop().await;
}

/// Creates with an `Idempotency-Key` header; returns status and body.
async fn create_with_key(
    t: &TestServer,
    token: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let res = t
        .http
        .post(t.url(GENERATIONS))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn the_idempotency_key_header_returns_the_same_job() {
    let t = TestServer::start().await;
    let me = t.user("gen-idem-h@example.com").await;
    let body = local_job("same job by header", false);
    let (s, first) = create_with_key(&t, &me, "order-7", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["idempotency_key"], "order-7");
    let (s, second) = create_with_key(&t, &me, "order-7", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["created_at"], second["created_at"]);
    // The body's key, when equal to the header's, changes nothing.
    let mut both = body.clone();
    both["idempotency_key"] = json!("order-7");
    let (s, third) = create_with_key(&t, &me, "order-7", both.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{third}");
    assert_eq!(third["id"], first["id"]);
    // The body's key alone finds the header's job too.
    assert_eq!(create(&t, &me, both.clone()).await["id"], first["id"]);
    let (_, page) = t.get(GENERATIONS, Some(&me)).await;
    assert_eq!(page["total"], 1, "one row: {page}");

    // A body key that differs from the header's is refused, and creates nothing.
    both["idempotency_key"] = json!("order-8");
    let (s, v) = create_with_key(&t, &me, "order-7", both).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "validation_failed");
    assert_eq!(
        v["error"]["details"]["issues"][0]["field"], "Idempotency-Key",
        "{v}"
    );

    // The key with other parameters is a conflict.
    let mut other = body.clone();
    other["params"]["prompt"] = json!("another job");
    let (s, v) = create_with_key(&t, &me, "order-7", other).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(error_code(&v), "conflict");
    // An empty key is refused like an empty body key.
    let (s, v) = create_with_key(&t, &me, "", body.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, page) = t.get(GENERATIONS, Some(&me)).await;
    assert_eq!(page["total"], 1, "still one row: {page}");

    // Keys are per user: another user's same key makes a new job.
    let other_user = t.user("gen-idem-h2@example.com").await;
    let (s, theirs) = create_with_key(&t, &other_user, "order-7", body).await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["id"], first["id"]);
    t.stop().await;
}

#[tokio::test]
async fn a_pending_job_past_its_deadline_is_cancelled_unbilled() {
    let t = TestServer::start().await;
    let admin = t.admin("gen-deadline-admin@example.com").await;
    let me = t.user("gen-deadline@example.com").await;
    let (s, account) = t
        .post(
            ACCOUNTS,
            Some(&admin),
            json!({"provider": "pixverse", "label": "team", "api_key": "pv-deadline",
                   "shared": true, "credits": 100, "max_concurrent_jobs": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{account}");
    let account_path = format!("{ACCOUNTS}/{}", account["id"].as_str().unwrap());

    // A deadline in the past or too far ahead is refused.
    let mut body = json!({"provider": "pixverse", "operation": "text_to_video",
                          "params": {"prompt": "a cat too late"},
                          "scheduled_at": "2100-01-01T00:00:00Z"});
    for bad in [
        (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339(),
        (chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339(),
    ] {
        body["deadline_at"] = json!(bad);
        let (s, v) = t.post(GENERATIONS, Some(&me), body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(
            v["error"]["details"]["issues"][0]["field"], "deadline_at",
            "{v}"
        );
    }
    body["deadline_at"] = json!("not a time");
    let (s, v) = t.post(GENERATIONS, Some(&me), body.clone()).await;
    assert!(s.is_client_error(), "{s} {v}");
    assert!(v["error"]["code"].is_string(), "the envelope: {v}");

    // Scheduled far ahead, so no worker takes it; its deadline a second ahead.
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(1);
    body["deadline_at"] = json!(deadline.to_rfc3339());
    let job = create(&t, &me, body).await;
    assert_eq!(job["status"], "pending");
    assert!(job["estimated_credits"].as_i64().unwrap() > 0, "{job}");
    let shown: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(job["deadline_at"].clone()).unwrap();
    assert_eq!(shown.timestamp_millis(), deadline.timestamp_millis());
    let id = job["id"].as_str().unwrap();

    // The worker's sweep cancels it.
    let until = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let (s, v) = t.get(&job_path(id, ""), Some(&me)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["status"] != "pending" {
            break v;
        }
        assert!(Instant::now() < until, "still pending: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(v["status"], "cancelled", "{v}");
    assert_eq!(v["error_code"], "deadline_exceeded", "{v}");
    assert_eq!(v["credits_charged"], 0, "{v}");
    assert_eq!(v["attempt"], 0, "never started: {v}");
    assert!(v["started_at"].is_null(), "{v}");
    let (s, subs) = t.get(&job_path(id, "submissions"), Some(&me)).await;
    assert_eq!(s, StatusCode::OK, "{subs}");
    assert_eq!(subs.as_array().map(Vec::len), Some(0), "{subs}");
    let (s, acc) = t.get(&account_path, Some(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    assert_eq!(
        acc["credits"], 100,
        "the account's credits unchanged: {acc}"
    );
    t.stop().await;
}

#[tokio::test]
async fn list_filters_and_pages() {
    let t = TestServer::start().await;
    let me = t.user("gen-list@example.com").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let job = create(&t, &me, local_job(&format!("scene {i}"), false)).await;
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    let (s, _) = act(&t, &me, &ids[0], "pause").await;
    assert_eq!(s, StatusCode::OK);

    let list = |q: String| {
        let t = &t;
        let me = &me;
        async move {
            let (s, v) = t.get(&format!("{GENERATIONS}{q}"), Some(me)).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            v
        }
    };
    let all = list(String::new()).await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["offset"], 0);
    assert_eq!(all["limit"], 50);
    // Newest first.
    let order: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [&ids[2], &ids[1], &ids[0]]);

    let page1 = list("?limit=2".into()).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert_eq!(page1["total"], 3);
    assert_eq!(page1["limit"], 2);
    let page2 = list("?limit=2&offset=2".into()).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["items"][0]["id"], ids[0].as_str());
    assert_eq!(page2["offset"], 2);

    let paused = list("?status=paused".into()).await;
    assert_eq!(paused["total"], 1);
    assert_eq!(paused["items"][0]["id"], ids[0].as_str());
    let both = list("?status=paused,pending".into()).await;
    assert_eq!(both["total"], 3);
    assert_eq!(list("?status=completed".into()).await["total"], 0);
    assert_eq!(
        list("?provider=local&operation=text_to_video".into()).await["total"],
        3
    );
    assert_eq!(list("?operation=fusion".into()).await["total"], 0);
    assert_eq!(list("?provider=pixverse".into()).await["total"], 0);
    assert_eq!(
        list("?created_after=2000-01-01T00:00:00Z".into()).await["total"],
        3
    );
    assert_eq!(
        list("?created_before=2000-01-01T00:00:00Z".into()).await["total"],
        0
    );

    // Bad queries get the envelope.
    for q in [
        "?status=sleeping",
        "?operation=dance",
        "?limit=-1",
        "?created_after=yesterday",
        "?colour=red",
    ] {
        let (s, v) = t.get(&format!("{GENERATIONS}{q}"), Some(&me)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(error_code(&v), "invalid_query", "{q}");
    }

    // Users see only their own jobs; admins every user's, or one user's.
    let other = t.user("gen-list-2@example.com").await;
    let (_, theirs) = t.get(GENERATIONS, Some(&other)).await;
    assert_eq!(theirs["total"], 0, "{theirs}");
    let my_id = all["items"][0]["user_id"].as_str().unwrap().to_owned();
    let (s, v) = t
        .get(&format!("{GENERATIONS}?user_id={my_id}"), Some(&other))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(error_code(&v), "forbidden");
    let admin = t.admin("gen-list-admin@example.com").await;
    let (_, everyone) = t.get(GENERATIONS, Some(&admin)).await;
    assert_eq!(everyone["total"], 3);
    let (_, mine) = t
        .get(&format!("{GENERATIONS}?user_id={my_id}"), Some(&admin))
        .await;
    assert_eq!(mine["total"], 3);
    t.stop().await;
}

#[tokio::test]
async fn jobs_move_through_their_states() {
    let t = TestServer::start().await;
    let me = t.user("gen-states@example.com").await;
    let job = create(&t, &me, local_job("state machine", false)).await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["status"], "pending");

    let expect = |want: StatusCode, status: Option<&'static str>| {
        move |(s, v): (StatusCode, Value)| {
            assert_eq!(s, want, "{v}");
            if let Some(st) = status {
                assert_eq!(v["status"], st, "{v}");
            } else {
                assert_eq!(error_code(&v), "conflict");
            }
        }
    };
    expect(StatusCode::OK, Some("paused"))(act(&t, &me, &id, "pause").await);
    expect(StatusCode::CONFLICT, None)(act(&t, &me, &id, "pause").await);
    expect(StatusCode::CONFLICT, None)(act(&t, &me, &id, "retry").await);
    expect(StatusCode::OK, Some("pending"))(act(&t, &me, &id, "resume").await);
    expect(StatusCode::CONFLICT, None)(act(&t, &me, &id, "resume").await);
    expect(StatusCode::OK, Some("cancelled"))(act(&t, &me, &id, "cancel").await);
    expect(StatusCode::CONFLICT, None)(act(&t, &me, &id, "cancel").await);
    expect(StatusCode::CONFLICT, None)(act(&t, &me, &id, "pause").await);
    // Retry puts it back in the queue now; the worker renders it.
    expect(StatusCode::OK, Some("pending"))(act(&t, &me, &id, "retry").await);
    let done = wait_for(&t, &me, &id, "completed").await;
    assert!(done["asset_id"].is_string());
    expect(StatusCode::CONFLICT, None)(act(&t, &me, &id, "cancel").await);

    let (s, v) = t
        .call(Method::DELETE, &job_path(&id, ""), Some(&me), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert!(v.is_null());
    let (s, v) = t.get(&job_path(&id, ""), Some(&me)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "not_found");
    let (s, _) = t
        .call(Method::DELETE, &job_path(&id, ""), Some(&me), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn other_users_cannot_see_or_touch_my_jobs() {
    let t = TestServer::start().await;
    let me = t.user("gen-mine@example.com").await;
    let other = t.user("gen-theirs@example.com").await;
    let job = create(&t, &me, local_job("private", false)).await;
    let id = job["id"].as_str().unwrap().to_owned();

    let (s, v) = t.get(&job_path(&id, ""), Some(&other)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "not_found");
    let (s, _) = t.get(&job_path(&id, "submissions"), Some(&other)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for action in ["cancel", "pause", "resume", "retry"] {
        let (s, v) = act(&t, &other, &id, action).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{action}: {v}");
        assert_eq!(error_code(&v), "not_found");
    }
    let (s, _) = t
        .call(Method::DELETE, &job_path(&id, ""), Some(&other), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, still) = t.get(&job_path(&id, ""), Some(&me)).await;
    assert_eq!(still["status"], "pending", "untouched: {still}");

    // An unknown id answers the same as another user's.
    let (s, _) = t
        .get(&job_path(&uuid::Uuid::new_v4().to_string(), ""), Some(&me))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Admins see and steer every job.
    let admin = t.admin("gen-admin@example.com").await;
    let (s, _) = t.get(&job_path(&id, ""), Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = act(&t, &admin, &id, "cancel").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "cancelled");
    t.stop().await;
}

#[tokio::test]
async fn accounts_are_managed_without_revealing_keys() {
    let t = TestServer::start().await;
    let admin = t.admin("acc-admin@example.com").await;
    let user = t.user("acc-user@example.com").await;
    let other = t.user("acc-other@example.com").await;
    let secret = "pv-SECRET-0123456789abcdef";

    let no_secret = |v: &Value| {
        let text = v.to_string();
        assert!(!text.contains(secret), "the key leaked: {text}");
        assert!(!text.contains("SECRET"), "part of the key leaked: {text}");
        assert!(!text.contains("\"api_key\""), "an api_key field: {text}");
    };

    // An admin creates a shared Pixverse account.
    let (s, shared) = t
        .post(
            ACCOUNTS,
            Some(&admin),
            json!({"provider": "pixverse", "label": "team", "api_key": secret,
                   "shared": true, "credits": 100, "max_concurrent_jobs": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{shared}");
    no_secret(&shared);
    assert!(shared["owner_id"].is_null(), "{shared}");
    assert!(
        shared["api_key_hint"]
            .as_str()
            .is_some_and(|h| h.ends_with("cdef")),
        "{shared}"
    );
    assert_eq!(shared["status"], "active");
    assert_eq!(shared["max_concurrent_jobs"], 3);
    let shared_id = shared["id"].as_str().unwrap().to_owned();
    let shared_path = format!("{ACCOUNTS}/{shared_id}");

    // Users see it, cannot change or delete it, and cannot make shared ones.
    let (s, list) = t.get(ACCOUNTS, Some(&user)).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    no_secret(&list);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, v) = t.get(&shared_path, Some(&user)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    no_secret(&v);
    let (s, v) = t
        .call(
            Method::PATCH,
            &shared_path,
            Some(&user),
            Some(json!({"credits": 1_000_000})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(error_code(&v), "forbidden");
    let (s, _) = t
        .call(Method::DELETE, &shared_path, Some(&user), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .post(
            ACCOUNTS,
            Some(&user),
            json!({"provider": "openai", "label": "x", "api_key": "k", "shared": true}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // With the shared account, a Pixverse job validates for the user.
    let (s, v) = t
        .post(
            &format!("{GENERATIONS}/validate"),
            Some(&user),
            json!({"provider": "pixverse", "operation": "text_to_video",
                   "params": {"prompt": "a cat"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A user's own account: theirs to change, invisible to others.
    let (s, own) = t
        .post(
            ACCOUNTS,
            Some(&user),
            json!({"provider": "openai", "label": "mine", "api_key": secret}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{own}");
    no_secret(&own);
    assert!(own["owner_id"].is_string());
    let own_path = format!("{ACCOUNTS}/{}", own["id"].as_str().unwrap());
    let (s, v) = t
        .call(
            Method::PATCH,
            &own_path,
            Some(&user),
            Some(json!({"label": "renamed", "api_key": "sk-NEWKEY-9876"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["label"], "renamed");
    assert!(v["api_key_hint"].as_str().unwrap().ends_with("9876"), "{v}");
    assert!(!v.to_string().contains("NEWKEY"), "{v}");
    let (s, _) = t.get(&own_path, Some(&other)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::PATCH,
            &own_path,
            Some(&other),
            Some(json!({"label": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.call(Method::DELETE, &own_path, Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, others_list) = t.get(ACCOUNTS, Some(&other)).await;
    assert_eq!(
        others_list.as_array().unwrap().len(),
        1,
        "only the shared one"
    );

    // Admins see all, filter by provider, and change shared accounts.
    let (_, all) = t.get(ACCOUNTS, Some(&admin)).await;
    no_secret(&all);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, openai) = t
        .get(&format!("{ACCOUNTS}?provider=openai"), Some(&admin))
        .await;
    assert_eq!(openai.as_array().unwrap().len(), 1);
    assert_eq!(openai[0]["provider"], "openai");
    let (s, v) = t
        .call(
            Method::PATCH,
            &shared_path,
            Some(&admin),
            Some(json!({"status": "disabled", "credits": 5, "priority": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    no_secret(&v);
    assert_eq!(v["status"], "disabled");
    assert_eq!(v["credits"], 5);
    assert_eq!(v["priority"], 7);
    assert_eq!(v["label"], "team", "absent fields stay");

    // Bad input gets the envelope.
    for (body, want, code) in [
        (
            json!({"provider": "pixverse", "label": "x", "api_key": "k", "colour": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            // Accounts cannot point provider calls anywhere (SSRF): the base URL is
            // server configuration only.
            json!({"provider": "pixverse", "label": "x", "api_key": "k",
                   "base_url": "http://169.254.169.254/latest"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"provider": "nope", "label": "x", "api_key": "k"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"provider": "pixverse", "label": " ", "api_key": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ] {
        let (s, v) = t.post(ACCOUNTS, Some(&admin), body).await;
        assert_eq!(s, want, "{v}");
        assert_eq!(error_code(&v), code);
    }
    for patch in [
        json!({"api_key": ""}),
        json!({"base_url": "https://example.com"}),
        json!({"status": "sleepy"}),
        json!({"max_concurrent_jobs": -1}),
        json!({"secret": "x"}),
    ] {
        let (s, v) = t
            .call(
                Method::PATCH,
                &shared_path,
                Some(&admin),
                Some(patch.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {v}");
        assert_eq!(error_code(&v), "validation_failed");
    }
    // One home for the rules (the service): every failed rule is listed with its field.
    let (s, v) = t
        .call(
            Method::PATCH,
            &shared_path,
            Some(&admin),
            Some(json!({"label": " ", "daily_limit": -1, "max_concurrent_jobs": 5000})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["error"]["details"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["label", "max_concurrent_jobs", "daily_limit"],
        "{v}"
    );
    let (s, v) = t.get(&format!("{ACCOUNTS}?owner=me"), Some(&admin)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(error_code(&v), "invalid_query");

    // Delete: 204, then gone.
    let (s, v) = t
        .call(Method::DELETE, &shared_path, Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = t.get(&shared_path, Some(&admin)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "not_found");
    let (s, _) = t.call(Method::DELETE, &own_path, Some(&user), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, none) = t.get(ACCOUNTS, Some(&user)).await;
    assert_eq!(none, json!([]));
    t.stop().await;
}

#[tokio::test]
async fn bad_requests_get_the_envelope() {
    let t = TestServer::start().await;
    let me = t.user("gen-bad@example.com").await;

    // No token.
    for (m, p) in [
        (Method::GET, GENERATIONS.to_owned()),
        (Method::POST, GENERATIONS.to_owned()),
        (Method::GET, ACCOUNTS.to_owned()),
        (Method::GET, job_path(&uuid::Uuid::new_v4().to_string(), "")),
    ] {
        let (s, v) = t.call(m, &p, None, Some(json!({}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{p}: {v}");
        assert_eq!(error_code(&v), "unauthorized");
    }

    // Malformed JSON.
    for path in [
        GENERATIONS.to_owned(),
        format!("{GENERATIONS}/validate"),
        ACCOUNTS.to_owned(),
    ] {
        let res = t
            .http
            .post(t.url(&path))
            .bearer_auth(&me)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(error_code(&v), "malformed_json", "{path}");
    }

    // Unknown or mistyped fields, at any depth.
    for body in [
        json!({"operation": "text_to_video", "params": {"prompt": "x"}, "colour": "red"}),
        json!({"operation": "text_to_video", "params": {"prompt": "x", "fps": 60}}),
        json!({"operation": "teleport", "params": {"prompt": "x"}}),
        json!({"operation": "text_to_video", "params": {"prompt": "x"}, "priority": "high"}),
        json!({"operation": "text_to_video", "inputs": [{"asset": "x"}]}),
    ] {
        for path in [GENERATIONS.to_owned(), format!("{GENERATIONS}/validate")] {
            let (s, v) = t.post(&path, Some(&me), body.clone()).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {v}");
            assert_eq!(error_code(&v), "validation_failed");
        }
    }

    // A malformed id.
    for (m, p) in [
        (Method::GET, format!("{GENERATIONS}/not-a-uuid")),
        (Method::POST, format!("{GENERATIONS}/not-a-uuid/cancel")),
        (Method::DELETE, format!("{GENERATIONS}/not-a-uuid")),
        (Method::GET, format!("{ACCOUNTS}/not-a-uuid")),
    ] {
        let (s, v) = t.call(m, &p, Some(&me), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{p}: {v}");
        assert_eq!(error_code(&v), "invalid_path");
    }

    // Wrong method on a known path.
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("{GENERATIONS}/validate"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(error_code(&v), "method_not_allowed");
    t.stop().await;
}

/// A minimal Pixverse balance endpoint on a local port, as the contract documents it:
/// `GET /openapi/v2/account/balance` with `API-KEY` and `Ai-trace-id` headers answers
/// `{ErrCode: 0, ErrMsg, Resp: {account_id, credit_monthly, credit_package}}`; a wrong
/// key gets `ErrCode` 10002 with HTTP 401. Returns the base URL and the trace ids seen.
async fn pixverse_balance_fake(
    key: &'static str,
    monthly: i64,
    package: i64,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let traces = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = traces.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_lowercase();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}:")))
                        .map(|v| v.trim().to_owned())
                };
                if let Some(t) = header("ai-trace-id") {
                    seen.lock().unwrap().push(t);
                }
                let (status, body) = if !head.starts_with("get /openapi/v2/account/balance ") {
                    (
                        "404 Not Found",
                        json!({"ErrCode": 400017, "ErrMsg": "no such path", "Resp": {}}),
                    )
                } else if header("api-key").as_deref() != Some(&key.to_lowercase()) {
                    (
                        "401 Unauthorized",
                        json!({"ErrCode": 10002, "ErrMsg": "invalid api key", "Resp": {}}),
                    )
                } else {
                    (
                        "200 OK",
                        json!({"ErrCode": 0, "ErrMsg": "success", "Resp": {
                        "account_id": 7, "credit_monthly": monthly, "credit_package": package}}),
                    )
                };
                let body = body.to_string();
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    (base, traces)
}

#[tokio::test]
async fn accounts_refresh_their_balance_from_the_provider() {
    let (base, traces) = pixverse_balance_fake("pv-key", 70, 30).await;
    // The provider's base URL is server configuration; the fake is on loopback.
    let t = TestServer::start_with(|c| {
        c.generation.pixverse_base_url = Some(base.clone());
        c.generation.allow_private_outbound = true;
    })
    .await;
    let admin = t.admin("bal-admin@example.com").await;
    let me = t.user("bal-me@example.com").await;
    let other = t.user("bal-other@example.com").await;

    let (s, mine) = t
        .post(
            ACCOUNTS,
            Some(&me),
            json!({"provider": "pixverse", "label": "mine", "api_key": "pv-key", "credits": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    assert!(mine["balance_checked_at"].is_null(), "{mine}");
    let refresh = |id: &Value| format!("{ACCOUNTS}/{}/refresh", id.as_str().unwrap());

    // Monthly plus package credits.
    let (s, v) = t
        .call(Method::POST, &refresh(&mine["id"]), Some(&me), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["credits"], 100);
    assert_eq!(v["status"], "active");
    assert!(v["balance_checked_at"].is_string(), "{v}");
    assert_eq!(
        t.get(
            &format!("{ACCOUNTS}/{}", mine["id"].as_str().unwrap()),
            Some(&me)
        )
        .await
        .1["credits"],
        100
    );
    // Not someone else's; admins may.
    let (s, v) = t
        .call(Method::POST, &refresh(&mine["id"]), Some(&other), None)
        .await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, _) = t
        .call(Method::POST, &refresh(&mine["id"]), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .call(Method::POST, &refresh(&mine["id"]), None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    {
        let traces = traces.lock().unwrap();
        assert_eq!(traces.len(), 2, "one call per refresh");
        assert_ne!(traces[0], traces[1], "a fresh Ai-trace-id per request");
    }

    // A refused key: 409, and the account is marked `error`.
    let (_, wrong) = t
        .post(
            ACCOUNTS,
            Some(&me),
            json!({"provider": "pixverse", "label": "wrong", "api_key": "nope"}),
        )
        .await;
    let (s, v) = t
        .call(Method::POST, &refresh(&wrong["id"]), Some(&me), None)
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::CONFLICT, "conflict"),
        "{v}"
    );
    let (_, wrong) = t
        .get(
            &format!("{ACCOUNTS}/{}", wrong["id"].as_str().unwrap()),
            Some(&me),
        )
        .await;
    assert_eq!(wrong["status"], "error");

    // Unreachable: 503 (a server configured with a closed port), and no error text of
    // the transport in the answer.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t2 = TestServer::start_with(|c| {
        c.generation.pixverse_base_url = Some(format!("http://127.0.0.1:{closed}"));
        c.generation.allow_private_outbound = true;
    })
    .await;
    let me2 = t2.user("bal-away@example.com").await;
    let (_, away) = t2
        .post(
            ACCOUNTS,
            Some(&me2),
            json!({"provider": "pixverse", "label": "away", "api_key": "pv-key"}),
        )
        .await;
    let (s, v) = t2
        .call(Method::POST, &refresh(&away["id"]), Some(&me2), None)
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{v}"
    );
    assert!(!v.to_string().contains("127.0.0.1"), "{v}");
    t2.stop().await;

    // OpenAI has no balance endpoint.
    let (_, oa) = t
        .post(
            ACCOUNTS,
            Some(&me),
            json!({"provider": "openai", "label": "oa", "api_key": "sk"}),
        )
        .await;
    let (s, v) = t
        .call(Method::POST, &refresh(&oa["id"]), Some(&me), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"]["code"], "unsupported");
    t.stop().await;
}

/// A local job of `secs` seconds of 640x360 video, due now.
fn long_local_job(prompt: &str, secs: u32) -> Value {
    json!({
        "provider": "local",
        "operation": "text_to_video",
        "params": {"prompt": prompt, "duration": secs, "quality": "360p", "aspect_ratio": "16:9"},
    })
}

#[tokio::test]
async fn a_local_job_reports_its_progress_up_to_100() {
    let t = TestServer::start().await;
    let me = t.user("gen-progress@example.com").await;
    let job = create(&t, &me, long_local_job("a slow tide over the dunes", 10)).await;
    let id = job["id"].as_str().unwrap().to_owned();
    if job["status"] == "pending" {
        assert!(job["progress"].is_null(), "{job}");
    }

    // Every value seen while it renders, in order, then the completed job.
    let mut seen: Vec<f64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let (s, v) = t.get(&job_path(&id, ""), Some(&me)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        match v["status"].as_str().unwrap() {
            "completed" => break v,
            "processing" => {
                let p = v["progress"]
                    .as_f64()
                    .expect("a processing job has a progress");
                assert!(v["queue_position"].is_null(), "{v}");
                assert!(v["estimated_start_at"].is_null(), "{v}");
                seen.push(p);
            }
            "pending" => assert!(v["progress"].is_null(), "{v}"),
            _ => panic!("the job ended otherwise: {v}"),
        }
        assert!(Instant::now() < deadline, "still not completed: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["progress"], 100.0, "{done}");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {seen:?}"
    );
    assert!(
        seen.iter().any(|&p| p > 0.0 && p < 100.0),
        "no progress between 0 and 100 while rendering: {seen:?}"
    );
    assert!(seen.iter().all(|&p| (0.0..=100.0).contains(&p)), "{seen:?}");
    // Positions are for pending jobs only.
    assert!(done["queue_position"].is_null(), "{done}");
    assert!(done["estimated_start_at"].is_null(), "{done}");
}

#[tokio::test]
async fn queue_positions_count_down_with_two_workers_busy() {
    let t = TestServer::start_with(|c| {
        c.generation.workers = 2;
        c.generation.worker_concurrency = 1;
    })
    .await;
    let me = t.user("gen-queue@example.com").await;
    // The WebSocket stream, read throughout: places are announced as they change.
    let mut ws = crate::assets::ws_with_query(&t, &me).await;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut events = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stop_rx => return events,
                ev = crate::assets::next_event(&mut ws) => events.push(ev),
            }
        }
    });
    let mut ids = Vec::new();
    for i in 0..5 {
        let job = create(&t, &me, long_local_job(&format!("queue {i}"), 10)).await;
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    let last = ids.last().unwrap().clone();

    // Positions the last job showed, in order; whether both workers were seen busy
    // with the three others waiting at 1, 2 and 3.
    let mut last_positions: Vec<i64> = Vec::new();
    let mut saw_two_busy_three_waiting = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, page) = t.get(GENERATIONS, Some(&me)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        let by_id = |id: &str| items.iter().find(|g| g["id"] == id).unwrap().clone();
        let jobs: Vec<Value> = ids.iter().map(|id| by_id(id)).collect();
        for j in &jobs {
            let status = j["status"].as_str().unwrap();
            assert!(!["failed", "cancelled", "paused"].contains(&status), "{j}");
            if status != "pending" {
                assert!(j["queue_position"].is_null(), "{j}");
                assert!(j["estimated_start_at"].is_null(), "{j}");
            }
        }
        let processing = jobs.iter().filter(|j| j["status"] == "processing").count();
        let completed = jobs.iter().filter(|j| j["status"] == "completed").count();
        assert!(processing <= 2, "more than two jobs running: {jobs:?}");
        // The placed jobs, oldest first, hold positions 1..=n (one statement computes
        // them all, so they agree even when a claim happens between the two reads).
        let placed: Vec<&Value> = jobs
            .iter()
            .filter(|j| !j["queue_position"].is_null())
            .collect();
        let positions: Vec<i64> = placed
            .iter()
            .map(|j| j["queue_position"].as_i64().unwrap())
            .collect();
        let expected: Vec<i64> = (1..=placed.len() as i64).collect();
        assert_eq!(positions, expected, "{jobs:?}");
        if processing == 2 && positions == [1, 2, 3] {
            saw_two_busy_three_waiting = true;
        }
        // Once a job has completed, every placed job has an estimate, later (or the
        // same) for a later position.
        if completed > 0 {
            let starts: Vec<chrono::DateTime<chrono::Utc>> = placed
                .iter()
                .map(|j| {
                    j["estimated_start_at"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no estimate: {j}"))
                        .parse()
                        .unwrap()
                })
                .collect();
            assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{jobs:?}");
        }
        let l = by_id(&last);
        if let Some(p) = l["queue_position"].as_i64() {
            last_positions.push(p);
        }
        if completed == ids.len() {
            break;
        }
        assert!(Instant::now() < deadline, "not all completed: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_two_busy_three_waiting,
        "never saw two jobs running and three waiting at 1, 2, 3"
    );
    assert!(
        last_positions.windows(2).all(|w| w[0] >= w[1]),
        "the last job's position went up: {last_positions:?}"
    );
    assert!(
        last_positions.first() >= Some(&3) && last_positions.last() == Some(&1),
        "the last job did not count down from 3 to 1: {last_positions:?}"
    );
    // Over the WebSocket, without polling: the last job's place came down to 1 in
    // `job:updated` events, never going up.
    let _ = stop_tx.send(());
    let events = reader.await.unwrap();
    let places: Vec<i64> = events
        .iter()
        .filter(|e| e["type"] == "job:updated" && e["generation"]["id"] == last.as_str())
        .filter_map(|e| e["generation"]["queue_position"].as_i64())
        .collect();
    assert!(
        places.windows(2).all(|w| w[0] >= w[1]),
        "the place went up: {places:?}"
    );
    // Created at place 3 or later: the stream announced its moves down to 1 (two claims
    // close together may make one announcement).
    let created_at = events
        .iter()
        .find(|e| e["type"] == "job:created" && e["generation"]["id"] == last.as_str())
        .and_then(|e| e["generation"]["queue_position"].as_i64());
    assert!(created_at >= Some(3), "{created_at:?}");
    assert!(
        places.last() == Some(&1),
        "the WebSocket did not count down to 1: {places:?}"
    );
}
