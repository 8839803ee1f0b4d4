//! The few REST calls a game client needs: register, log in, list scenes, and where
//! the WebTransport endpoint is with the certificate hashes to pin.

use std::time::Duration;

use serde::Deserialize;

/// REST failures, with the server's error code and message when it sent one.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The request did not get an answer (server down, bad URL, timeout...).
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{status} {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The `error.code` of the envelope (empty when there was none).
        code: String,
        /// The `error.message` of the envelope, or the body.
        message: String,
        /// Seconds from `Retry-After`, when sent (rate limits).
        retry_after: Option<u64>,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {url}: {detail}")]
    Body {
        /// The URL called.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl RestError {
    /// The HTTP status, for a [`RestError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One scene of `GET /api/v1/game/scenes`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SceneSummary {
    /// Scene id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Locked scenes cannot start a session.
    #[serde(default)]
    pub locked: bool,
    /// The world's start scene.
    #[serde(default)]
    pub start: bool,
}

/// `GET /api/v1/game/webtransport`: the WebTransport session URL and the hashes of
/// the certificates the server may present (current and next).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebTransportInfo {
    /// `https://host:port/game`.
    pub url: String,
    /// SHA-256 of each certificate (DER) to accept.
    pub certificate_hashes: Vec<[u8; 32]>,
}

/// The route's JSON.
#[derive(Deserialize)]
struct WebTransportBody {
    url: String,
    certificate_hashes: Vec<HashBody>,
}

#[derive(Deserialize)]
struct HashBody {
    algorithm: String,
    value: String,
}

impl WebTransportBody {
    /// The SHA-256 hashes (others skipped); an undecodable one is an error.
    fn info(self) -> Result<WebTransportInfo, String> {
        use base64::Engine;
        let mut certificate_hashes = Vec::new();
        for h in self.certificate_hashes {
            if h.algorithm != "sha-256" {
                continue;
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&h.value)
                .map_err(|e| format!("certificate hash {:?}: {e}", h.value))?;
            let hash = <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| format!("certificate hash {:?}: not 32 bytes", h.value))?;
            certificate_hashes.push(hash);
        }
        if certificate_hashes.is_empty() {
            return Err("no sha-256 certificate hash".into());
        }
        Ok(WebTransportInfo {
            url: self.url,
            certificate_hashes,
        })
    }
}

/// A REST client bound to a base URL such as `http://127.0.0.1:8080`.
#[derive(Clone, Debug)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
}

impl Rest {
    /// A client for `base` (a trailing `/` is ignored).
    pub fn new(base: &str) -> Result<Rest, RestError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| RestError::Unreachable {
                url: base.to_owned(),
                source,
            })?;
        Ok(Rest {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The download link of an asset.
    pub fn asset_url(&self, id: &str) -> String {
        format!("{}/api/v1/assets/{id}/file", self.base)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<serde_json::Value, RestError> {
        let res = req.send().await.map_err(|source| RestError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let text = res.text().await.map_err(|source| RestError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
        let body: serde_json::Value = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        if !status.is_success() {
            let err = &body["error"];
            return Err(RestError::Status {
                status: status.as_u16(),
                code: err["code"].as_str().unwrap_or_default().to_owned(),
                message: err["message"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| body.to_string()),
                retry_after,
            });
        }
        Ok(body)
    }

    /// Creates an account (`POST /api/v1/auth/register`). Returns `Ok(false)` when
    /// the email is already registered.
    pub async fn register(&self, email: &str, password: &str) -> Result<bool, RestError> {
        let url = format!("{}/api/v1/auth/register", self.base);
        let req = self
            .http
            .post(&url)
            .json(&serde_json::json!({"email": email, "password": password}));
        match self.send(req, &url).await {
            Ok(_) => Ok(true),
            Err(RestError::Status { status: 409, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Logs in (`POST /api/v1/auth/login`) and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> Result<String, RestError> {
        let url = format!("{}/api/v1/auth/login", self.base);
        let req = self
            .http
            .post(&url)
            .json(&serde_json::json!({"email": email, "password": password}));
        let body = self.send(req, &url).await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| RestError::Body {
                url,
                detail: "no access_token in the login answer".into(),
            })
    }

    /// [`Rest::login`], waiting out rate limits (429 with `Retry-After`) for up to
    /// `patience`.
    pub async fn login_patiently(
        &self,
        email: &str,
        password: &str,
        patience: Duration,
    ) -> Result<String, RestError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match self.login(email, password).await {
                Err(RestError::Status {
                    status: 429,
                    retry_after,
                    ..
                }) if tokio::time::Instant::now() < deadline => {
                    let wait = Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 60));
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Where the WebTransport endpoint is and which certificates to pin
    /// (`GET /api/v1/game/webtransport`, public).
    pub async fn webtransport(&self) -> Result<WebTransportInfo, RestError> {
        let url = format!("{}/api/v1/game/webtransport", self.base);
        let body = self.send(self.http.get(&url), &url).await?;
        let body: WebTransportBody = serde_json::from_value(body).map_err(|e| RestError::Body {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        body.info()
            .map_err(|detail| RestError::Body { url, detail })
    }

    /// The world's scenes (`GET /api/v1/game/scenes`).
    pub async fn scenes(&self, token: &str) -> Result<Vec<SceneSummary>, RestError> {
        let url = format!("{}/api/v1/game/scenes", self.base);
        let req = self.http.get(&url).bearer_auth(token);
        let body = self.send(req, &url).await?;
        serde_json::from_value(body).map_err(|e| RestError::Body {
            url,
            detail: e.to_string(),
        })
    }
}
