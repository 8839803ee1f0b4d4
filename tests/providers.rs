//! The generation providers over REST: `GET /api/v1/providers` (operations, limits,
//! credit rules, status per user), a retired provider refusing jobs, a whole Replicate
//! job through the real server against the contract fake (and finished at once by the
//! fake's signed webhook), and each provider's reachability in `/health` (cached, never
//! failing readiness).

use std::time::{Duration, Instant};

use generation::fakes::Endpoint;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{TestServer, error_code};

const PROVIDERS: &str = "/api/v1/providers";

fn by_id<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {list}"))
}

#[tokio::test]
async fn providers_are_listed_with_limits_credit_rules_and_status() {
    let t = TestServer::start().await;
    let (s, v) = t.get(PROVIDERS, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let me = t.user("providers-me@example.com").await;

    let (s, list) = t.get(PROVIDERS, Some(&me)).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["local", "openai", "pixverse", "replicate"]);

    // local: every operation, free, no account needed.
    let local = by_id(&list, "local");
    assert_eq!(local["status"], "available");
    assert_eq!(local["requires_account"], false);
    assert_eq!(local["credits"], json!({"kind": "free"}));
    assert_eq!(local["operations"].as_array().unwrap().len(), 5);
    let t2v = &local["operations"][0];
    assert_eq!(t2v["operation"], "text_to_video");
    assert_eq!(t2v["prompt_required"], true);
    assert_eq!(t2v["durations"].as_array().unwrap().len(), 10);
    assert_eq!(t2v["defaults"]["duration"], 2);

    // openai: retired on its date, takes no jobs.
    let openai = by_id(&list, "openai");
    assert_eq!(openai["status"], "retired");
    assert_eq!(openai["retired_on"], "2026-09-24");
    assert_eq!(openai["accepts_jobs"], false);
    assert_eq!(openai["operations"][0]["durations"], json!([4, 8, 12]));

    // pixverse: per-video prices by quality, doubled for 8 s and fast motion; no
    // cancel call in its contract; no account yet for this user.
    let pixverse = by_id(&list, "pixverse");
    assert_eq!(pixverse["status"], "unconfigured");
    assert_eq!(pixverse["can_cancel"], false);
    let credits = &pixverse["credits"];
    assert_eq!(credits["kind"], "table");
    assert_eq!(credits["by"], "quality");
    assert_eq!(credits["per"], "video");
    assert_eq!(credits["prices"]["1080p"], 120);
    assert_eq!(credits["multipliers"][0]["param"], "duration");
    assert_eq!(credits["multipliers"][0]["above"], 5);
    assert_eq!(credits["multipliers"][1]["equals"], "fast");

    // replicate: two operations on the configured models, per-second prices.
    let replicate = by_id(&list, "replicate");
    assert_eq!(replicate["status"], "unconfigured");
    assert_eq!(replicate["can_cancel"], true);
    let ops = replicate["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0]["models"], json!(["wan-video/wan-2.5-t2v"]));
    assert_eq!(ops[1]["models"], json!(["wan-video/wan-2.5-i2v"]));
    assert_eq!(ops[0]["durations"], json!([5, 10]));
    assert_eq!(ops[0]["aspect_ratios"], json!(["16:9", "9:16"]));
    assert_eq!(replicate["credits"]["per"], "second");
    assert_eq!(replicate["credits"]["prices"]["720p"], 10);

    // With an account of their own, replicate becomes available to this user only.
    let (s, v) = t
        .post(
            "/api/v1/accounts",
            Some(&me),
            json!({"provider": "replicate", "label": "mine", "api_key": "r8_x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, list) = t.get(PROVIDERS, Some(&me)).await;
    assert_eq!(by_id(&list, "replicate")["status"], "available");
    let other = t.user("providers-other@example.com").await;
    let (_, list) = t.get(PROVIDERS, Some(&other)).await;
    assert_eq!(by_id(&list, "replicate")["status"], "unconfigured");

    // A job for the retired provider: 422 naming the retirement, from create and
    // validate alike, even with an account.
    let (s, _) = t
        .post(
            "/api/v1/accounts",
            Some(&me),
            json!({"provider": "openai", "label": "oa", "api_key": "sk"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let body = json!({"provider": "openai", "operation": "text_to_video",
                      "params": {"prompt": "waves"}});
    for path in ["/api/v1/generations", "/api/v1/generations/validate"] {
        let (s, v) = t.post(path, Some(&me), body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
        assert_eq!(error_code(&v), "validation_failed");
        let issue = &v["error"]["details"]["issues"][0];
        assert_eq!(issue["field"], "provider");
        assert_eq!(issue["code"], "retired");
        assert!(
            issue["message"].as_str().unwrap().contains("2026-09-24"),
            "{v}"
        );
    }
    t.stop().await;
}

/// A Replicate text_to_video job through the real server: created over REST, run by
/// the in-process worker against the contract fake, its progress shown, its video
/// stored as an asset.
#[tokio::test]
async fn a_replicate_job_runs_against_the_contract_fake() {
    let fake = generation::fakes::replicate::start("r8_e2e").await.unwrap();
    fake.control.set_polls_until_done(4);
    let base = format!("{}/v1", fake.base_url());
    let t = TestServer::start_with(|c| {
        c.generation
            .providers
            .set("replicate", "base_url", base.as_str())
            .set("replicate", "poll_interval_secs", 0.05);
        c.generation.allow_private_outbound = true;
    })
    .await;
    let me = t.user("replicate-e2e@example.com").await;
    let (s, v) = t
        .post(
            "/api/v1/accounts",
            Some(&me),
            json!({"provider": "replicate", "label": "r8", "api_key": "r8_e2e"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, job) = t
        .post(
            "/api/v1/generations",
            Some(&me),
            json!({"provider": "replicate", "operation": "text_to_video",
                   "params": {"prompt": "a paper boat", "quality": "480p"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    assert_eq!(job["estimated_credits"], 25);
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let (_, v) = t.get(&format!("/api/v1/generations/{id}"), Some(&me)).await;
        if v["status"] == "completed" {
            break v;
        }
        assert!(v["status"] != "failed", "{v}");
        assert!(Instant::now() < deadline, "not completed: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["progress"], 100.0);
    let sub = &fake.control.submits()[0];
    assert_eq!(sub["model"], "wan-video/wan-2.5-t2v");
    assert_eq!(sub["body"]["input"]["size"], "832*480");
    let asset = done["asset_id"].as_str().unwrap();
    let res = t
        .http
        .get(t.url(&format!("/api/v1/assets/{asset}/file")))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.unwrap().starts_with(b"GIF8"));
    let (_, subs) = t
        .get(&format!("/api/v1/generations/{id}/submissions"), Some(&me))
        .await;
    assert_eq!(subs[0]["status"], "succeeded", "{subs}");
    assert_eq!(subs[0]["credits"], 25, "{subs}");
    assert!(fake.control.violations().is_empty());
    t.stop().await;
}

/// With `webhook_url` set, a Replicate prediction asks for a webhook; the fake finishes
/// it and POSTs it, signed, to the server, whose worker then polls at once: the job
/// completes long before its 60 s poll interval. Forged, stale or unsigned webhooks are
/// refused with 401 and change nothing.
#[tokio::test]
async fn a_replicate_webhook_makes_the_worker_poll_at_once() {
    let fake = generation::fakes::replicate::start("r8_hook")
        .await
        .unwrap();
    // Without the webhook, the job would need 3 polls, 60 s apart.
    fake.control.set_polls_until_done(3);
    let base = format!("{}/v1", fake.base_url());
    // The server's address must be known for its webhook URL: a free port, taken now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook_url = format!("http://127.0.0.1:{port}/api/v1/providers/replicate/webhook");
    let url = hook_url.clone();
    let t = TestServer::start_with(move |c| {
        c.http.addr = format!("127.0.0.1:{port}").parse().unwrap();
        c.generation
            .providers
            .set("replicate", "base_url", base.as_str())
            .set("replicate", "poll_interval_secs", 60.0)
            .set("replicate", "webhook_url", url.as_str());
        c.generation.allow_private_outbound = true;
    })
    .await;
    let me = t.user("replicate-hook@example.com").await;
    let (s, v) = t
        .post(
            "/api/v1/accounts",
            Some(&me),
            json!({"provider": "replicate", "label": "r8", "api_key": "r8_hook"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let started = Instant::now();
    let (s, job) = t
        .post(
            "/api/v1/generations",
            Some(&me),
            json!({"provider": "replicate", "operation": "text_to_video",
                   "params": {"prompt": "a lantern on the water", "quality": "480p"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = t.get(&format!("/api/v1/generations/{id}"), Some(&me)).await;
        if v["status"] == "completed" {
            break;
        }
        assert!(v["status"] != "failed", "{v}");
        assert!(Instant::now() < deadline, "not completed: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // The create asked for the webhook; the fake sent it once and the server took it.
    let sub = &fake.control.submits()[0];
    assert_eq!(sub["body"]["webhook"], hook_url.as_str());
    assert_eq!(sub["body"]["webhook_events_filter"], json!(["completed"]));
    let sent = fake.control.webhooks();
    assert_eq!(sent, vec![(hook_url.clone(), 204)]);
    assert!(fake.control.violations().is_empty());

    // What a stranger sends is refused.
    let body = r#"{"id":"fk000000000000000000000001","status":"succeeded"}"#;
    let now = chrono::Utc::now().timestamp();
    let key = generation::webhooks::sign::secret_key(generation::fakes::replicate::WEBHOOK_SECRET)
        .unwrap();
    let good = generation::webhooks::sign::sign(&key, "msg_x", now, body.as_bytes()).unwrap();
    let wrong_key =
        generation::webhooks::sign::secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let forged =
        generation::webhooks::sign::sign(&wrong_key, "msg_x", now, body.as_bytes()).unwrap();
    let stale =
        generation::webhooks::sign::sign(&key, "msg_x", now - 3600, body.as_bytes()).unwrap();
    let send = |sig: Option<String>, ts: i64, provider: &'static str| {
        let mut req = t
            .http
            .post(t.url(&format!("/api/v1/providers/{provider}/webhook")))
            .header("content-type", "application/json")
            .header("webhook-id", "msg_x")
            .header("webhook-timestamp", ts.to_string())
            .body(body);
        if let Some(sig) = sig {
            req = req.header("webhook-signature", sig);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for (sig, ts) in [(Some(forged), now), (Some(stale), now - 3600), (None, now)] {
        let (s, v) = send(sig, ts, "replicate").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(error_code(&v), "unauthorized", "{v}");
    }
    let (s, v) = send(Some(good.clone()), now, "nobody").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // A genuine one for a prediction nobody polls is taken (and changes nothing).
    let (s, _) = send(Some(good), now, "replicate").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    t.stop().await;
}

/// `/health` lists each provider's reachability: a fake that answers is `up`, a
/// closed port `down`, without making the server degraded or unready; answers are
/// reused for the probe interval, so health checks send one probe per interval.
#[tokio::test]
async fn health_reports_each_providers_reachability() {
    let fake = generation::fakes::replicate::start("r8").await.unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let replicate = format!("{}/v1", fake.base_url());
    let t = TestServer::start_with(|c| {
        c.generation.allow_private_outbound = true;
        c.generation.provider_probe_secs = 30.0;
        c.generation
            .providers
            .set("replicate", "base_url", replicate.as_str())
            .set("pixverse", "base_url", format!("http://{closed}"))
            .set("openai", "base_url", format!("http://{closed}/v1"));
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let (s, h) = t.get("/health", None).await;
        assert_eq!(s, StatusCode::OK);
        let settled = h["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] != "unknown");
        if settled {
            break h;
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let providers = &health["providers"];
    assert_eq!(by_id(providers, "replicate")["status"], "up", "{health}");
    assert!(by_id(providers, "replicate")["latency_ms"].is_number());
    assert!(by_id(providers, "replicate")["checked_at"].is_string());
    for id in ["pixverse", "openai"] {
        let p = by_id(providers, id);
        assert_eq!(p["status"], "down", "{health}");
        assert_eq!(p["error"], "cannot connect", "{health}");
    }
    // A remote provider down is not the server's problem.
    assert_eq!(health["status"], "healthy", "{health}");
    let (s, ready) = t.get("/ready", None).await;
    assert_eq!(
        (s, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    // Many health checks, one probe of each provider per interval.
    for _ in 0..10 {
        let (_, h) = t.get("/health", None).await;
        assert_eq!(
            by_id(&h["providers"], "replicate")["checked_at"],
            by_id(providers, "replicate")["checked_at"]
        );
    }
    assert_eq!(fake.control.count(Endpoint::Root), 1);
    t.stop().await;
}

/// With probes off (the tests' default), every provider is `disabled` and nothing is
/// sent.
#[tokio::test]
async fn provider_probes_can_be_turned_off() {
    let t = TestServer::start().await;
    let (_, h) = t.get("/health", None).await;
    for p in h["providers"].as_array().unwrap() {
        assert_eq!(p["status"], "disabled", "{h}");
    }
    assert_eq!(h["providers"].as_array().unwrap().len(), 4);
    t.stop().await;
}
