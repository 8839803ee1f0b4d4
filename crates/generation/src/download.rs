//! Guarded result downloads: http(s) only, a size cap, a magic-byte check, manual
//! redirects, and no private/loopback/link-local destinations (checked on every hop and
//! again at connect time by the resolver) unless `allow_private` is set.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{StatusCode, Url};

use crate::media::{Sniffed, sniff};

/// Download settings.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// Largest accepted body.
    pub max_bytes: u64,
    /// Allow private, loopback and link-local addresses everywhere (tests).
    pub allow_private: bool,
    /// Host names allowed whatever they resolve to (an on-prem provider or CDN); a
    /// redirect to any other private address is still refused.
    pub allow_hosts: Vec<String>,
    /// Whole-download timeout.
    pub timeout: Duration,
    pub max_redirects: usize,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            max_bytes: 512 * 1024 * 1024,
            allow_private: false,
            allow_hosts: Vec::new(),
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

/// True for addresses that are neither private, loopback, link-local, multicast,
/// unspecified nor otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
                || (o[0] == 198 && (o[1] & 0xFE) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xFE00) == 0xFC00
                || (s[0] & 0xFFC0) == 0xFE80)
        }
    }
}

/// A resolver that drops non-public addresses (unless allowed): a host that resolves
/// only to private addresses cannot be reached, whatever the URL said.
#[derive(Debug)]
struct GuardResolver {
    allow_private: bool,
    allow_hosts: Vec<String>,
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow = self.allow_private
            || self
                .allow_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no allowed address").into());
            }
            let it: Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// Downloads media with the guards.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: reqwest::Client,
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
    pub fn new(cfg: DownloadConfig) -> Result<Self, DownloadError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardResolver {
                allow_private: cfg.allow_private,
                allow_hosts: cfg.allow_hosts.clone(),
            }))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DownloadError::Transport(e.to_string()))?;
        Ok(Downloader { client, cfg })
    }

    pub fn config(&self) -> &DownloadConfig {
        &self.cfg
    }

    async fn check_url(&self, url: &Url) -> Result<(), DownloadError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DownloadError::Scheme(url.scheme().to_owned()));
        }
        if self.cfg.allow_private {
            return Ok(());
        }
        let host = url
            .host_str()
            .ok_or_else(|| DownloadError::Url(url.to_string()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self
            .cfg
            .allow_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
        {
            return Ok(());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !is_public(ip) {
                return Err(DownloadError::Blocked(ip.to_string()));
            }
            return Ok(());
        }
        if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
            return Err(DownloadError::Blocked(host.to_owned()));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| DownloadError::Transport(e.to_string()))?
            .collect();
        if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(DownloadError::Blocked(host.to_owned()));
        }
        Ok(())
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
            self.check_url(&url).await?;
            let mut req = self.client.get(url.clone());
            if let Some(h) = headers.take() {
                req = req.headers(h);
            }
            let resp = req.send().await.map_err(|e| {
                if e.is_timeout() {
                    DownloadError::Timeout
                } else if e.is_connect() && !self.cfg.allow_private {
                    DownloadError::Blocked(format!("{url}: {e}"))
                } else {
                    DownloadError::Transport(e.to_string())
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
            .map_err(|e| DownloadError::Transport(e.to_string()))?
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
