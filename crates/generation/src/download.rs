//! Guarded result downloads: a size cap, a magic-byte check and manual redirects, every
//! hop through the pipeline's one outbound guard ([`crate::guard`]: http(s) only, no
//! private, loopback or link-local destination, checked on every hop and again at
//! connect time).

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};

pub use crate::guard::is_public;
use crate::guard::{Guard, GuardError, GuardedClient, redact, refused_by_guard};
use crate::media::{Sniffed, sniff};

/// Download settings.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// Largest accepted body.
    pub max_bytes: u64,
    /// Whole-download timeout.
    pub timeout: Duration,
    pub max_redirects: usize,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            max_bytes: 512 * 1024 * 1024,
            timeout: Duration::from_secs(300),
            max_redirects: 5,
        }
    }
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("only http and https URLs are allowed: {0}")]
    Scheme(String),
    #[error("destination not allowed: {0}")]
    Blocked(String),
    #[error("the body exceeds {0} bytes")]
    TooLarge(u64),
    #[error("the content is not a known media type")]
    BadContent,
    #[error("http status {0}")]
    Status(u16),
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("timed out")]
    Timeout,
    #[error("transport: {0}")]
    Transport(String),
    #[error("bad url: {0}")]
    Url(String),
}

impl From<GuardError> for DownloadError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Scheme(s) => DownloadError::Scheme(s),
            GuardError::Blocked(s) => DownloadError::Blocked(s),
            GuardError::Url(s) => DownloadError::Url(s),
        }
    }
}

impl DownloadError {
    /// Worth retrying later (network trouble, 5xx, 408, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            DownloadError::Timeout | DownloadError::Transport(_) => true,
            DownloadError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            _ => false,
        }
    }
}

/// Downloads media through the guard.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: GuardedClient,
    cfg: DownloadConfig,
}

/// A downloaded body that passed the checks.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    pub kind: Sniffed,
    pub final_url: String,
}

impl Downloader {
    pub fn new(cfg: DownloadConfig, guard: &Guard) -> Result<Self, DownloadError> {
        let client = guard
            .client(reqwest::Client::builder().connect_timeout(Duration::from_secs(10)))
            .map_err(|e| DownloadError::Transport(e.without_url().to_string()))?;
        Ok(Downloader { client, cfg })
    }

    pub fn config(&self) -> &DownloadConfig {
        &self.cfg
    }

    /// Fetches `url`, following at most `max_redirects` checked redirects, reading at
    /// most `max_bytes`, and accepting only known media by magic bytes.
    pub async fn fetch(&self, url: &str) -> Result<Downloaded, DownloadError> {
        tokio::time::timeout(self.cfg.timeout, self.fetch_inner(url, None))
            .await
            .map_err(|_| DownloadError::Timeout)?
    }

    /// As [`Self::fetch`], with extra headers on the first request only (never sent to
    /// a redirect target).
    pub async fn fetch_with(
        &self,
        url: &str,
        headers: reqwest::header::HeaderMap,
    ) -> Result<Downloaded, DownloadError> {
        tokio::time::timeout(self.cfg.timeout, self.fetch_inner(url, Some(headers)))
            .await
            .map_err(|_| DownloadError::Timeout)?
    }

    async fn fetch_inner(
        &self,
        url: &str,
        mut headers: Option<reqwest::header::HeaderMap>,
    ) -> Result<Downloaded, DownloadError> {
        let mut url = Url::parse(url).map_err(|e| DownloadError::Url(e.to_string()))?;
        let mut hops = 0;
        let mut resp = loop {
            let mut req = self.client.request_url(Method::GET, url.clone())?;
            if let Some(h) = headers.take() {
                req = req.headers(h);
            }
            let resp = req.send().await.map_err(|e| {
                if e.is_timeout() {
                    DownloadError::Timeout
                } else if refused_by_guard(&e) {
                    DownloadError::Blocked(redact(&url))
                } else {
                    DownloadError::Transport(e.without_url().to_string())
                }
            })?;
            if resp.status().is_redirection() {
                hops += 1;
                if hops > self.cfg.max_redirects {
                    return Err(DownloadError::TooManyRedirects);
                }
                let loc = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(DownloadError::Status(resp.status().as_u16()))?;
                url = url
                    .join(loc)
                    .map_err(|e| DownloadError::Url(e.to_string()))?;
                continue;
            }
            break resp;
        };
        if resp.status() != StatusCode::OK {
            return Err(DownloadError::Status(resp.status().as_u16()));
        }
        if let Some(len) = resp.content_length()
            && len > self.cfg.max_bytes
        {
            return Err(DownloadError::TooLarge(self.cfg.max_bytes));
        }
        let final_url = url.to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| DownloadError::Transport(e.without_url().to_string()))?
        {
            if bytes.len() as u64 + chunk.len() as u64 > self.cfg.max_bytes {
                return Err(DownloadError::TooLarge(self.cfg.max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        let kind = sniff(&bytes).ok_or(DownloadError::BadContent)?;
        Ok(Downloaded {
            bytes,
            kind,
            final_url,
        })
    }
}
