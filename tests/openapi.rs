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
    let expected = [
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
        ("get", "/metrics"),
        ("get", "/api/v1/admin/logs"),
        ("get", "/api/v1/assets"),
        ("get", "/api/v1/assets/{id}"),
        ("get", "/api/v1/assets/{id}/file"),
        ("get", "/api/v1/assets/{id}/thumbnail"),
        ("get", "/api/v1/assets/{id}/lineage"),
        ("post", "/api/v1/assets/upload"),
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
    ];
    for (method, path) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
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
    assert!(operations >= expected.len());

    let res = t.http.get(t.url("/api/docs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("/api/openapi.json"));
    t.stop().await;
}
