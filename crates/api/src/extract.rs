//! Request extractors: the authenticated caller, admins, the client's address, and
//! `ApiJson`/`ApiQuery`/`ApiPath`, which judge input once for every route.

use std::net::SocketAddr;

use auth::{ClientInfo, Principal};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller, authenticated by a `Bearer` token whose session is live.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

/// An authenticated caller with the `admin` role (403 otherwise).
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    bearer_token(&parts.headers)
}

/// The token of an `Authorization: Bearer <token>` header (401 without one).
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <token>`".into(),
        )),
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(Auth(p.clone()));
        }
        let token = bearer(parts)?;
        let principal = state.auth.authenticate(token).await?;
        tracing::Span::current().record("user_id", tracing::field::display(principal.user.id));
        parts.extensions.insert(principal.clone());
        Ok(Auth(principal))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(p) = Auth::from_request_parts(parts, state).await?;
        if !p.is_admin() {
            return Err(ApiError::Forbidden("this route is for admins only".into()));
        }
        Ok(Admin(p))
    }
}

/// Peer address and user agent, for rate limits and the session list.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

// ---------------------------------------------------------------------------------
// Input at the boundary: `ApiJson`, `ApiQuery` and `ApiPath`.
//
// Every string a client sends reaches PostgreSQL sooner or later, and some of what
// serde accepts PostgreSQL cannot hold. These extractors refuse it once, here, with 422
// in the envelope, instead of each route finding out as a 500:
// - U+0000 anywhere (a JSON string or key, a query or path value): `text` cannot hold it;
// - a date before 4713 BC: outside `timestamptz` (chrono parses years down to -262143);
// - a JSON array where the handler reads a struct (serde takes `[null, null]` as the
//   struct's fields in order).

/// The earliest instant `timestamptz` holds, rounded up to a year: 4713 BC (year -4712).
const EARLIEST_YEAR: i32 = -4712;

/// Why a value cannot be taken, for the 422 message; `None` when it can.
fn refuse_text(where_: &str, s: &str) -> Option<String> {
    if s.contains('\0') {
        return Some(format!("{where_} contains U+0000, which is not allowed"));
    }
    // Only strings that read as a date are checked: they are what a date field gets.
    if s.len() >= 10
        && s.len() <= 64
        && let Ok(t) = s.parse::<chrono::DateTime<chrono::FixedOffset>>()
    {
        use chrono::Datelike as _;
        if t.naive_utc().year() < EARLIEST_YEAR {
            return Some(format!(
                "{where_} is a date before 4713 BC, which cannot be stored"
            ));
        }
    }
    None
}

/// The first string in a JSON value that cannot be taken, with its place.
fn refuse_json(v: &serde_json::Value, at: &mut String) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => refuse_text(&place(at), s),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = at.len();
            let _ = std::fmt::Write::write_fmt(at, format_args!("[{i}]"));
            let found = refuse_json(item, at);
            at.truncate(len);
            found
        }),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                return Some(format!("a key of {} contains U+0000", place(at)));
            }
            let len = at.len();
            if !at.is_empty() {
                at.push('.');
            }
            at.push_str(k);
            let found = refuse_json(item, at);
            at.truncate(len);
            found
        }),
        _ => None,
    }
}

fn place(at: &str) -> String {
    if at.is_empty() {
        "the body".to_owned()
    } else {
        format!("`{at}`")
    }
}

/// Whether `T` reads a JSON object at its top level (a struct or a map), asked of
/// `T::deserialize` itself: derived structs call `deserialize_struct`.
fn wants_object<T: serde::de::DeserializeOwned>() -> bool {
    #[derive(Debug)]
    struct Answer(bool);
    impl std::fmt::Display for Answer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "probe")
        }
    }
    impl std::error::Error for Answer {}
    impl serde::de::Error for Answer {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Answer(false)
        }
    }
    struct Probe;
    impl<'de> serde::Deserializer<'de> for Probe {
        type Error = Answer;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Answer> {
            Err(Answer(false))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Answer> {
            Err(Answer(true))
        }
        fn deserialize_map<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Answer> {
            Err(Answer(true))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct enum
            identifier ignored_any
        }
    }
    matches!(T::deserialize(Probe), Err(Answer(true)))
}

/// `Json` whose rejections use the envelope, and which refuses U+0000, dates before
/// 4713 BC and an array where an object is expected (422).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        if let Some(message) = refuse_json(&value, &mut String::new()) {
            return Err(ApiError::validation(message));
        }
        if !value.is_object() && wants_object::<T>() {
            return Err(ApiError::validation(
                "invalid request body: expected a JSON object",
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                ApiError::validation(if path == "." {
                    format!("invalid request body: {inner}")
                } else {
                    format!("invalid request body: {path}: {inner}")
                })
            })
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `Query` whose rejections use the envelope, and which refuses U+0000 and dates
/// before 4713 BC (422).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        use axum::extract::Query;
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)?;
        for (k, v) in &pairs {
            if k.contains('\0') {
                return Err(ApiError::validation(
                    "a query parameter name contains U+0000",
                ));
            }
            if let Some(message) = refuse_text(&format!("query parameter `{k}`"), v) {
                return Err(ApiError::validation(message));
            }
        }
        let Query(q) = Query::<T>::try_from_uri(&parts.uri)?;
        Ok(ApiQuery(q))
    }
}

/// `Path` whose rejections use the envelope, and which refuses U+0000 (422).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::Path;
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state).await?;
        for (k, v) in &params {
            if let Some(message) = refuse_text(&format!("path parameter `{k}`"), v) {
                return Err(ApiError::validation(message));
            }
        }
        let Path(p) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(p))
    }
}
