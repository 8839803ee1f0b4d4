//! No input makes a server error: U+0000 (which PostgreSQL `text` cannot hold), dates
//! before 4713 BC (outside `timestamptz`) and JSON arrays where an object is expected
//! all get 422 in the envelope, on every route of the OpenAPI document.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{TestServer, error_code};

const ANCIENT: &str = "-5000-01-01T00:00:00Z";

async fn send(
    t: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = t.http.request(method, t.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The routes the issue found answering 500, each with the input that did it.
#[tokio::test]
async fn nul_ancient_dates_and_arrays_get_422() {
    let t = TestServer::start().await;
    let admin = t.admin("root@example.com").await;
    let (s, _) = send(
        &t,
        Method::PATCH,
        "/api/v1/users/me",
        &admin,
        Some(&json!({"display_name": "Ivy"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let nul = "a\u{0}b";
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            Some(json!({"email": format!("{nul}@example.com"), "password": "password123"})),
        ),
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            Some(json!({"email": "root@example.com", "password": format!("password123{nul}")})),
        ),
        (
            Method::POST,
            "/api/v1/auth/register".into(),
            Some(json!({"email": format!("{nul}@example.com"), "password": "password123"})),
        ),
        (
            Method::PATCH,
            "/api/v1/users/me".into(),
            Some(json!({"display_name": nul})),
        ),
        (
            Method::POST,
            "/api/v1/accounts".into(),
            Some(json!({"provider": "pixverse", "label": nul, "api_key": "k-123"})),
        ),
        (
            Method::POST,
            "/api/v1/accounts".into(),
            Some(json!({"provider": "pixverse", "label": "l", "api_key": nul})),
        ),
        (Method::GET, "/api/v1/accounts?provider=%00".into(), None),
        (Method::GET, "/api/v1/admin/logs?q=%00".into(), None),
        (Method::GET, "/api/v1/admin/logs?target=a%00".into(), None),
        (
            Method::GET,
            "/api/v1/admin/logs?request_id=%00".into(),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/logs?since={ANCIENT}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/logs?until={ANCIENT}"),
            None,
        ),
        (Method::GET, "/api/v1/generations?provider=%00".into(), None),
        (
            Method::GET,
            format!("/api/v1/generations?created_after={ANCIENT}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/generations?created_before={ANCIENT}"),
            None,
        ),
        (Method::GET, "/api/v1/assets?provider=%00".into(), None),
        (Method::GET, "/api/v1/assets?content_hash=%00".into(), None),
        (
            Method::POST,
            "/api/v1/generations".into(),
            Some(json!({"operation": "text_to_video", "params": {"prompt": nul}})),
        ),
        (
            Method::POST,
            "/api/v1/generations".into(),
            Some(
                json!({"operation": "text_to_video", "params": {"prompt": "p"}, "idempotency_key": nul}),
            ),
        ),
        (
            Method::POST,
            "/api/v1/generations".into(),
            Some(
                json!({"operation": "text_to_video", "params": {"prompt": "p"}, "scheduled_at": ANCIENT}),
            ),
        ),
        (
            Method::POST,
            "/api/v1/generations/validate".into(),
            Some(json!({"operation": "text_to_video", "params": {"prompt": nul}})),
        ),
        (Method::GET, "/api/v1/game/scenes/%00".into(), None),
        // serde reads a struct from an array of its fields in order.
        (
            Method::PATCH,
            "/api/v1/users/me".into(),
            Some(json!([null, null])),
        ),
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            Some(json!(["root@example.com", "password123"])),
        ),
        (
            Method::POST,
            "/api/v1/generations".into(),
            Some(json!([null, "text_to_video"])),
        ),
    ];
    for (method, path, body) in cases {
        let (s, v) = send(&t, method.clone(), &path, &admin, body.as_ref()).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {body:?}: {v}"
        );
        assert_eq!(error_code(&v), "validation_failed", "{method} {path}: {v}");
    }
    let (_, me) = send(&t, Method::GET, "/api/v1/users/me", &admin, None).await;
    assert_eq!(me["display_name"], "Ivy", "the array changed nothing: {me}");

    // The oldest date PostgreSQL holds, and plain dates, still pass.
    for q in [
        "since=-4712-01-01T00:00:00Z",
        "since=2020-01-01T00:00:00Z&until=9999-12-31T23:59:59Z",
    ] {
        let (s, v) = send(
            &t,
            Method::GET,
            &format!("/api/v1/admin/logs?{q}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
    }
    t.stop().await;
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => s,
    }
}

/// What to put in every string of a sample.
#[derive(Clone, Copy)]
enum Fill {
    Nul,
    Ancient,
}

/// A value of the schema with every property present, strings filled as asked.
fn sample(doc: &Value, schema: &Value, fill: Fill, depth: usize) -> Value {
    let s = resolve(doc, schema);
    if depth > 6 {
        return Value::Null;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = s.get(key).and_then(Value::as_array) {
            if key == "allOf" {
                let mut merged = serde_json::Map::new();
                for part in list {
                    if let Value::Object(o) = sample(doc, part, fill, depth + 1) {
                        merged.extend(o);
                    }
                }
                return Value::Object(merged);
            }
            let first = list
                .iter()
                .find(|x| resolve(doc, x).get("type") != Some(&json!("null")))
                .unwrap_or(&Value::Null);
            return sample(doc, first, fill, depth + 1);
        }
    }
    if let Some(e) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return e.clone();
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        _ if s.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "object" => {
            let mut o = serde_json::Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    o.insert(k.clone(), sample(doc, v, fill, depth + 1));
                }
            }
            Value::Object(o)
        }
        "array" => json!([sample(doc, &s["items"], fill, depth + 1)]),
        "integer" => json!(1),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => match (fill, s.get("format").and_then(Value::as_str)) {
            (Fill::Ancient, Some("date-time")) => json!(ANCIENT),
            (_, Some("date-time")) => json!("2020-01-01T00:00:00Z"),
            (_, Some("uuid")) => json!(uuid::Uuid::new_v4()),
            (Fill::Nul, _) => json!("x\u{0}y"),
            (Fill::Ancient, _) => json!("x"),
        },
    }
}

/// Every operation of the document, with every parameter and every body set to
/// U+0000, a date before 4713 BC, numbers out of range or an array: never a 5xx, and
/// 422 for U+0000 wherever a JSON body or a query takes it.
#[tokio::test]
async fn no_route_answers_500_to_bad_input() {
    let t = TestServer::start_with(|c| c.auth.ip_burst = 10_000).await;
    let admin = t.admin("root@example.com").await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let (_, doc) = t.get("/api/openapi.json", None).await;
    let mut failures = Vec::new();
    let mut sent = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // These end the caller's own sessions.
            if path.starts_with("/api/v1/auth/logout") {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|p| p.iter().collect())
                .unwrap_or_default();
            let with_path = |value: &str| {
                let mut p = path.clone();
                for param in params.iter().filter(|p| p["in"] == "path") {
                    let name = param["name"].as_str().unwrap();
                    // A parameter with a closed set of values gets its first one (the
                    // body or query is what is being tried), except for the NUL probe.
                    let schema = match param["schema"]["$ref"].as_str() {
                        Some(r) => doc["components"]["schemas"]
                            [r.trim_start_matches("#/components/schemas/")]
                        .clone(),
                        None => param["schema"].clone(),
                    };
                    let first = schema["enum"][0].as_str().filter(|_| value != "%00");
                    p = p.replace(&format!("{{{name}}}"), first.unwrap_or(value));
                }
                p
            };
            let id = uuid::Uuid::new_v4().to_string();
            // (path and query, body, 422 required)
            let mut requests: Vec<(String, Option<Value>, bool)> =
                vec![(with_path("%00"), None, false)];
            for param in params.iter().filter(|p| p["in"] == "query") {
                let name = param["name"].as_str().unwrap();
                for (value, strict) in [
                    ("%00", true),
                    (ANCIENT, false),
                    ("-1", false),
                    ("99999999999999999999", false),
                    ("", false),
                ] {
                    requests.push((format!("{}?{name}={value}", with_path(&id)), None, strict));
                }
            }
            let json_body = op["requestBody"]["content"]["application/json"]["schema"].clone();
            if !json_body.is_null() {
                let strict = path != "/api/v1/admin/rpc";
                requests.push((with_path(&id), Some(json!([null, null])), strict));
                let nul = sample(&doc, &json_body, Fill::Nul, 0);
                // Strict only where the sample has a string to carry U+0000.
                let has_nul = nul.to_string().contains("\\u0000");
                requests.push((with_path(&id), Some(nul), strict && has_nul));
                requests.push((
                    with_path(&id),
                    Some(sample(&doc, &json_body, Fill::Ancient, 0)),
                    false,
                ));
            }
            for (url, body, strict) in requests {
                let mut req = http.request(m.clone(), t.url(&url)).bearer_auth(&admin);
                if let Some(b) = &body {
                    req = req.json(b);
                }
                sent += 1;
                let res = match req.send().await {
                    Ok(r) => r,
                    // A stream that stays open (SSE) is no error.
                    Err(e) if e.is_timeout() => continue,
                    Err(e) => panic!("{method} {url}: {e}"),
                };
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                if status.is_server_error()
                    || (strict && status != StatusCode::UNPROCESSABLE_ENTITY)
                {
                    failures.push(format!("{method} {url} {body:?} -> {status} {text}"));
                }
            }
        }
    }
    assert!(sent > 100, "only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    t.stop().await;
}
