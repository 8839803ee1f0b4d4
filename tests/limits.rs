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
