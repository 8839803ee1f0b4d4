//! Revocation reaches live connections (issue #18, item 3): logout, revoking a session,
//! logout-all, a password change and disabling the user close that session's
//! WebSocket, SSE stream and QUIC connection within a second; a password change keeps
//! the session that made it and ends the others.

use std::time::{Duration, Instant};

use futures::StreamExt;
use game_client::{Client, Trust};
use protocol::CloseCode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::TestServer;
use tokio_tungstenite::tungstenite::Message;

const WITHIN: Duration = Duration::from_secs(1);

/// One session's live connections.
struct Live {
    ws: tokio::task::JoinHandle<Instant>,
    sse: tokio::task::JoinHandle<Instant>,
    quic: tokio::task::JoinHandle<(Instant, Option<CloseCode>)>,
}

async fn open(t: &TestServer, token: &str) -> Live {
    // WebSocket: ends when the server closes it.
    let url = format!(
        "{}/api/v1/ws/generations?token={token}",
        t.base.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ws = tokio::spawn(async move {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Instant::now()
    });

    // SSE: a game session's event stream, read until it ends.
    let (s, session) = t
        .post("/api/v1/game/sessions", Some(token), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    let id = session["id"].as_str().unwrap().to_owned();
    let res = t
        .http
        .get(t.url(&format!("/api/v1/game/sessions/{id}/events")))
        .bearer_auth(token)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.bytes_stream();
    let sse = tokio::spawn(async move {
        while let Some(Ok(_)) = body.next().await {}
        Instant::now()
    });

    // QUIC: authenticated, then waits for the server's close.
    let mut c = Client::connect(
        t.server.quic_addr,
        "localhost",
        Trust::Fingerprint(t.server.quic_fingerprint.clone()),
    )
    .await
    .unwrap();
    c.authenticate(token).await.unwrap();
    let quic = tokio::spawn(async move {
        loop {
            match c.recv().await {
                Ok(_) => continue,
                Err(e) => return (Instant::now(), e.close_code()),
            }
        }
    });
    // Let every stream reach its steady state before anything is revoked.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Live { ws, sse, quic }
}

async fn wait_end(h: tokio::task::JoinHandle<Instant>, what: &str) -> Instant {
    tokio::time::timeout(WITHIN * 3, h)
        .await
        .unwrap_or_else(|_| panic!("{what}: still open after 3 s"))
        .unwrap()
}

impl Live {
    /// Asserts all three end within [`WITHIN`] of `since`.
    async fn all_end(self, since: Instant, what: &str) {
        let ws = wait_end(self.ws, what).await;
        let sse = wait_end(self.sse, what).await;
        let (quic, code) = tokio::time::timeout(WITHIN * 3, self.quic)
            .await
            .unwrap_or_else(|_| panic!("{what}: QUIC still open after 3 s"))
            .unwrap();
        for (name, at) in [("WebSocket", ws), ("SSE", sse), ("QUIC", quic)] {
            let took = at.saturating_duration_since(since);
            assert!(took <= WITHIN, "{what}: the {name} closed after {took:?}");
        }
        assert_eq!(code, Some(CloseCode::Unauthenticated), "{what}");
    }

    /// Asserts none of the three has ended.
    fn all_open(&self, what: &str) {
        assert!(!self.ws.is_finished(), "{what}: the WebSocket closed");
        assert!(!self.sse.is_finished(), "{what}: the SSE stream ended");
        assert!(
            !self.quic.is_finished(),
            "{what}: the QUIC connection closed"
        );
    }

    fn abort(self) {
        self.ws.abort();
        self.sse.abort();
        self.quic.abort();
    }
}

/// The auth session a token names (its `sid` claim).
fn session_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

async fn call(
    t: &TestServer,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> StatusCode {
    let (s, v) = t.call(m, path, Some(token), body).await;
    assert!(s.is_success(), "{path}: {s} {v}");
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_closes_live_connections_within_a_second() {
    let t = TestServer::start().await;
    let admin = t.admin("rev-admin@example.com").await;
    // An admin cannot lock themselves out.
    let (_, me) = t.get("/api/v1/users/me", Some(&admin)).await;
    let (s, v) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{}", me["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // Logout ends the session's connections.
    let token = t.user("rev-1@example.com").await;
    let live = open(&t, &token).await;
    let since = Instant::now();
    call(&t, Method::POST, "/api/v1/auth/logout", &token, None).await;
    live.all_end(since, "logout").await;

    // Revoking one session from another one.
    let a = t.user("rev-2@example.com").await;
    let b = t.login("rev-2@example.com", "password123").await;
    let live = open(&t, &b).await;
    let since = Instant::now();
    call(
        &t,
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{}", session_of(&b)),
        &a,
        None,
    )
    .await;
    live.all_end(since, "revoke one session").await;

    // Logout-all.
    let token = t.user("rev-3@example.com").await;
    let live = open(&t, &token).await;
    let since = Instant::now();
    call(&t, Method::POST, "/api/v1/auth/logout-all", &token, None).await;
    live.all_end(since, "logout-all").await;

    // A password change ends every other session and keeps the one that made it.
    let keep = t.user("rev-4@example.com").await;
    let other = t.login("rev-4@example.com", "password123").await;
    let kept = open(&t, &keep).await;
    let ended = open(&t, &other).await;
    let since = Instant::now();
    call(
        &t,
        Method::PATCH,
        "/api/v1/users/me",
        &keep,
        Some(json!({"password": {"current": "password123", "new": "password456"}})),
    )
    .await;
    ended
        .all_end(since, "password change (other session)")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    kept.all_open("password change (the changing session)");
    let (s, _) = t.get("/api/v1/users/me", Some(&keep)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t.get("/api/v1/users/me", Some(&other)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    kept.abort();

    // Disabling a user (admin).
    let token = t.user("rev-5@example.com").await;
    let (_, me) = t.get("/api/v1/users/me", Some(&token)).await;
    let live = open(&t, &token).await;
    let since = Instant::now();
    call(
        &t,
        Method::PATCH,
        &format!("/api/v1/admin/users/{}", me["id"].as_str().unwrap()),
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    live.all_end(since, "user disabled").await;
    let (s, _) = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "rev-5@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

#[tokio::test]
async fn wrong_current_passwords_are_rate_limited() {
    let t = TestServer::start().await;
    let token = t.user("guess@example.com").await;
    let mut limited = false;
    for _ in 0..30 {
        let (s, _) = t
            .call(
                Method::PATCH,
                "/api/v1/users/me",
                Some(&token),
                Some(json!({"password": {"current": "not-it-at-all", "new": "password456"}})),
            )
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert!(limited, "30 wrong current passwords and never 429");
    t.stop().await;
}

/// Two nodes on one database and one Redis: a logout on one node closes the session's
/// WebSocket on the other within a second (without Redis it would take the watch's
/// 30 s re-check).
#[tokio::test(flavor = "multi_thread")]
async fn a_logout_on_one_node_closes_connections_on_another() {
    let mut redis = tests::start_redis().await;
    let url = redis.url();
    // One cluster: one Redis, one database, one token key.
    let secret = "two-nodes-share-this-token-key-of-32+chars".to_owned();
    let a = TestServer::start_with(|c| {
        c.redis.url = Some(url.clone());
        c.auth.jwt_secret = Some(secret.clone());
    })
    .await;
    let db_url = a.db.url.clone();
    let b = TestServer::start_with(|c| {
        c.redis.url = Some(url.clone());
        c.database.url = Some(db_url.clone());
        c.auth.jwt_secret = Some(secret.clone());
    })
    .await;
    let token = a.user("two-nodes@example.com").await;
    // Both subscribed before anything is revoked.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ws_url = format!(
        "{}/api/v1/ws/generations?token={token}",
        b.base.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let on_b = tokio::spawn(async move {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Instant::now()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let since = Instant::now();
    call(&a, Method::POST, "/api/v1/auth/logout", &token, None).await;
    let closed = wait_end(on_b, "logout on the other node").await;
    let took = closed.saturating_duration_since(since);
    assert!(
        took <= WITHIN,
        "the other node's WebSocket closed after {took:?}"
    );
    b.stop().await;
    a.stop().await;
    redis.kill_now();
}
