//! The one JSON error envelope of the REST API: `{"error": {"code", "message", "details"?}}`.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Error body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Every way a request can fail; each maps to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Validation {
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    Unavailable(String),
    /// 402: the request would spend more than a credit budget allows.
    #[error("{message}")]
    BudgetExceeded {
        message: String,
        details: serde_json::Value,
    },
    /// Overloaded for now: 503 with `Retry-After`.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after: Duration,
    },
    /// The cause is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            details: None,
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BudgetExceeded { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::BudgetExceeded { .. } => "budget_exceeded",
            ApiError::Busy { .. } => "busy",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let details = match &self {
            ApiError::Validation { details, .. } => details.clone(),
            ApiError::BudgetExceeded { details, .. } => Some(details.clone()),
            _ => None,
        };
        let retry_after = match &self {
            ApiError::RateLimited { retry_after, .. } | ApiError::Busy { retry_after, .. } => {
                Some(retry_after.as_secs().max(1))
            }
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                details,
            },
        };
        let mut res = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §11.6.1: a 401 names the scheme that would do.
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::Validation {
                message: format!("invalid request body: {}", e.body_text()),
                details: None,
            },
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
                code: "malformed_json",
                message: format!("malformed JSON: {}", e.body_text()),
            },
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "expected a request with `Content-Type: application/json`".into(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest {
            code: "invalid_path",
            message: r.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest {
            code: "invalid_query",
            message: r.body_text(),
        }
    }
}

impl From<auth::AuthError> for ApiError {
    fn from(e: auth::AuthError) -> Self {
        use auth::AuthError as A;
        match e {
            A::Invalid(m) => ApiError::validation(m),
            A::BadCredentials => ApiError::Unauthorized(e.to_string()),
            A::InvalidToken | A::SessionEnded => ApiError::Unauthorized(e.to_string()),
            A::RateLimited { retry_after } => ApiError::RateLimited {
                message: e.to_string(),
                retry_after,
            },
            A::Busy { retry_after } => ApiError::Busy {
                message: e.to_string(),
                retry_after,
            },
            A::EmailTaken => ApiError::Conflict(e.to_string()),
            A::NotFound => ApiError::NotFound("not found".into()),
            A::Store(s) => s.into(),
            A::Hash(m) => ApiError::Internal(m),
        }
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        use store::StoreError as S;
        match e {
            S::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            S::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            ref other if other.is_unavailable() => {
                tracing::error!(error = %other, "database unavailable");
                ApiError::Unavailable("the database is unavailable; try again shortly".into())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<generation::GenerationError> for ApiError {
    fn from(e: generation::GenerationError) -> Self {
        let code = e.code();
        let message = e.to_string();
        if let generation::GenerationError::BudgetExceeded(over) = &e {
            return ApiError::BudgetExceeded {
                message,
                details: serde_json::json!({
                    "scope": over.scope,
                    "scope_id": over.scope_id,
                    "period": over.period,
                    "limit": over.limit,
                    "spent": over.spent,
                    "estimated_credits": over.estimate,
                }),
            };
        }
        if let generation::GenerationError::InvalidParameters(issues) = &e {
            // Every rule that failed, with its field.
            return ApiError::Validation {
                message,
                details: Some(serde_json::json!({ "code": code, "issues": issues })),
            };
        }
        match e.http_status() {
            400 => ApiError::BadRequest { code, message },
            401 => ApiError::Unauthorized(message),
            403 => ApiError::Forbidden(message),
            404 => ApiError::NotFound(message),
            409 => ApiError::Conflict(message),
            413 => ApiError::PayloadTooLarge,
            422 => ApiError::Validation {
                message,
                details: Some(serde_json::json!({ "code": code })),
            },
            429 => ApiError::RateLimited {
                message,
                retry_after: Duration::from_secs(5),
            },
            503 => ApiError::Unavailable(message),
            _ => ApiError::internal(message),
        }
    }
}

pub use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(e: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let res = e.into_response();
        let status = res.status();
        let retry = res
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (s, _, body) = render(ApiError::internal("password=hunter2 in query")).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn rate_limits_say_when_to_retry() {
        let (s, retry, body) = render(ApiError::RateLimited {
            message: "slow down".into(),
            retry_after: Duration::from_millis(1500),
        })
        .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["error"]["code"], "rate_limited");
    }

    #[tokio::test]
    async fn validation_details_are_passed_through() {
        let (s, _, body) = render(ApiError::Validation {
            message: "bad".into(),
            details: Some(serde_json::json!({"field": "email"})),
        })
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["field"], "email");
        let (_, _, body) = render(ApiError::NotFound("x".into())).await;
        assert!(body["error"].get("details").is_none(), "omitted when empty");
    }

    #[tokio::test]
    async fn busy_is_503_with_retry_after() {
        let e: ApiError = auth::AuthError::Busy {
            retry_after: Duration::from_secs(5),
        }
        .into();
        let (s, retry, body) = render(e).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("5"));
        assert_eq!(body["error"]["code"], "busy");
    }

    #[test]
    fn store_unavailability_is_503() {
        let e: ApiError = store::StoreError::Db(sqlx::Error::PoolTimedOut).into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let e: ApiError = store::StoreError::Conflict("thing").into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
    }
}
