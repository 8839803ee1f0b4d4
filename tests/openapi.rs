//! The OpenAPI document: exactly the served routes, valid, and kept by the server.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use tests::TestServer;

#[tokio::test]
async fn document_lists_every_route_and_every_listed_route_exists() {
    let t = TestServer::start().await;
    let (s, doc) = t.get("/api/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let listed = [
        ("get", "/"),
        ("get", "/health"),
        ("get", "/ready"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/logout-all"),
        ("get", "/api/v1/auth/sessions"),
        ("delete", "/api/v1/auth/sessions/{id}"),
        ("get", "/api/v1/users/me"),
        ("patch", "/api/v1/users/me"),
        ("get", "/api/v1/admin/tick"),
        ("post", "/api/v1/admin/rpc"),
        ("patch", "/api/v1/admin/users/{id}"),
        ("get", "/metrics"),
        ("get", "/api/v1/admin/logs"),
        ("get", "/api/v1/admin/worlds"),
        ("post", "/api/v1/admin/worlds/{world}/pause"),
        ("post", "/api/v1/admin/worlds/{world}/resume"),
        ("post", "/api/v1/admin/worlds/{world}/step"),
        ("post", "/api/v1/admin/worlds/{world}/advance"),
        ("post", "/api/v1/admin/worlds/{world}/time-scale"),
        ("post", "/api/v1/admin/worlds/{world}/turn-based"),
        ("get", "/api/v1/assets"),
        ("get", "/api/v1/assets/{id}"),
        ("get", "/api/v1/assets/{id}/file"),
        ("get", "/api/v1/assets/{id}/thumbnail"),
        ("get", "/api/v1/assets/{id}/lineage"),
        ("get", "/api/v1/assets/{id}/similar"),
        ("post", "/api/v1/assets/search"),
        ("post", "/api/v1/assets/search/image"),
        ("post", "/api/v1/assets/upload"),
        ("patch", "/api/v1/assets/{id}"),
        ("get", "/api/v1/assets/{id}/versions"),
        ("post", "/api/v1/assets/{id}/versions"),
        ("get", "/api/v1/assets/{id}/clips"),
        ("post", "/api/v1/assets/{id}/clips"),
        ("post", "/api/v1/assets/{id}/keyframes"),
        ("get", "/api/v1/assets/{id}/variants"),
        ("get", "/api/v1/assets/{id}/variants/{name}"),
        ("get", "/api/v1/assets/{id}/branches"),
        ("post", "/api/v1/assets/{id}/branches"),
        ("delete", "/api/v1/assets/{id}/branches/{branch_id}"),
        ("get", "/api/v1/ws/generations"),
        ("get", "/admin"),
        ("get", "/api/openapi.json"),
        ("get", "/api/docs"),
        ("post", "/api/v1/generations"),
        ("get", "/api/v1/generations"),
        ("post", "/api/v1/generations/validate"),
        ("get", "/api/v1/generations/{id}"),
        ("delete", "/api/v1/generations/{id}"),
        ("post", "/api/v1/generations/{id}/cancel"),
        ("post", "/api/v1/generations/{id}/pause"),
        ("post", "/api/v1/generations/{id}/resume"),
        ("post", "/api/v1/generations/{id}/retry"),
        ("get", "/api/v1/generations/{id}/submissions"),
        ("post", "/api/v1/accounts"),
        ("get", "/api/v1/accounts"),
        ("get", "/api/v1/accounts/{id}"),
        ("patch", "/api/v1/accounts/{id}"),
        ("delete", "/api/v1/accounts/{id}"),
        ("post", "/api/v1/accounts/{id}/refresh"),
        ("get", "/api/v1/admin/budgets"),
        ("put", "/api/v1/admin/budgets/{scope}/{scope_id}"),
        ("delete", "/api/v1/admin/budgets/{scope}/{scope_id}"),
        ("post", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
        (
            "post",
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        ),
        ("get", "/api/v1/providers"),
        ("post", "/api/v1/providers/{id}/webhook"),
        ("get", "/api/v1/game/scenes"),
        ("get", "/api/v1/game/scenes/{id}"),
        ("post", "/api/v1/game/sessions"),
        ("get", "/api/v1/game/sessions"),
        ("get", "/assets/{path}"),
        ("get", "/api/v1/game/sessions/{id}"),
        ("post", "/api/v1/game/sessions/{id}/choose"),
        ("get", "/api/v1/game/sessions/{id}/events"),
        ("get", "/api/v1/game/webtransport"),
        ("get", "/api/v1/game/ws"),
        ("get", "/play"),
        ("get", "/play/{file}"),
        ("get", "/play/vendor/{file}"),
        ("get", "/play/vendor/{dir}/{file}"),
    ];
    // Exactly these operations: a route added or removed must be added to or removed
    // from this list too.
    let expected: BTreeSet<(String, String)> = listed
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(expected.len(), listed.len(), "a route is listed twice");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    assert!(
        documented == expected,
        "documented but not in this test's list: {:?}; listed here but not documented: {:?}",
        documented.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&documented).collect::<Vec<_>>()
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    // Every documented operation is served (the fallback would say "no route").
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = t.http.request(m, t.url(&concrete)).send().await.unwrap();
            let status = res.status();
            let text = res.text().await.unwrap();
            assert!(
                !(status == StatusCode::NOT_FOUND && text.contains("no route for"))
                    && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed: {status} {text}"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, expected.len());

    let res = t.http.get(t.url("/api/docs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("/api/openapi.json"));
    t.stop().await;
}

/// The served document, written to a file for the Python tools.
async fn served_document(t: &TestServer, dir: &std::path::Path) -> std::path::PathBuf {
    let text = t
        .http
        .get(t.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = dir.join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    // Kept for reading after the run.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi.json"),
        &text,
    );
    file
}

#[tokio::test]
async fn document_is_valid_openapi() {
    let t = TestServer::start().await;
    let (_, doc) = t.get("/api/openapi.json", None).await;
    assert_eq!(doc["info"]["version"], pixsim_server::VERSION);

    // Unique operation ids; query parameters are in the query.
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(
                ids.insert(id.clone()),
                "{method} {path}: operationId {id} twice"
            );
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {p}"
                    );
                }
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                let unauthorized = &op["responses"]["401"];
                assert!(
                    unauthorized["headers"]["WWW-Authenticate"].is_object(),
                    "{method} {path}: 401 {unauthorized}"
                );
            }
        }
    }

    let python = tests::python_tools();
    let dir = tests::TempDir::new("openapi");
    let file = served_document(&t, &dir.0).await;
    let out = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator", "--subschema-errors", "all"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    t.stop().await;
}

/// Statuses the boundary gives that the document promises.
#[tokio::test]
async fn boundary_statuses_follow_the_rfcs() {
    let t = TestServer::start().await;
    // 401 names the scheme.
    let res = t.http.get(t.url("/api/v1/users/me")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    // A WebSocket route asked without an upgrade: 426 Upgrade Required.
    let token = t.user("ws@example.com").await;
    let res = t
        .http
        .get(t.url("/api/v1/ws/generations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(res.headers()["upgrade"], "websocket");
    // Unknown query parameters: 400 on every route alike, also those that take none.
    for path in [
        "/health",
        "/api/v1/users/me",
        "/api/v1/generations",
        "/api/v1/accounts",
        "/api/v1/providers",
    ] {
        let (s, v) = t.get(&format!("{path}?colour=red"), Some(&token)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(tests::error_code(&v), "invalid_query", "{path}");
    }
    let (s, _) = t.get("/api/v1/generations?limit=5", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    t.stop().await;
}

/// Schemathesis over every operation, as an admin: no server error, and every answer
/// (status, content type, headers, body) as the document says.
async fn schemathesis(max_examples: u32, max_time_secs: u32) {
    let t = TestServer::start_with(|c| {
        c.auth.ip_burst = 1_000_000;
        c.auth.account_burst = 1_000_000;
    })
    .await;
    let admin = t.admin("root@example.com").await;
    let python = tests::python_tools();
    let dir = tests::TempDir::new("schemathesis");
    let file = served_document(&t, &dir.0).await;
    let t_url = t.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .args(["-m", "schemathesis.cli", "run"])
            .arg(&file)
            .args(["--url", &t_url])
            .args(["--header", &format!("Authorization: Bearer {admin}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
            ])
            // The ones that would end the admin's own session (it cannot disable itself).
            .args([
                "--exclude-path-regex",
                "^/api/v1/auth/(logout|sessions/)",
            ])
            .args(["--max-examples", &max_examples.to_string()])
            .args(["--max-time", &max_time_secs.to_string()])
            // One worker: hypothesis parsing sources from several threads at once made
            // CPython 3.11 fail (`AST constructor recursion depth mismatch`).
            .args(["--workers", "1", "--seed", "1", "--no-color"])
            .current_dir(&dir.0)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis.log");
    let _ = std::fs::write(&log, &text);
    assert!(
        out.status.success(),
        "schemathesis (also in {}):\n{text}",
        log.display()
    );
    t.stop().await;
}

#[tokio::test]
async fn schemathesis_finds_nothing() {
    schemathesis(5, 150).await;
}

/// The long pass of `make api-fuzz`.
#[tokio::test]
#[ignore = "long; run by `make api-fuzz`"]
async fn schemathesis_long() {
    let secs = std::env::var("API_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    schemathesis(500, secs).await;
}
