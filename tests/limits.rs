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
