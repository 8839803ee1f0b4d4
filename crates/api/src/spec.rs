//! What the OpenAPI document says beyond each route's own annotation, made to hold for
//! every route at once:
//! - operation ids are unique (a name used by two routes gets its tag in front);
//! - the statuses every route can answer because of the boundary are documented: 401
//!   (with `WWW-Authenticate: Bearer`) and 503 where a token is checked, 400, 413, 415
//!   and 422 where a JSON body is read, 400 and 422 where parameters are read;
//! - unknown query parameters get 400 `invalid_query` on every route alike
//!   ([`refuse_unknown_query`]), judged against the parameters the document declares.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use axum::extract::{MatchedPath, Query, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::{
    Content, HeaderBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Responses, Type,
    schema::ObjectBuilder,
};

use crate::error::ApiError;

fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("options", item.options.as_mut()),
        ("head", item.head.as_mut()),
        ("patch", item.patch.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

fn error_response(description: &str, www_authenticate: bool) -> RefOr<utoipa::openapi::Response> {
    let mut b = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    if www_authenticate {
        b = b.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("`Bearer`"))
                .build(),
        );
    }
    RefOr::T(b.build())
}

/// Documents `status` unless the route's annotation does; a 401 always names the
/// scheme (`WWW-Authenticate`), and an empty description gets `description`.
fn add(responses: &mut Responses, status: u16, description: &str) {
    let entry = responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| error_response(description, status == 401));
    if let RefOr::T(r) = entry {
        if r.description.is_empty() {
            r.description = description.to_owned();
        }
        if status == 401
            && !r.headers.contains_key("WWW-Authenticate")
            && let RefOr::T(made) = error_response(description, true)
        {
            r.headers.extend(made.headers);
        }
    }
}

/// Applies the rules above to a document.
pub fn complete(doc: &mut OpenApi) {
    // Operation ids: unique.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            if let Some(id) = &op.operation_id {
                *seen.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            let Some(id) = op.operation_id.clone() else {
                continue;
            };
            if seen.get(&id).copied().unwrap_or(0) > 1 {
                let tag = op
                    .tags
                    .as_ref()
                    .and_then(|t| t.first())
                    .cloned()
                    .unwrap_or_default();
                op.operation_id = Some(format!("{tag}_{id}"));
            }
        }
    }

    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let json_body = op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.contains_key("application/json"));
            let params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let path_params = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let admin = op
                .tags
                .as_ref()
                .is_some_and(|t| t.iter().any(|t| t == "admin"));
            let responses = &mut op.responses;
            if secured {
                add(responses, 401, "missing, invalid or ended token");
                add(responses, 503, "the database is unavailable");
                if admin {
                    add(responses, 403, "not an admin");
                }
            }
            if path_params {
                add(responses, 404, "no such resource");
            }
            if json_body {
                add(responses, 400, "malformed JSON");
                add(responses, 413, "the body is larger than the limit");
                add(responses, 415, "not `Content-Type: application/json`");
                add(responses, 422, "the body does not fit the schema");
            }
            // Every route refuses query parameters it does not declare.
            add(responses, 400, "a malformed or unknown parameter");
            if params {
                add(responses, 422, "a parameter that cannot be taken");
            }
        }
    }
}

/// Query parameter names each operation declares, by (method, route template).
static DECLARED: LazyLock<HashMap<(String, String), HashSet<String>>> = LazyLock::new(|| {
    let mut doc = crate::openapi().clone();
    let mut out = HashMap::new();
    for (path, item) in &mut doc.paths.paths {
        for (method, op) in operations_mut(item) {
            let names = op
                .parameters
                .iter()
                .flatten()
                .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
                .map(|p| p.name.clone())
                .collect();
            out.insert((method.to_uppercase(), path.clone()), names);
        }
    }
    out
});

/// Middleware: 400 `invalid_query` for a query parameter the route does not declare.
pub async fn refuse_unknown_query(req: Request, next: Next) -> Response {
    if let (Some(_), Some(matched)) = (req.uri().query(), req.extensions().get::<MatchedPath>()) {
        let method = if req.method() == axum::http::Method::HEAD {
            "GET".to_owned()
        } else {
            req.method().as_str().to_owned()
        };
        if let Some(known) = DECLARED.get(&(method, matched.as_str().to_owned()))
            && let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        {
            let unknown: BTreeMap<&str, ()> = pairs
                .iter()
                .filter(|(k, _)| !known.contains(k))
                .map(|(k, _)| (k.as_str(), ()))
                .collect();
            if !unknown.is_empty() {
                let names: Vec<String> = unknown
                    .keys()
                    .map(|k| format!("`{}`", k.escape_debug()))
                    .collect();
                return ApiError::BadRequest {
                    code: "invalid_query",
                    message: format!("unknown query parameter {}", names.join(", ")),
                }
                .into_response();
            }
        }
    }
    next.run(req).await
}
