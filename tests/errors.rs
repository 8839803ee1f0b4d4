//! Bad input gets the JSON envelope with the right status.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{TestServer, error_code};

async fn raw(
    t: &TestServer,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = t.http.request(method, t.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "errors are JSON"
    );
    assert!(
        res.headers().contains_key("x-request-id"),
        "request id echoed"
    );
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn every_error_uses_the_envelope() {
    let t = TestServer::start().await;
    let json_ct = Some("application/json");
    let register = "/api/v1/auth/register";
    // (method, path, content type, body, expected status, expected code)
    type Case<'a> = (
        Method,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/nope",
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/health",
            None,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            register,
            json_ct,
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            register,
            None,
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            register,
            json_ct,
            br#"{"email": 5}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            register,
            json_ct,
            br#"{"email":"a@b.io","password":"x","extra":1}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            register,
            json_ct,
            br#"{"email":"not-an-email","password":"password123"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            register,
            json_ct,
            br#"{"email":"a@b.io","password":"short"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            register,
            json_ct,
            vec![b' '; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::GET,
            "/api/v1/users/me",
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            Method::DELETE,
            "/api/v1/auth/sessions/not-a-uuid",
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    for (method, path, ct, body, status, code) in cases {
        let (s, v) = raw(&t, method.clone(), path, ct, body).await;
        assert_eq!(s, status, "{method} {path}: {v}");
        assert_eq!(error_code(&v), code, "{method} {path}: {v}");
    }

    // Tokens: garbage, wrong scheme, forged signature.
    let token = t.user("ivy@example.com").await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = "AAAA".repeat(10);
    let forged = parts.join(".");
    for bad in ["garbage", forged.as_str()] {
        let (s, v) = t.get("/api/v1/users/me", Some(bad)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&v), "unauthorized");
    }
    let res = t
        .http
        .get(t.url("/api/v1/users/me"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // An authenticated request with a malformed path parameter.
    let (s, v) = t
        .call(
            Method::DELETE,
            "/api/v1/auth/sessions/not-a-uuid",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&v), "invalid_path");

    // Duplicate email, case-insensitively.
    let (s, v) = t
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "IVY@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "conflict");
    t.stop().await;
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let t = TestServer::start().await;
    let res = t
        .http
        .get(t.url("/"))
        .header("x-request-id", "my-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "my-trace-42");
    let res = t.http.get(t.url("/")).send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    t.stop().await;
}
