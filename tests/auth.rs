use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{TestServer, error_code};

#[tokio::test]
async fn register_login_me_logout_then_token_rejected() {
    let t = TestServer::start().await;
    let id = t.register("ann@example.com", "password123").await;
    let token = t.login("ANN@example.com", "password123").await;

    let (s, me) = t.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["id"], id);
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["role"], "user");
    assert!(me.get("password_hash").is_none());

    let (s, _) = t.post("/api/v1/auth/logout", Some(&token), json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = t.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    t.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let t = TestServer::start().await;
    t.register("bob@example.com", "password123").await;
    let (s1, b1) = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bob@example.com", "password": "nope-nope"}),
        )
        .await;
    let (s2, b2) = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "who@example.com", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2);
    t.stop().await;
}

#[tokio::test]
async fn sessions_list_revoke_and_logout_all() {
    let t = TestServer::start().await;
    t.register("cy@example.com", "password123").await;
    let a = t.login("cy@example.com", "password123").await;
    let b = t.login("cy@example.com", "password123").await;
    let c = t.login("cy@example.com", "password123").await;

    let (s, list) = t.get("/api/v1/auth/sessions", Some(&a)).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|x| x["current"] == true).count(), 1);

    // Revoke b's session from a: b stops working at once, a and c keep working.
    let (_, me_b) = t.get("/api/v1/auth/sessions", Some(&b)).await;
    let b_id = me_b
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{b_id}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get("/api/v1/users/me", Some(&b)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.get("/api/v1/users/me", Some(&a)).await.0, StatusCode::OK);
    let (s, body) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{b_id}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "already revoked: {body}");

    // Another user cannot revoke cy's sessions.
    let eve = t.user("eve@example.com").await;
    let (_, list) = t.get("/api/v1/auth/sessions", Some(&c)).await;
    let c_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{c_id}"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/api/v1/users/me", Some(&c)).await.0, StatusCode::OK);

    let (s, body) = t.post("/api/v1/auth/logout-all", Some(&a), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["revoked"], 2);
    assert_eq!(
        t.get("/api/v1/users/me", Some(&a)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get("/api/v1/users/me", Some(&c)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get("/api/v1/users/me", Some(&eve)).await.0,
        StatusCode::OK
    );
    t.stop().await;
}

#[tokio::test]
async fn patch_me_changes_name_and_password() {
    let t = TestServer::start().await;
    let token = t.user("dee@example.com").await;
    let (s, me) = t
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&token),
            Some(json!({"display_name": "Dee"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["display_name"], "Dee");

    let (s, body) = t
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&token),
            Some(json!({"password": {"current": "wrong-one", "new": "new-password"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "validation_failed");

    let (s, _) = t
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&token),
            Some(json!({"password": {"current": "password123", "new": "new-password"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    t.login("dee@example.com", "new-password").await;
    let (s, _) = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "dee@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, me) = t
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&token),
            Some(json!({"display_name": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(me["display_name"].is_null());
    t.stop().await;
}

#[tokio::test]
async fn login_is_rate_limited_per_account_and_per_ip() {
    let t = TestServer::start_with(|c| {
        c.auth.account_burst = 3;
        c.auth.account_refill_secs = 600.0;
        c.auth.ip_burst = 8;
        c.auth.ip_refill_secs = 600.0;
    })
    .await;
    t.register("fay@example.com", "password123").await;
    for _ in 0..3 {
        let (s, _) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "fay@example.com", "password": "bad-password"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // The account is locked now, even with the right password.
    let res = t
        .http
        .post(t.url("/api/v1/auth/login"))
        .json(&json!({"email": "fay@example.com", "password": "password123"}))
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

    // Per IP: 8 attempts in all from this address (4 spent above).
    t.register("gus@example.com", "password123").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (s, _) = t
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "gus@example.com", "password": "password123"}),
            )
            .await;
        statuses.push(s);
    }
    assert_eq!(&statuses[..4], &[StatusCode::OK; 4]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
    t.stop().await;
}

#[tokio::test]
async fn admin_routes_need_the_admin_role() {
    let t = TestServer::start().await;
    let user = t.user("hal@example.com").await;
    let admin = t.admin("root@example.com").await;
    let (s, body) = t.get("/api/v1/admin/tick", Some(&user)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");
    let (s, body) = t.get("/api/v1/admin/tick", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, tick) = t.get("/api/v1/admin/tick", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tick["target_rate_hz"], 20.0);
    assert!(tick["number"].as_u64().is_some());
    assert!(tick["p99_us"].as_f64().unwrap() >= tick["p50_us"].as_f64().unwrap());
    t.stop().await;
}

/// The content owner (a system account whose stored hash is no password hash) cannot log
/// in, even when an admin enables it: a refusal (401), never a server error.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_without_a_password_hash_is_refused_not_an_error() {
    let t = TestServer::start().await;
    let admin = t.admin("owner-admin@example.com").await;
    let owner = domain::user::CONTENT_OWNER.0;
    let (s, v) = t
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/admin/users/{owner}"),
            Some(&admin),
            Some(serde_json::json!({"disabled": false})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    for password in ["!", "password123", ""] {
        let (s, v) = t
            .post(
                "/api/v1/auth/login",
                None,
                serde_json::json!({"email": "content-owner@pixsim.invalid", "password": password}),
            )
            .await;
        assert!(
            s == reqwest::StatusCode::UNAUTHORIZED
                || s == reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "{password:?}: {s} {v}"
        );
    }
    t.stop().await;
}

/// A session ended where no announcement reaches this server (another node without
/// Redis, a statement in the database) is refused once the remembered check is older
/// than the session cache's TTL; one ended here is refused at once (above).
#[tokio::test]
async fn a_session_ended_elsewhere_is_refused_within_the_cache_ttl() {
    let t = TestServer::start().await;
    t.register("eve@example.com", "password123").await;
    let token = t.login("eve@example.com", "password123").await;
    let (s, _) = t.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    sqlx::query("UPDATE auth_sessions SET revoked_at = now()")
        .execute(&t.db.pool)
        .await
        .unwrap();
    let (s, _) = t.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "remembered for the TTL");
    tokio::time::sleep(auth::SessionCache::TTL + std::time::Duration::from_millis(100)).await;
    let (s, body) = t.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    t.stop().await;
}
