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

/// Whether the server closed its end of `s` (EOF or reset); reads and drops any bytes.
fn closed_by_server(s: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn slow_clients_are_capped_per_ip_and_timed_out() {
    const OPENED: usize = 300;
    const PER_IP: usize = 50;
    let t = TestServer::start_with(|c| {
        c.http.max_connections_per_ip = PER_IP;
        c.http.header_read_timeout_secs = 1.0;
    })
    .await;
    let addr = t.server.http_addr;
    // Idle connections that never send a byte, all from 127.0.0.1.
    let mut conns = Vec::with_capacity(OPENED);
    for _ in 0..OPENED {
        conns.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let held = conns.iter().filter(|s| !closed_by_server(s)).count();
    println!(
        "connections held under the slow-client test: {held} of {OPENED} (per-IP cap {PER_IP})"
    );
    assert!(held <= PER_IP, "{held} idle connections held from one IP");
    // The header read timeout (1 s) closes the rest.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut held_after = held;
    while std::time::Instant::now() < deadline {
        held_after = conns.iter().filter(|s| !closed_by_server(s)).count();
        if held_after == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    println!("connections held after the header read timeout: {held_after}");
    assert_eq!(
        held_after, 0,
        "idle connections outlived the header read timeout"
    );
    drop(conns);
    // The slots are free again: the server answers.
    let (s, _) = t.get("/health", None).await;
    assert_eq!(s, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn login_sessions_per_user_are_capped_oldest_ended_first() {
    let t = TestServer::start_with(|c| c.auth.max_sessions_per_user = 3).await;
    t.register("kim@example.com", "password123").await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(t.login("kim@example.com", "password123").await);
    }
    // The two oldest ended; the three newest work.
    for (i, token) in tokens.iter().enumerate() {
        let (s, _) = t.get("/api/v1/users/me", Some(token)).await;
        let want = if i < 2 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(s, want, "token {i}");
    }
    let (_, list) = t.get("/api/v1/auth/sessions", Some(&tokens[4])).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    t.stop().await;
}

#[tokio::test]
async fn streams_per_user_are_capped() {
    let t = TestServer::start_with(|c| c.http.max_streams_per_user = 2).await;
    let token = t.user("lea@example.com").await;
    let other = t.user("max@example.com").await;
    let (s, game) = t
        .post("/api/v1/game/sessions", Some(&token), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{game}");
    let events = t.url(&format!(
        "/api/v1/game/sessions/{}/events",
        game["id"].as_str().unwrap()
    ));
    let sse = || t.http.get(&events).bearer_auth(&token).send();
    // Two streams open (an SSE and a WebSocket), held without reading.
    let first = sse().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let ws_url = format!(
        "{}/api/v1/ws/generations?token={token}",
        t.base.replace("http://", "ws://")
    );
    let (ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    // A third of either kind is refused with 429.
    let third = sse().await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    match tokio_tungstenite::connect_async(&ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS)
        }
        other => panic!("expected 429, got {:?}", other.map(|x| x.1)),
    }
    // Another user is not affected.
    let (s, _) = t
        .post("/api/v1/game/sessions", Some(&other), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Closing one frees its slot.
    drop(ws);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let again = sse().await.unwrap();
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(first);
    t.stop().await;
}

#[tokio::test]
async fn live_game_sessions_per_user_are_capped() {
    let t = TestServer::start_with(|c| c.game.max_live_sessions_per_user = 2).await;
    let token = t.user("ned@example.com").await;
    let other = t.user("ola@example.com").await;
    // Many at once: exactly the cap is created.
    let creates = (0..6).map(|_| {
        t.http
            .post(t.url("/api/v1/game/sessions"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let created = statuses
        .iter()
        .filter(|&&s| s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|&&s| s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, refused), (2, 4), "{statuses:?}");
    let (s, body) = t
        .post("/api/v1/game/sessions", Some(&token), json!({}))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "rate_limited");
    let (s, _) = t
        .post("/api/v1/game/sessions", Some(&other), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    t.stop().await;
}
