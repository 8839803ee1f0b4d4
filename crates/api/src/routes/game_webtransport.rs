//! `GET /api/v1/game/webtransport` (public): where the game's WebTransport endpoint is
//! and the SHA-256 hashes of its certificates (the current one, then the next), in the
//! form a browser's `serverCertificateHashes` takes, so a page can pin the server's
//! self-signed, rotating certificate. The server fills [`WebTransportDirectory`] in
//! (`AppState::webtransport`); this crate knows no WebTransport.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webtransport))
}

/// One pinnable certificate hash, as `serverCertificateHashes` takes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateHash {
    /// Always `sha-256`.
    pub algorithm: &'static str,
    /// Base64 of the SHA-256 of the certificate's DER.
    pub value: String,
}

/// How to reach the WebTransport endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebTransportInfo {
    /// The session URL, e.g. `https://127.0.0.1:4434/game`.
    pub url: String,
    /// The current certificate's hash, then the next one's (served after the next
    /// rotation): pin both.
    pub certificate_hashes: Vec<CertificateHash>,
    /// When the current certificate expires (fetch again before then).
    pub expires_at: DateTime<Utc>,
}

/// The WebTransport endpoint and the hashes of its certificates.
#[utoipa::path(get, path = "/api/v1/game/webtransport", tag = "game",
    responses((status = 200, body = WebTransportInfo),
        (status = 404, description = "WebTransport is disabled", body = ErrorBody)))]
async fn webtransport(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<ApiJson<WebTransportInfo>> {
    let Some(dir) = &s.webtransport else {
        return Err(ApiError::NotFound(
            "WebTransport is disabled on this server".into(),
        ));
    };
    let host = match &dir.public_host {
        Some(h) => h.clone(),
        None => request_host(&headers),
    };
    let certs = (dir.certs)();
    Ok(ApiJson(WebTransportInfo {
        url: format!("https://{}:{}{}", url_host(&host), dir.port, dir.path),
        certificate_hashes: certs
            .sha256
            .iter()
            .map(|h| CertificateHash {
                algorithm: "sha-256",
                value: base64::engine::general_purpose::STANDARD.encode(h),
            })
            .collect(),
        expires_at: certs.expires_at,
    }))
}

/// The host name of the request's `Host` header (port removed), `localhost` without one.
pub(crate) fn request_host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<http::uri::Authority>().ok())
        .map(|a| a.host().to_owned())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `host` as it goes in a URL: an IPv6 address in brackets.
pub(crate) fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            value.parse().unwrap_or_else(|_| panic!("{value}")),
        );
        h
    }

    #[test]
    fn the_host_comes_from_the_host_header_without_its_port() {
        assert_eq!(
            request_host(&with_host("game.example:8080")),
            "game.example"
        );
        assert_eq!(request_host(&with_host("127.0.0.1:3000")), "127.0.0.1");
        assert_eq!(url_host(&request_host(&with_host("[::1]:3000"))), "[::1]");
        assert_eq!(request_host(&HeaderMap::new()), "localhost");
        assert_eq!(url_host("::1"), "[::1]");
    }
}
