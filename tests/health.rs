use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tests::TestServer;

#[tokio::test]
async fn liveness_health_and_readiness() {
    let t = TestServer::start().await;
    let (s, live) = t.get("/", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(live["status"], "ok");

    // The tick advances at the configured rate.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut health = serde_json::Value::Null;
    while Instant::now() < deadline {
        health = t.get("/health", None).await.1;
        if health["tick"]["number"].as_u64().unwrap_or(0) >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["database"]["status"], "up");
    assert_eq!(health["redis"]["status"], "disabled");
    assert_eq!(health["tick"]["rate_hz"], 20.0);
    assert!(health["tick"]["number"].as_u64().unwrap() >= 10, "{health}");
    let (s, ready) = t.get("/ready", None).await;
    assert_eq!(
        (s, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );

    // Take the database away: readiness says 503, liveness still answers.
    let admin_url = store::testing::server_url().await.unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE \"{}\" WITH (FORCE)", t.db.name))
        .execute(&mut conn)
        .await
        .unwrap();
    let (s, ready) = t.get("/ready", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["database"]["status"], "down");
    // `/health` reuses its probes for up to a second; then it says so too.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (s, health) = loop {
        let (s, health) = t.get("/health", None).await;
        if health["status"] == "degraded" || Instant::now() > deadline {
            break (s, health);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (s, health["status"].as_str()),
        (StatusCode::OK, Some("degraded"))
    );
    assert_eq!(health["database"]["status"], "down");
    assert_eq!(t.get("/", None).await.0, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn redis_down_means_degraded_not_failed() {
    let mut redis = tests::start_redis().await;
    let url = redis.url();
    let t = TestServer::start_with(|c| c.redis.url = Some(url)).await;
    let (_, health) = t.get("/health", None).await;
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["redis"]["status"], "up");

    redis.kill_now();
    // `/health` reuses its probes for up to a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let health = loop {
        let (s, health) = t.get("/health", None).await;
        assert_eq!(s, StatusCode::OK);
        if health["status"] == "degraded" || Instant::now() > deadline {
            break health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["redis"]["status"], "down");
    let (s, ready) = t.get("/ready", None).await;
    assert_eq!(
        (s, ready["status"].as_str()),
        (StatusCode::OK, Some("degraded"))
    );
    // Nothing a single node needs fails.
    let token = t.user("red@example.com").await;
    assert_eq!(
        t.get("/api/v1/users/me", Some(&token)).await.0,
        StatusCode::OK
    );
    let (s, _) = t.post("/api/v1/auth/logout", Some(&token), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    t.stop().await;
}
