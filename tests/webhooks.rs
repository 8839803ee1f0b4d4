//! Webhooks over REST against the real server: registration, signed deliveries of a
//! local job's events to a receiver on loopback that was down for its first attempts,
//! the delivery log, redelivery, and the refusals.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use generation::webhooks::sign;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{TestServer, error_code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WEBHOOKS: &str = "/api/v1/webhooks";

/// One POST the receiver took.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

/// A webhook receiver on `port` of loopback: answers every POST with 200 and records it.
async fn receiver(port: u16) -> Arc<Mutex<Vec<Received>>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the receiver's port is free again");
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                // Requests on a kept-alive connection, one after another.
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let header = |name: &str| {
                        head.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_owned())
                        })
                    };
                    let len: usize = header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
                    buf.drain(..head_end + len);
                    seen.lock().unwrap().push(Received {
                        id: header("webhook-id").unwrap_or_default(),
                        timestamp: header("webhook-timestamp")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                        signature: header("webhook-signature").unwrap_or_default(),
                        body,
                    });
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if sock.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    got
}

/// A loopback port nothing listens on (yet).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn deliveries(t: &TestServer, token: &str, hook: &str, query: &str) -> Value {
    let (s, v) = t
        .get(
            &format!("{WEBHOOKS}/{hook}/deliveries?limit=200{query}"),
            Some(token),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Polls until `done` holds for the delivery log (30 s at most).
async fn wait_log(
    t: &TestServer,
    token: &str,
    hook: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = deliveries(t, token, hook, "").await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "still not {what}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_job_s_events_reach_a_receiver_once_each_in_order_signed_after_it_was_down() {
    let t = TestServer::start_with(|c| {
        c.generation.allow_private_outbound = true;
        c.webhooks.retry_schedule_secs = vec![0.3; 30];
        c.webhooks.timeout_secs = 2.0;
    })
    .await;
    let me = t.user("hooks@example.com").await;
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/hooks?token=abc");

    let (s, hook) = t
        .post(
            WEBHOOKS,
            Some(&me),
            json!({"url": url, "events": ["*"], "description": "studio pipeline"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{hook}");
    let key = sign::secret_key(&secret).unwrap();
    // The secret is shown once: never in the listing or the endpoint.
    let (s, list) = t.get(WEBHOOKS, Some(&me)).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["url"], url.as_str());
    assert!(!list.to_string().contains(&secret), "{list}");
    let (s, one) = t.get(&format!("{WEBHOOKS}/{hook_id}"), Some(&me)).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert!(one.get("secret").is_none(), "{one}");

    // A local job, rendered while the receiver is down.
    let (s, job) = t
        .post(
            "/api/v1/generations",
            Some(&me),
            json!({"provider": "local", "operation": "text_to_video",
                   "params": {"prompt": "a paper boat on a canal", "duration": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    // The first message (job:created) fails three times: the connection is refused.
    let log =
        wait_log(&t, &me, &hook_id, "three failed attempts", |v| {
            v["items"].as_array().unwrap().iter().any(|d| {
                d["event_type"] == "job:created" && d["attempts"].as_i64().unwrap_or(0) >= 3
            })
        })
        .await;
    let created = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_type"] == "job:created")
        .unwrap()
        .clone();
    assert_eq!(created["status"], "pending", "{created}");
    assert!(created["last_error"].is_string(), "{created}");
    assert!(created["next_attempt_at"].is_string(), "{created}");
    let failed_attempts = created["attempt_log"].as_array().unwrap();
    assert!(failed_attempts.len() >= 3, "{created}");
    assert!(
        failed_attempts
            .iter()
            .all(|a| a["status_code"].is_null() && a["error"].is_string()),
        "{created}"
    );
    // The secret and the URL's query never show in the log.
    assert!(!log.to_string().contains(&secret));
    assert!(!log.to_string().contains("token=abc"), "{log}");

    // The job completes meanwhile; later events wait behind the first one.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, j) = t
            .get(&format!("/api/v1/generations/{job_id}"), Some(&me))
            .await;
        if j["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "{j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The receiver comes up: everything is delivered.
    let got = receiver(port).await;
    let log = wait_log(&t, &me, &hook_id, "all delivered", |v| {
        let items = v["items"].as_array().unwrap();
        items.iter().any(|d| d["event_type"] == "job:completed")
            && items.iter().any(|d| d["event_type"] == "asset:created")
            && items.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(log["total"].as_u64().unwrap() as usize, items.len());
    let received = got.lock().unwrap().clone();

    // Exactly once each: the ids received are the log's ids, none twice.
    let ids: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a message arrived twice: {ids:?}");
    let logged: HashSet<&str> = items
        .iter()
        .map(|d| d["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(unique, logged);

    // Each signed as Standard Webhooks says, with the secret shown at creation.
    let now = chrono::Utc::now().timestamp();
    for r in &received {
        sign::verify(
            &key,
            &r.id,
            r.timestamp,
            r.body.as_bytes(),
            &r.signature,
            now,
            300,
        )
        .unwrap_or_else(|e| panic!("bad signature on {}: {e}", r.id));
    }
    let wrong = sign::secret_key(&sign::new_secret()).unwrap();
    assert!(
        sign::verify(
            &wrong,
            &received[0].id,
            received[0].timestamp,
            received[0].body.as_bytes(),
            &received[0].signature,
            now,
            300
        )
        .is_err()
    );

    // The job's events, in order: created first, completed last, statuses never going
    // back, progress never falling.
    let bodies: Vec<Value> = received
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let job_events: Vec<&Value> = bodies
        .iter()
        .filter(|b| b["data"]["generation"]["id"] == job_id.as_str())
        .collect();
    let types: Vec<&str> = job_events
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"job:created"), "{types:?}");
    assert_eq!(types.last(), Some(&"job:completed"), "{types:?}");
    assert_eq!(
        types.iter().filter(|t| **t == "job:completed").count(),
        1,
        "{types:?}"
    );
    let rank = |s: &str| match s {
        "pending" => 0,
        "processing" => 1,
        _ => 2,
    };
    let mut last_rank = 0;
    let mut last_progress = -1.0;
    let mut last_updated = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    for b in &job_events {
        let g = &b["data"]["generation"];
        let r = rank(g["status"].as_str().unwrap());
        assert!(r >= last_rank, "status went back: {types:?}");
        last_rank = r;
        if let Some(p) = g["progress"].as_f64() {
            assert!(p >= last_progress, "progress fell: {b}");
            last_progress = p;
        }
        let updated: chrono::DateTime<chrono::Utc> =
            g["updated_at"].as_str().unwrap().parse().unwrap();
        assert!(updated >= last_updated, "out of order: {b}");
        last_updated = updated;
        assert_eq!(b["timestamp"], g["updated_at"]);
    }
    assert_eq!(last_progress, 100.0);
    let asset = bodies
        .iter()
        .find(|b| b["type"] == "asset:created")
        .unwrap();
    assert_eq!(
        asset["data"]["asset"]["id"],
        job_events.last().unwrap()["data"]["generation"]["asset_id"]
    );

    // The log: the first message took several attempts, the last one answered 200.
    let first = items
        .iter()
        .find(|d| d["event_type"] == "job:created")
        .unwrap();
    let attempts = first["attempt_log"].as_array().unwrap();
    assert!(first["attempts"].as_i64().unwrap() >= 4, "{first}");
    assert_eq!(attempts.last().unwrap()["status_code"], 200, "{first}");
    assert!(first["delivered_at"].is_string());
    assert!(first["next_attempt_at"].is_null());
    assert_eq!(
        first["payload"]["data"]["generation"]["id"],
        job_id.as_str()
    );
    let (s, only_failed) = t
        .get(
            &format!("{WEBHOOKS}/{hook_id}/deliveries?status=failed"),
            Some(&me),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(only_failed["total"], 0, "{only_failed}");

    // Redelivery sends it again, same webhook-id.
    let first_id = first["id"].as_str().unwrap();
    let before = got.lock().unwrap().len();
    let (s, again) = t
        .call(
            Method::POST,
            &format!("{WEBHOOKS}/{hook_id}/deliveries/{first_id}/redeliver"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["status"], "pending");
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() == before {
        assert!(Instant::now() < deadline, "the redelivery never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = got.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.id, first["message_id"].as_str().unwrap());

    // The process's counters.
    let metrics = t.metrics().await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert!(value("pixsim_webhook_deliveries_total") >= items.len() as f64 + 1.0);
    assert!(value("pixsim_webhook_attempts_failed_total") >= 3.0);
    assert_eq!(value("pixsim_webhook_events_dropped_total"), 0.0);
    t.stop().await;
}

/// A receiver that answers every request with `status`; counts them.
async fn refusing_receiver(status: u16) -> (String, Arc<Mutex<u32>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count: Arc<Mutex<u32>> = Arc::default();
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 8192];
                if matches!(sock.read(&mut chunk).await, Ok(n) if n > 0) {
                    *seen.lock().unwrap() += 1;
                    let answer = format!(
                        "HTTP/1.1 {status} Nope\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                }
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn a_message_the_receiver_keeps_refusing_fails_after_its_schedule_and_can_be_redelivered() {
    let t = TestServer::start_with(|c| {
        c.generation.allow_private_outbound = true;
        c.webhooks.retry_schedule_secs = vec![0.1, 0.2];
    })
    .await;
    let me = t.user("hooks-refused@example.com").await;
    let (url, count) = refusing_receiver(500).await;
    let (s, hook) = t
        .post(
            WEBHOOKS,
            Some(&me),
            json!({"url": url, "events": ["job:created"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    // Scheduled far ahead: only job:created happens, and only it is asked for.
    let (s, job) = t
        .post(
            "/api/v1/generations",
            Some(&me),
            json!({"provider": "local", "operation": "text_to_video",
                   "params": {"prompt": "a closed door", "duration": 1},
                   "scheduled_at": "2100-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    let log = wait_log(&t, &me, &hook_id, "failed", |v| {
        v["items"][0]["status"] == "failed"
    })
    .await;
    assert_eq!(log["total"], 1, "{log}");
    let d = &log["items"][0];
    assert_eq!(d["event_type"], "job:created");
    // The first attempt and one per wait of the schedule.
    assert_eq!(d["attempts"], 3, "{d}");
    assert_eq!(*count.lock().unwrap(), 3);
    assert_eq!(d["last_status_code"], 500);
    assert_eq!(d["last_error"], "HTTP 500");
    assert!(
        d["next_attempt_at"].is_null() && d["delivered_at"].is_null(),
        "{d}"
    );
    let codes: Vec<&Value> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(500)]);

    // Redelivered: a fresh schedule (three more attempts), then failed again.
    let id = d["id"].as_str().unwrap();
    let path = format!("{WEBHOOKS}/{hook_id}/deliveries/{id}/redeliver");
    let (s, v) = t.call(Method::POST, &path, Some(&me), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let log = wait_log(&t, &me, &hook_id, "failed again", |v| {
        v["items"][0]["status"] == "failed" && v["items"][0]["attempts"] == 6
    })
    .await;
    assert_eq!(log["items"][0]["attempt_log"].as_array().unwrap().len(), 6);
    assert_eq!(*count.lock().unwrap(), 6);
    // A pending one cannot be redelivered; an unknown one is not found.
    let (s, _) = t.call(Method::POST, &path, Some(&me), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = t.call(Method::POST, &path, Some(&me), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let unknown = format!(
        "{WEBHOOKS}/{hook_id}/deliveries/{}/redeliver",
        uuid::Uuid::new_v4()
    );
    let (s, _) = t.call(Method::POST, &unknown, Some(&me), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn endpoints_are_checked_owned_and_bounded() {
    // The default guard: no private destinations.
    let t = TestServer::start_with(|c| c.webhooks.max_per_user = 2).await;
    let me = t.user("hooks-owner@example.com").await;
    let other = t.user("hooks-other@example.com").await;
    let bad = |url: &str, events: Value| json!({"url": url, "events": events});
    let mut codes: HashMap<&str, (StatusCode, String)> = HashMap::new();
    for (name, body) in [
        ("ftp", bad("ftp://example.com/x", json!(["*"]))),
        ("loopback", bad("http://127.0.0.1:9/x", json!(["*"]))),
        ("private", bad("http://10.1.2.3/x", json!(["job:created"]))),
        ("localhost", bad("http://localhost/x", json!(["*"]))),
        ("not a url", bad("no url", json!(["*"]))),
        (
            "unknown event",
            bad("https://example.com/x", json!(["job:exploded"])),
        ),
        ("no events", bad("https://example.com/x", json!([]))),
    ] {
        let (s, v) = t.post(WEBHOOKS, Some(&me), body).await;
        codes.insert(name, (s, error_code(&v).to_owned()));
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    for (name, (s, code)) in &codes {
        assert_eq!(
            (*s, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{name}"
        );
    }
    let (s, v) = t
        .post(WEBHOOKS, Some(&me), json!({"url": "https://example.com/x"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = t
        .post(
            WEBHOOKS,
            None,
            json!({"url": "https://example.com/x", "events": ["*"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Two allowed, the third refused.
    let mut ids = Vec::new();
    for i in 0..2 {
        let (s, v) = t
            .post(
                WEBHOOKS,
                Some(&me),
                json!({"url": format!("https://example.com/{i}"), "events": ["job:completed"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (s, v) = t
        .post(
            WEBHOOKS,
            Some(&me),
            json!({"url": "https://example.com/2", "events": ["*"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(error_code(&v), "conflict");

    // Another user sees none of them and cannot touch them.
    let (_, list) = t.get(WEBHOOKS, Some(&other)).await;
    assert_eq!(list, json!([]));
    let hook = &ids[0];
    for (method, path) in [
        (Method::GET, format!("{WEBHOOKS}/{hook}")),
        (Method::GET, format!("{WEBHOOKS}/{hook}/deliveries")),
        (Method::DELETE, format!("{WEBHOOKS}/{hook}")),
        (
            Method::POST,
            format!(
                "{WEBHOOKS}/{hook}/deliveries/{}/redeliver",
                uuid::Uuid::nil()
            ),
        ),
    ] {
        let (s, v) = t.call(method.clone(), &path, Some(&other), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {v}");
    }
    let (s, v) = t
        .get(
            &format!("{WEBHOOKS}/{hook}/deliveries?status=lost"),
            Some(&me),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Deleted: gone, and a slot is free again.
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("{WEBHOOKS}/{hook}"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.get(&format!("{WEBHOOKS}/{hook}"), Some(&me)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = t
        .post(
            WEBHOOKS,
            Some(&me),
            json!({"url": "https://example.com/3", "events": ["*"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    t.stop().await;
}
