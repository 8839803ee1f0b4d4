//! How Pixverse answers map to [`ProviderError`]: its documented error codes and
//! HTTP statuses.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::provider::ProviderError;
use crate::provider::http::retry_after;

/// Error codes documented or seen in clients.
pub mod codes {
    pub const INVALID_BINDING: i64 = 400013;
    pub const EMPTY_PARAM: i64 = 400011;
    pub const INVALID_PARAM: i64 = 400017;
    pub const CONCURRENT_LIMIT: i64 = 500044;
    pub const UPLOAD_MODERATION: i64 = 500052;
    pub const MODERATION_2: i64 = 500054;
    pub const MODERATION_3: i64 = 500063;
    pub const HIGH_LOAD: i64 = 500069;
    pub const INSUFFICIENT_BALANCE: i64 = 500090;
}

pub(super) fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| u as i64))
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

pub(super) fn id_string(v: &Value) -> Option<String> {
    as_i64(v).map(|i| i.to_string())
}

pub(super) fn classify_code(
    code: i64,
    msg: String,
    status: StatusCode,
    headers: &HeaderMap,
) -> ProviderError {
    let c = Some(code.to_string());
    let ra = retry_after(headers);
    let lower = msg.to_lowercase();
    match code {
        codes::CONCURRENT_LIMIT => ProviderError::ConcurrencyLimit {
            code: c,
            message: msg,
            retry_after: ra,
        },
        codes::INSUFFICIENT_BALANCE => ProviderError::OutOfCredits {
            code: c,
            message: msg,
        },
        codes::UPLOAD_MODERATION | codes::MODERATION_2 | codes::MODERATION_3 => {
            ProviderError::Moderation {
                code: c,
                message: msg,
            }
        }
        codes::HIGH_LOAD => ProviderError::Transient {
            code: c,
            message: msg,
            retry_after: ra,
        },
        codes::INVALID_BINDING => ProviderError::Auth {
            code: c,
            message: msg,
        },
        _ if status == StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            code: c,
            message: msg,
            retry_after: ra,
        },
        _ if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN => {
            ProviderError::Auth {
                code: c,
                message: msg,
            }
        }
        _ if lower.contains("insufficient") || lower.contains("balance") => {
            ProviderError::OutOfCredits {
                code: c,
                message: msg,
            }
        }
        400000..=499999 => ProviderError::InvalidRequest {
            code: c,
            message: msg,
        },
        _ => ProviderError::Transient {
            code: c,
            message: msg,
            retry_after: ra,
        },
    }
}

pub(super) fn classify_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let message = format!(
        "http {}: {}",
        status.as_u16(),
        String::from_utf8_lossy(&body[..body.len().min(200)])
    );
    let code = Some(format!("http_{}", status.as_u16()));
    match status.as_u16() {
        429 => ProviderError::RateLimited {
            code,
            message,
            retry_after: retry_after(headers),
        },
        401 | 403 => ProviderError::Auth { code, message },
        408 | 409 | 500..=599 => ProviderError::Transient {
            code,
            message,
            retry_after: retry_after(headers),
        },
        400..=499 => ProviderError::InvalidRequest { code, message },
        _ => ProviderError::Transient {
            code: Some("malformed_response".into()),
            message,
            retry_after: None,
        },
    }
}
