//! HTTP helpers shared by the adapters: Retry-After parsing, multipart bodies, error
//! mapping of transport failures.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::ProviderError;

/// `retry-after-ms`, then `retry-after` (seconds or an HTTP date), capped at an hour.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let cap = Duration::from_secs(3600);
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_millis(ms as u64).min(cap));
    }
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs).min(cap));
        }
        return None;
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO).min(cap))
}

/// Maps a reqwest transport error.
pub fn transport(e: reqwest::Error) -> ProviderError {
    if crate::guard::refused_by_guard(&e) {
        let host = e.url().and_then(|u| u.host_str()).unwrap_or("?").to_owned();
        ProviderError::Blocked(host)
    } else if e.is_timeout() {
        ProviderError::Timeout(e.to_string())
    } else {
        ProviderError::Transient {
            code: None,
            message: e.to_string(),
            retry_after: None,
        }
    }
}

/// A minimal multipart/form-data body builder.
#[derive(Debug)]
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    pub fn new() -> Self {
        Multipart {
            boundary: format!("pixsim-{}", uuid::Uuid::new_v4().simple()),
            body: Vec::new(),
        }
    }

    fn escape(s: &str) -> String {
        s.replace(['"', '\r', '\n'], "_")
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
                self.boundary,
                Self::escape(name)
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn file(mut self, name: &str, filename: &str, mime: &str, bytes: &[u8]) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                self.boundary,
                Self::escape(name),
                Self::escape(filename),
                Self::escape(mime)
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// (content type, body).
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

/// A file extension for a mime type (for upload file names).
pub fn ext_for(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        _ => "bin",
    }
}
