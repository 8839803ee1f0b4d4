//! `/metrics` in the Prometheus text format.

use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use tests::TestServer;

async fn scrape(t: &TestServer) -> Scrape {
    let res = t
        .http
        .get(t.url("/metrics"))
        .bearer_auth(tests::METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("unparseable ({e}):\n{text}"))
}

fn find<'a>(
    s: &'a Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Sample> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
        other => panic!("not a number: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_parse_and_cover_tick_http_quic_and_pool() {
    let t = TestServer::start().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let token = t.user("m@example.com").await;
    t.get("/api/v1/users/me", Some(&token)).await;
    t.get("/nope", None).await;
    let s = scrape(&t).await;

    let hist = s
        .samples
        .iter()
        .find(|x| x.metric == "pixsim_tick_duration_seconds")
        .expect("tick histogram");
    match &hist.value {
        Value::Histogram(buckets) => {
            let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
            assert!(inf.count >= 3.0, "ticks counted: {buckets:?}");
            assert!(
                buckets.windows(2).all(|w| w[0].count <= w[1].count),
                "cumulative"
            );
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(
        number(&find(&s, "pixsim_tick_rate_hz", &[]).unwrap().value),
        20.0
    );
    assert_eq!(
        number(&find(&s, "pixsim_tick_paused", &[]).unwrap().value),
        0.0
    );
    assert!(find(&s, "pixsim_sessions", &[]).is_some());
    assert_eq!(
        number(&find(&s, "pixsim_quic_connections", &[]).unwrap().value),
        0.0
    );
    assert!(
        number(
            &find(&s, "pixsim_db_pool_max_connections", &[])
                .unwrap()
                .value
        ) >= 1.0
    );
    let me = find(
        &s,
        "pixsim_http_requests_total",
        &[
            ("route", "/api/v1/users/me"),
            ("status", "200"),
            ("method", "GET"),
        ],
    )
    .expect("requests by route template and status");
    assert!(number(&me.value) >= 1.0);
    assert!(
        find(
            &s,
            "pixsim_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        )
        .is_some()
    );
    let systems: Vec<_> = s
        .samples
        .iter()
        .filter(|x| x.metric == "pixsim_system_duration_seconds_count")
        .collect();
    assert!(
        systems
            .iter()
            .any(|x| x.labels.get("system").is_some_and(|n| n.contains("sim::"))),
        "per-system timings of the simulation: {:?}",
        systems
            .iter()
            .map(|x| x.labels.get("system"))
            .collect::<Vec<_>>()
    );
    t.stop().await;
}

#[tokio::test]
async fn metrics_count_jobs_by_status_and_provider_calls() {
    use generation::model::{Actor, CreateGeneration, GenerationParams, JobStatus, Operation};
    let t = TestServer::start().await;
    let user = store::users::create(
        &t.db.pool,
        store::users::NewUser {
            email: "j@example.com",
            password_hash: "x",
            display_name: None,
            role: domain::user::Role::User,
        },
    )
    .await
    .unwrap();
    let actor = Actor::user(user.id);
    let svc = &t.server.state.generation;
    let job = svc
        .create(
            actor,
            CreateGeneration {
                provider: Some("local".into()),
                operation: Some(Operation::TextToVideo),
                params: GenerationParams {
                    prompt: Some("a paper boat".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while svc.get(actor, job.id).await.unwrap().status != JobStatus::Completed {
        assert!(
            std::time::Instant::now() < deadline,
            "the in-process worker did not complete the job"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = scrape(&t).await;
    assert_eq!(
        number(
            &find(&s, "pixsim_generation_jobs", &[("status", "completed")])
                .unwrap()
                .value
        ),
        1.0
    );
    let calls = find(
        &s,
        "pixsim_provider_calls_total",
        &[("provider", "local"), ("status", "succeeded")],
    )
    .expect("provider calls by outcome");
    assert_eq!(number(&calls.value), 1.0);
    t.stop().await;
}

fn histogram_count(s: &Scrape, name: &str) -> f64 {
    let h = s
        .samples
        .iter()
        .find(|x| x.metric == name)
        .unwrap_or_else(|| panic!("{name} missing"));
    match &h.value {
        Value::Histogram(buckets) => {
            assert!(
                buckets.windows(2).all(|w| w[0].count <= w[1].count),
                "{name} cumulative: {buckets:?}"
            );
            buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count)
        }
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_time_the_game_state_commits() {
    let t = TestServer::start().await;
    let before = scrape(&t).await;
    let commits_before = histogram_count(&before, "pixsim_game_commit_seconds");
    let token = t.user("g@example.com").await;
    let (status, s) = t
        .post("/api/v1/game/sessions", Some(&token), serde_json::json!({}))
        .await;
    assert_eq!(status, 201, "{s}");
    // The creation was acknowledged, so at least one batch was committed and published.
    let s = scrape(&t).await;
    assert!(histogram_count(&s, "pixsim_game_commit_seconds") > commits_before);
    assert!(histogram_count(&s, "pixsim_game_handoff_to_ack_seconds") >= 1.0);
    assert_eq!(
        number(
            &find(&s, "pixsim_game_commit_retries_total", &[])
                .unwrap()
                .value
        ),
        0.0
    );
    t.stop().await;
}

#[tokio::test]
async fn metrics_need_the_scrape_token_or_an_admin() {
    let t = TestServer::start().await;
    let user = t.user("u@example.com").await;
    let admin = t.admin("a@example.com").await;
    let status = |token: Option<String>| {
        let mut req = t.http.get(t.url("/metrics"));
        if let Some(tok) = token {
            req = req.bearer_auth(tok);
        }
        async move {
            let res = req.send().await.unwrap();
            (
                res.status().as_u16(),
                res.headers().get("www-authenticate").cloned(),
            )
        }
    };
    let (s, www) = status(None).await;
    assert_eq!(s, 401);
    assert_eq!(www.unwrap(), "Bearer");
    assert_eq!(status(Some("not-the-token".into())).await.0, 401);
    assert_eq!(
        status(Some(format!("{}x", tests::METRICS_TOKEN))).await.0,
        401
    );
    assert_eq!(status(Some(user)).await.0, 403);
    assert_eq!(status(Some(admin)).await.0, 200);
    assert_eq!(status(Some(tests::METRICS_TOKEN.into())).await.0, 200);
    t.stop().await;

    // Without a configured token only admins may scrape.
    let t = TestServer::start_with(|c| c.http.metrics_token = None).await;
    let admin = t.admin("a@example.com").await;
    let res = t
        .http
        .get(t.url("/metrics"))
        .bearer_auth(tests::METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = t
        .http
        .get(t.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    t.stop().await;
}

#[tokio::test]
async fn metric_labels_are_bounded() {
    let t = TestServer::start().await;
    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        ("FROBNICATE", "/health".to_owned()),
        ("MADEUP", format!("/no/such/{id}")),
        ("GET", format!("/api/v1/generations/{id}")),
        ("GET", format!("/nope/{id}")),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        t.http.request(m, t.url(&path)).send().await.unwrap();
    }
    // Read as text: prometheus-parse skips lines whose label values hold `}`.
    let text = t.metrics().await;
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_owned())
    };
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("pixsim_http_requests_total{"))
        .collect();
    let methods: std::collections::BTreeSet<_> =
        lines.iter().filter_map(|l| label(l, "method")).collect();
    assert!(methods.contains("other"), "{methods:?}");
    assert!(
        methods
            .iter()
            .all(|m| ["GET", "other"].contains(&m.as_str())),
        "{methods:?}"
    );
    let routes: std::collections::BTreeSet<_> =
        lines.iter().filter_map(|l| label(l, "route")).collect();
    assert!(routes.contains("/api/v1/generations/{id}"), "{routes:?}");
    assert!(routes.contains("/health"), "{routes:?}");
    assert!(routes.contains("unmatched"), "{routes:?}");
    assert!(
        routes.iter().all(|r| !r.contains(&id.to_string())),
        "raw paths leak into labels: {routes:?}"
    );
    t.stop().await;
}
