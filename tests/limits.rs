//! Bounded work per stranger: registration and login limits, HTTP connection caps,
//! per-user caps on sessions and streams.

use reqwest::StatusCode;
use serde_json::json;
use tests::{TestServer, error_code};

#[tokio::test]
async fn registration_is_rate_limited_per_ip() {
    let t = TestServer::start_with(|c| {
        c.auth.register_ip_burst = 3;
        c.auth.register_ip_refill_secs = 600.0;
    })
    .await;
    for i in 0..3 {
        t.register(&format!("reg{i}@example.com"), "password123")
            .await;
    }
    // Refused attempts count too: the fourth attempt, whatever it is, is refused.
    let res = t
        .http
        .post(t.url("/api/v1/auth/register"))
        .json(&json!({"email": "reg3@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 600, "{retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    // Logins are limited apart.
    t.login("reg0@example.com", "password123").await;
    t.stop().await;
}

#[tokio::test]
async fn concurrent_wrong_logins_each_cost_an_attempt() {
    const BURST: u32 = 3;
    const N: usize = 12;
    let t = TestServer::start_with(|c| {
        c.auth.account_burst = BURST;
        c.auth.account_refill_secs = 600.0;
        c.auth.ip_burst = 1000;
    })
    .await;
    t.register("ida@example.com", "password123").await;
    let tries = (0..N).map(|_| {
        t.http
            .post(t.url("/api/v1/auth/login"))
            .json(&json!({"email": "ida@example.com", "password": "wrong-password"}))
            .send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let refused = |s| statuses.iter().filter(|&&x| x == s).count();
    // Exactly the burst reached the password check; the rest were refused before it.
    assert_eq!(
        refused(StatusCode::UNAUTHORIZED),
        BURST as usize,
        "{statuses:?}"
    );
    assert_eq!(
        refused(StatusCode::TOO_MANY_REQUESTS),
        N - BURST as usize,
        "{statuses:?}"
    );
    // A right password after that is refused too: the account is out of attempts.
    let (s, _) = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ida@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);

    // Right passwords give their attempt back: many logins in a row never lock out.
    t.register("jo@example.com", "password123").await;
    for _ in 0..(2 * BURST) {
        t.login("jo@example.com", "password123").await;
    }
    t.stop().await;
}
