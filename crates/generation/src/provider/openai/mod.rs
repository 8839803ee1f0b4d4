//! OpenAI video (Sora) adapter — **retired**: OpenAI turned this API off on
//! 24 September 2026 ([`RETIRED_ON`]). New jobs are refused unless the entry sets
//! `accept_jobs = true` (a base URL that still serves the same contract); the adapter
//! and its contract tests are kept.
//!
//! `POST /v1/videos` (multipart: prompt, model, seconds as a string, size,
//! input_reference), `GET /v1/videos/{id}` (honouring `openai-poll-after-ms`),
//! `GET /v1/videos/{id}/content?variant=video|thumbnail`. Errors are
//! `{"error": {message, type, param, code}}`; a 429 is a rate limit unless it is billing
//! (`insufficient_quota`, `credit_balance_exhausted`, …), which is never retried.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::describe::{
    CreditRule, CreditUnit, OperationLimits, ProviderDescription, ProviderStatus, Retirement,
    price_map, strings,
};
use super::http::{Multipart, ext_for, retry_after, transport};
use super::settings::{ProviderConfigError, parse};
use super::{
    BoxFuture, BuildContext, Credentials, MediaResult, PollResult, Provider, ProviderError,
    RemoteStatus, SubmitRequest, Submitted,
};
use crate::download::{DownloadError, Downloader};
use crate::guard::{Guard, GuardedClient};
use crate::media::sniff;
use crate::model::{GenerationParams, InputRef, Operation};
use crate::params::Issues;

mod config;
mod rules;

pub use config::OpenAiConfig;
pub use rules::{OPENAI_MODELS, OPENAI_SECONDS, OPENAI_SIZES, validate};

/// The registry id.
pub const ID: &str = "openai";

/// The day OpenAI turned its video API off.
pub const RETIRED_ON: &str = "2026-09-24";

/// Builds the provider from its entry (see [`super::registry::BUILT_IN`]).
pub fn build(
    entry: Option<&Value>,
    ctx: BuildContext<'_>,
) -> Result<Arc<dyn Provider>, ProviderConfigError> {
    let cfg: OpenAiConfig = parse(ID, entry)?;
    let p = OpenAiProvider::new(cfg, ctx.guard).map_err(|e| ProviderConfigError::build(ID, e))?;
    Ok(Arc::new(p))
}

/// The OpenAI video adapter.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: GuardedClient,
    cfg: OpenAiConfig,
}

const BILLING_CODES: &[&str] = &[
    "insufficient_quota",
    "credit_balance_exhausted",
    "billing_hard_limit_reached",
    "billing_not_active",
];

fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = v.get("error");
    let field = |k: &str| {
        err.and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let etype = field("type");
    let code = field("code").or_else(|| etype.clone());
    let message = field("message").unwrap_or_else(|| {
        format!(
            "http {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    });
    let is_billing = [etype.as_deref(), code.as_deref()]
        .iter()
        .flatten()
        .any(|c| BILLING_CODES.contains(c));
    let is_moderation = [etype.as_deref(), code.as_deref()]
        .iter()
        .flatten()
        .any(|c| c.contains("moderation") || c.contains("content_policy"));
    let ra = retry_after(headers);
    let should_retry = headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.eq_ignore_ascii_case("true"));
    if is_billing {
        return ProviderError::OutOfCredits { code, message };
    }
    if is_moderation {
        return ProviderError::Moderation { code, message };
    }
    match (status.as_u16(), should_retry) {
        (429, Some(false)) => ProviderError::OutOfCredits { code, message },
        (429, _) => ProviderError::RateLimited {
            code,
            message,
            retry_after: ra,
        },
        (401 | 403, _) => ProviderError::Auth { code, message },
        (_, Some(true)) | (408 | 409 | 500..=599, None) => ProviderError::Transient {
            code,
            message,
            retry_after: ra,
        },
        _ => ProviderError::InvalidRequest { code, message },
    }
}

impl OpenAiProvider {
    /// An adapter calling `cfg.base_url` (server configuration, never an account's)
    /// through `guard`.
    pub fn new(cfg: OpenAiConfig, guard: &Guard) -> Result<Self, reqwest::Error> {
        let client = guard.client(reqwest::Client::builder().timeout(cfg.request_timeout))?;
        Ok(OpenAiProvider { client, cfg })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.base_url.trim_end_matches('/'))
    }

    fn creds(creds: Option<&Credentials>) -> Result<&Credentials, ProviderError> {
        creds.ok_or_else(|| ProviderError::Auth {
            code: Some("no_account".into()),
            message: "openai calls need an account".into(),
        })
    }

    /// A JSON call; non-2xx answers become classified errors.
    async fn json_call(
        &self,
        creds: &Credentials,
        method: Method,
        path: &str,
        multipart: Option<(String, Vec<u8>)>,
    ) -> Result<(HeaderMap, Value), ProviderError> {
        let mut req = self
            .client
            .request(method, &self.url(path))?
            .bearer_auth(&creds.api_key);
        if let Some((ct, body)) = multipart {
            req = req.header("Content-Type", ct).body(body);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(classify(status, &headers, &body));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| ProviderError::Transient {
            code: Some("malformed_response".into()),
            message: format!("not json: {e}"),
            retry_after: None,
        })?;
        if !v.is_object() {
            return Err(malformed("not an object"));
        }
        Ok((headers, v))
    }

    /// Downloads `/videos/{id}/content?variant=…` with the size cap.
    async fn content(
        &self,
        creds: &Credentials,
        remote_id: &str,
        variant: &str,
    ) -> Result<Vec<u8>, ProviderError> {
        let resp = self
            .client
            .request(
                Method::GET,
                &self.url(&format!("/videos/{remote_id}/content")),
            )?
            .query(&[("variant", variant)])
            .bearer_auth(&creds.api_key)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        if !status.is_success() {
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(transport)?;
            return Err(classify(status, &headers, &body));
        }
        let cap = self.cfg.max_download_bytes;
        if resp.content_length().is_some_and(|l| l > cap) {
            return Err(DownloadError::TooLarge(cap).into());
        }
        let mut resp = resp;
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if out.len() as u64 + chunk.len() as u64 > cap {
                return Err(DownloadError::TooLarge(cap).into());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

fn malformed(what: &str) -> ProviderError {
    ProviderError::Transient {
        code: Some("malformed_response".into()),
        message: what.to_owned(),
        retry_after: None,
    }
}

fn poll_from(headers: &HeaderMap, v: &Value) -> Result<PollResult, ProviderError> {
    let status = match v.get("status").and_then(Value::as_str) {
        Some("queued") => RemoteStatus::Queued,
        Some("in_progress") => RemoteStatus::Processing,
        Some("completed") => RemoteStatus::Succeeded,
        Some("failed") => RemoteStatus::Failed,
        Some("cancelled") => RemoteStatus::Cancelled,
        Some("deleted") => RemoteStatus::Deleted,
        _ => return Err(malformed("a video without a known status")),
    };
    let err = v.get("error");
    let error_code = err
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let error_message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let filtered = error_code
        .as_deref()
        .is_some_and(|c| c.contains("moderation") || c.contains("content_policy"));
    let status = if status == RemoteStatus::Failed && filtered {
        RemoteStatus::Filtered
    } else {
        status
    };
    let next_poll = headers
        .get("openai-poll-after-ms")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    Ok(PollResult {
        status,
        progress: v
            .get("progress")
            .and_then(Value::as_f64)
            .map(|p| (p / 100.0).clamp(0.0, 1.0) as f32),
        result_url: None,
        next_poll,
        error_code,
        error_message,
    })
}

impl Provider for OpenAiProvider {
    fn id(&self) -> &str {
        ID
    }

    fn describe(&self) -> ProviderDescription {
        let operations = [Operation::TextToVideo, Operation::ImageToVideo]
            .into_iter()
            .map(|op| {
                let mut l = OperationLimits::new(op, true)
                    .default_value("model", "sora-2")
                    .default_value("duration", 4)
                    .default_value("size", "720x1280");
                l.max_inputs = Some(usize::from(op == Operation::ImageToVideo));
                l.models = strings(OPENAI_MODELS);
                l.durations = OPENAI_SECONDS.to_vec();
                l.sizes = strings(OPENAI_SIZES);
                l
            })
            .collect();
        ProviderDescription {
            id: ID.into(),
            title: "OpenAI video API (Sora), retired".into(),
            status: ProviderStatus::Retired,
            retired_on: Some(RETIRED_ON.into()),
            accepts_jobs: self.cfg.accept_jobs,
            requires_account: true,
            can_cancel: true,
            operations,
            credits: CreditRule::Table {
                by: "model".into(),
                per: CreditUnit::Second,
                prices: price_map(&self.cfg.credits_per_second),
                multipliers: Vec::new(),
            },
        }
    }

    fn retirement(&self) -> Option<Retirement> {
        Some(Retirement {
            on: RETIRED_ON,
            accepts_jobs: self.cfg.accept_jobs,
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(super::probe_base_url(&self.client, &self.cfg.base_url))
    }

    fn requires_account(&self) -> bool {
        true
    }

    fn validate(
        &self,
        op: Operation,
        params: &GenerationParams,
        _inputs: &[InputRef],
        issues: &mut Issues,
    ) -> GenerationParams {
        validate(op, params, issues)
    }

    fn submit<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        req: &'a SubmitRequest,
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        Box::pin(async move {
            let creds = Self::creds(creds)?;
            let p = &req.params;
            let mut form = Multipart::new().text("prompt", p.prompt.as_deref().unwrap_or(""));
            if let Some(m) = &p.model {
                form = form.text("model", m);
            }
            if let Some(d) = p.duration {
                // A string: an integer is refused with a 400.
                form = form.text("seconds", &d.to_string());
            }
            if let Some(s) = &p.size {
                form = form.text("size", s);
            }
            if let Some(input) = req.inputs.first() {
                let name = format!("{}.{}", input.asset_id.simple(), ext_for(&input.mime));
                form = form.file("input_reference", &name, &input.mime, &input.bytes);
            }
            let (_, v) = self
                .json_call(creds, Method::POST, "/videos", Some(form.finish()))
                .await?;
            let id = v
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| malformed("a video without an id"))?;
            Ok(Submitted {
                remote_id: id.to_owned(),
                immediate: None,
            })
        })
    }

    fn poll<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<PollResult, ProviderError>> {
        Box::pin(async move {
            let creds = Self::creds(creds)?;
            let (headers, v) = self
                .json_call(creds, Method::GET, &format!("/videos/{remote_id}"), None)
                .await?;
            poll_from(&headers, &v)
        })
    }

    fn download<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        remote_id: &'a str,
        _poll: &'a PollResult,
        _downloader: &'a Downloader,
    ) -> BoxFuture<'a, Result<MediaResult, ProviderError>> {
        Box::pin(async move {
            let creds = Self::creds(creds)?;
            let bytes = self.content(creds, remote_id, "video").await?;
            if sniff(&bytes).is_none() {
                return Err(DownloadError::BadContent.into());
            }
            // The thumbnail is a nicety: ignore its failures.
            let thumbnail = self
                .content(creds, remote_id, "thumbnail")
                .await
                .ok()
                .filter(|t| sniff(t).is_some());
            Ok(MediaResult {
                bytes,
                thumbnail,
                remote_url: None,
            })
        })
    }

    fn poll_interval(&self) -> Duration {
        self.cfg.poll_interval
    }

    fn estimated_credits(&self, _op: Operation, params: &GenerationParams) -> i64 {
        self.cfg.credits_for(params)
    }

    fn can_cancel(&self) -> bool {
        true
    }

    /// `DELETE /v1/videos/{id}`; a video already gone counts as cancelled.
    fn cancel<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async move {
            let creds = Self::creds(creds)?;
            match self
                .json_call(creds, Method::DELETE, &format!("/videos/{remote_id}"), None)
                .await
            {
                Ok(_) => Ok(true),
                Err(ProviderError::InvalidRequest { code, .. })
                    if code.as_deref() == Some("not_found") =>
                {
                    Ok(true)
                }
                Err(e) => Err(e),
            }
        })
    }
}
