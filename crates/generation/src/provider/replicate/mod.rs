//! Replicate predictions API adapter (`https://api.replicate.com/v1`): one queue
//! contract in front of many current video models (Wan, Kling, Veo, Hailuo, …).
//!
//! `POST /models/{owner}/{name}/predictions` (an official model) or
//! `POST /predictions` with `version` (a community model's version), with
//! `{"input": {…}}` and optionally `Prefer: wait=<n>`; `GET /predictions/{id}`
//! (statuses `starting`, `processing`, `succeeded`, `failed`, `canceled`, `aborted`;
//! `logs`, from which the model's printed percentages give progress; `output`, the
//! result URL(s)); `POST /predictions/{id}/cancel`. Every call sends
//! `Authorization: Bearer <token>`. Errors are problem details
//! (`{"title", "detail", "status"}`): 401 a refused token, 402 no credit left, 422
//! invalid input, 429 throttled (`Retry-After`, else the seconds in `detail`). A
//! prediction refused by the safety checker fails with an error flagged as sensitive
//! (`E005`), which is a moderation refusal. Inputs are sent as data URLs, which the
//! contract accepts for files. See `docs/providers.md`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::describe::{
    CreditRule, CreditUnit, OperationLimits, ProviderDescription, ProviderStatus, price_map,
    strings,
};
use super::http::{Multipart, retry_after, transport};
use super::settings::{ProviderConfigError, parse};
use super::{
    BoxFuture, BuildContext, Credentials, InputMedia, PollResult, Provider, ProviderError,
    RemoteInput, RemoteStatus, SubmitRequest, Submitted, probe_base_url,
};
use crate::guard::{Guard, GuardedClient};
use crate::model::{GenerationParams, InputRef, Operation};
use crate::params::Issues;

mod config;
mod rules;

pub use config::{ModelRef, ReplicateConfig};
pub use rules::{
    MAX_NEGATIVE_PROMPT_CHARS, REPLICATE_ASPECTS, REPLICATE_DURATIONS, REPLICATE_QUALITIES,
    size_for, validate,
};

/// The registry id.
pub const ID: &str = "replicate";

/// Builds the provider from its entry (see [`super::registry::BUILT_IN`]).
pub fn build(
    entry: Option<&Value>,
    ctx: BuildContext<'_>,
) -> Result<Arc<dyn Provider>, ProviderConfigError> {
    let cfg: ReplicateConfig = parse(ID, entry)?;
    let p = ReplicateProvider::new(cfg, ctx.guard)?;
    Ok(Arc::new(p))
}

/// The Replicate adapter.
#[derive(Debug, Clone)]
pub struct ReplicateProvider {
    client: GuardedClient,
    cfg: ReplicateConfig,
}

/// Whether a provider's text says the safety checker refused the content.
fn is_moderation(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("flagged as sensitive")
        || t.contains("nsfw")
        || t.contains("safety checker")
        || t.contains("content moderation")
        || t.contains("(e005)")
}

/// The first `E####`-style code in a text (Replicate's error codes), if any.
fn error_code_in(text: &str) -> Option<String> {
    let b = text.as_bytes();
    (0..b.len()).find_map(|i| {
        let starts = b[i] == b'E' && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let ends = b
            .get(i + 1 + digits)
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        (starts && (3..=4).contains(&digits) && ends).then(|| text[i..=i + digits].to_owned())
    })
}

/// Seconds in a throttling `detail` ("Expected available in 1 second.", "Your rate
/// limit resets in ~30s.").
fn retry_from_detail(detail: &str) -> Option<Duration> {
    let at = detail.find(" in ")? + 4;
    let rest = detail[at..].trim_start_matches('~');
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// A short token from a problem's `title` ("Input validation failed" →
/// `input_validation_failed`), else `http_<status>`.
fn problem_code(title: Option<&str>, status: StatusCode) -> String {
    title
        .map(|t| {
            t.trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .filter(|c| !c.is_empty() && c.len() <= 40)
        .unwrap_or_else(|| format!("http_{}", status.as_u16()))
}

/// Maps a non-2xx answer (problem details) to a failure class.
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let title = field("title");
    let detail = field("detail");
    let code = Some(problem_code(title.as_deref(), status));
    let message = detail.clone().or(title).unwrap_or_else(|| {
        format!(
            "http {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    });
    match status.as_u16() {
        401 | 403 => ProviderError::Auth { code, message },
        402 => ProviderError::OutOfCredits { code, message },
        429 => ProviderError::RateLimited {
            code,
            retry_after: retry_after(headers)
                .or_else(|| detail.as_deref().and_then(retry_from_detail)),
            message,
        },
        _ if is_moderation(&message) => ProviderError::Moderation {
            code: error_code_in(&message).or(code),
            message,
        },
        404 => ProviderError::InvalidRequest {
            code: Some("not_found".into()),
            message,
        },
        408 | 409 | 500..=599 => ProviderError::Transient {
            code,
            message,
            retry_after: retry_after(headers),
        },
        _ => ProviderError::InvalidRequest { code, message },
    }
}

fn malformed(what: &str) -> ProviderError {
    ProviderError::Transient {
        code: Some("malformed_response".into()),
        message: what.to_owned(),
        retry_after: None,
    }
}

/// The last percentage a model printed in its logs (tqdm's ` 45%|████ | 9/20`), as
/// 0..=1.
pub fn progress_from_logs(logs: &str) -> Option<f32> {
    let b = logs.as_bytes();
    let mut last = None;
    for (i, _) in logs.match_indices('%') {
        let digits = b[..i]
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > 3 {
            continue;
        }
        if let Ok(n) = logs[i - digits..i].parse::<u32>()
            && n <= 100
        {
            last = Some(n as f32 / 100.0);
        }
    }
    last
}

/// A prediction as one poll.
fn poll_from(v: &Value) -> Result<PollResult, ProviderError> {
    let status = v.get("status").and_then(Value::as_str);
    let error = v
        .get("error")
        .and_then(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .filter(|s| !s.is_empty());
    let status = match status {
        Some("starting") => RemoteStatus::Queued,
        Some("processing") => RemoteStatus::Processing,
        Some("succeeded") => RemoteStatus::Succeeded,
        Some("failed") if error.as_deref().is_some_and(is_moderation) => RemoteStatus::Filtered,
        Some("failed") => RemoteStatus::Failed,
        Some("canceled") => RemoteStatus::Cancelled,
        // Past a deadline before it started: never ran, never billed.
        Some("aborted") => RemoteStatus::Deleted,
        _ => return Err(malformed("a prediction without a known status")),
    };
    let output = v.get("output");
    let result_url = match output {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => a.iter().find_map(Value::as_str).map(str::to_owned),
        _ => None,
    }
    .filter(|s| !s.is_empty());
    if status == RemoteStatus::Succeeded && result_url.is_none() {
        return Err(malformed("succeeded without an output URL"));
    }
    let progress = match status {
        RemoteStatus::Succeeded => Some(1.0),
        _ => v
            .get("logs")
            .and_then(Value::as_str)
            .and_then(progress_from_logs),
    };
    let error_code = match status {
        RemoteStatus::Filtered => Some(
            error
                .as_deref()
                .and_then(error_code_in)
                .unwrap_or_else(|| "moderation".into()),
        ),
        RemoteStatus::Failed => Some(
            error
                .as_deref()
                .and_then(error_code_in)
                .unwrap_or_else(|| "prediction_failed".into()),
        ),
        RemoteStatus::Deleted => Some("aborted".into()),
        _ => None,
    };
    Ok(PollResult {
        status,
        progress,
        result_url,
        next_poll: None,
        error_code,
        error_message: error,
    })
}

impl ReplicateProvider {
    /// An adapter calling `cfg.base_url` (server configuration, never an account's)
    /// through `guard`.
    pub fn new(cfg: ReplicateConfig, guard: &Guard) -> Result<Self, ProviderConfigError> {
        cfg.check()?;
        let client = guard
            .client(reqwest::Client::builder().timeout(cfg.request_timeout))
            .map_err(|e| ProviderConfigError::build(ID, e))?;
        Ok(ReplicateProvider { client, cfg })
    }

    pub fn config(&self) -> &ReplicateConfig {
        &self.cfg
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.base_url.trim_end_matches('/'))
    }

    fn creds(creds: Option<&Credentials>) -> Result<&Credentials, ProviderError> {
        creds.ok_or_else(|| ProviderError::Auth {
            code: Some("no_account".into()),
            message: "replicate calls need an account".into(),
        })
    }

    /// A JSON call; non-2xx answers become classified errors.
    async fn call(
        &self,
        creds: &Credentials,
        method: Method,
        path: &str,
        body: Option<&Value>,
        prefer_wait: u32,
    ) -> Result<Value, ProviderError> {
        let mut req = self
            .client
            .request(method, &self.url(path))?
            .bearer_auth(&creds.api_key);
        if let Some(b) = body {
            req = req.json(b);
        }
        if prefer_wait > 0 {
            req = req.header("Prefer", format!("wait={prefer_wait}"));
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(classify(status, &headers, &bytes));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| malformed(&format!("not json: {e}")))?;
        if !v.is_object() {
            return Err(malformed("not an object"));
        }
        Ok(v)
    }

    /// The model input of a request (the Wan 2.5 schema).
    fn input(&self, req: &SubmitRequest) -> Result<Value, ProviderError> {
        let p = &req.params;
        let mut input = Map::new();
        input.insert("prompt".into(), json!(p.prompt.as_deref().unwrap_or("")));
        if let Some(n) = &p.negative_prompt {
            input.insert("negative_prompt".into(), json!(n));
        }
        input.insert("duration".into(), json!(p.duration.unwrap_or(5)));
        if let Some(s) = p.seed {
            input.insert("seed".into(), json!(s));
        }
        let quality = p.quality.as_deref().unwrap_or("720p");
        match req.operation {
            Operation::TextToVideo => {
                let aspect = p.aspect_ratio.as_deref().unwrap_or("16:9");
                input.insert("size".into(), json!(size_for(quality, aspect)));
            }
            Operation::ImageToVideo => {
                let image = req
                    .inputs
                    .first()
                    .ok_or_else(|| ProviderError::InvalidRequest {
                        code: Some("missing_input".into()),
                        message: "image_to_video needs an image".into(),
                    })?;
                // Uploaded (a large file): its Files API URL; else inline.
                let url = match image.remote.as_ref().and_then(|r| r.url.clone()) {
                    Some(url) => url,
                    None => format!(
                        "data:{};base64,{}",
                        image.mime,
                        base64::engine::general_purpose::STANDARD.encode(image.bytes.as_ref())
                    ),
                };
                input.insert("image".into(), json!(url));
                input.insert("resolution".into(), json!(quality));
            }
            op => {
                return Err(ProviderError::Unsupported(format!(
                    "{ID} does not run {op}"
                )));
            }
        }
        Ok(Value::Object(input))
    }

    fn limits(&self, op: Operation) -> Option<OperationLimits> {
        let model = self.cfg.model_for(op)?;
        let text = op == Operation::TextToVideo;
        let mut l = OperationLimits::new(op, true)
            .default_value("model", model)
            .default_value("duration", 5)
            .default_value("quality", "720p");
        l.models = vec![model.to_owned()];
        l.durations = REPLICATE_DURATIONS.to_vec();
        l.qualities = strings(REPLICATE_QUALITIES);
        l.max_inputs = Some(usize::from(!text));
        l.other_params = strings(&["negative_prompt", "seed"]);
        if text {
            l.aspect_ratios = strings(REPLICATE_ASPECTS);
            l = l.default_value("aspect_ratio", "16:9");
        }
        Some(l)
    }
}

impl Provider for ReplicateProvider {
    fn id(&self) -> &str {
        ID
    }

    fn describe(&self) -> ProviderDescription {
        ProviderDescription {
            id: ID.into(),
            title: "Replicate predictions API (hosted video models)".into(),
            status: ProviderStatus::Available,
            retired_on: None,
            accepts_jobs: true,
            requires_account: true,
            can_cancel: true,
            operations: [Operation::TextToVideo, Operation::ImageToVideo]
                .into_iter()
                .filter_map(|op| self.limits(op))
                .collect(),
            credits: CreditRule::Table {
                by: "quality".into(),
                per: CreditUnit::Second,
                prices: price_map(&self.cfg.credits_per_second),
                multipliers: Vec::new(),
            },
        }
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
        validate(&self.cfg, op, params, issues)
    }

    fn max_inputs(&self, op: Operation) -> Option<usize> {
        match op {
            Operation::TextToVideo => Some(0),
            _ => Some(1),
        }
    }

    fn submit<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        req: &'a SubmitRequest,
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        Box::pin(async move {
            let creds = Self::creds(creds)?;
            let model = self
                .cfg
                .model_for(req.operation)
                .and_then(ModelRef::parse)
                .ok_or_else(|| {
                    ProviderError::Unsupported(format!("{ID} does not run {}", req.operation))
                })?;
            let input = self.input(req)?;
            let (path, mut body) = match &model.version {
                None => (
                    format!("/models/{}/{}/predictions", model.owner, model.name),
                    json!({ "input": input }),
                ),
                Some(version) => (
                    "/predictions".to_owned(),
                    json!({ "version": version, "input": input }),
                ),
            };
            if let Some(url) = &self.cfg.webhook_url {
                body["webhook"] = json!(url);
                body["webhook_events_filter"] = json!(["completed"]);
            }
            let v = self
                .call(
                    creds,
                    Method::POST,
                    &path,
                    Some(&body),
                    self.cfg.prefer_wait_secs,
                )
                .await?;
            let id = v
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| malformed("a prediction without an id"))?;
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
            let v = self
                .call(
                    creds,
                    Method::GET,
                    &format!("/predictions/{remote_id}"),
                    None,
                    0,
                )
                .await?;
            poll_from(&v)
        })
    }

    fn poll_interval(&self) -> Duration {
        self.cfg.poll_interval
    }

    fn needs_upload(&self, input: &InputMedia) -> bool {
        input.bytes.len() > self.cfg.data_url_max_bytes
    }

    /// Files expire 24 hours after their upload.
    fn upload_lifetime(&self) -> Option<Duration> {
        Some(Duration::from_secs(23 * 3600))
    }

    fn upload_input<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        input: &'a InputMedia,
    ) -> BoxFuture<'a, Result<RemoteInput, ProviderError>> {
        Box::pin(async move {
            let creds = Self::creds(creds)?;
            let ext = input.mime.rsplit('/').next().unwrap_or("bin");
            let name = format!("{}.{ext}", input.asset_id.simple());
            let (ct, body) = Multipart::new()
                .file("content", &name, &input.mime, &input.bytes)
                .finish();
            let resp = self
                .client
                .request(Method::POST, &self.url("/files"))?
                .bearer_auth(&creds.api_key)
                .header(reqwest::header::CONTENT_TYPE, ct)
                .body(body)
                .send()
                .await
                .map_err(transport)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(transport)?;
            if !status.is_success() {
                return Err(classify(status, &headers, &bytes));
            }
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| malformed(&format!("a file that is not json: {e}")))?;
            let id = v
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| malformed("a file without an id"))?;
            let url = v
                .pointer("/urls/get")
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .ok_or_else(|| malformed("a file without urls.get"))?;
            Ok(RemoteInput {
                remote_id: id.to_owned(),
                url: Some(url.to_owned()),
            })
        })
    }

    fn webhook_secret<'a>(
        &'a self,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Option<String>, ProviderError>> {
        Box::pin(async move {
            if self.cfg.webhook_url.is_none() {
                return Ok(None);
            }
            let v = self
                .call(creds, Method::GET, "/webhooks/default/secret", None, 0)
                .await?;
            let key = v
                .get("key")
                .and_then(Value::as_str)
                .filter(|k| k.starts_with("whsec_"))
                .ok_or_else(|| malformed("a webhook secret without a whsec_ key"))?;
            Ok(Some(key.to_owned()))
        })
    }

    fn webhook_subject(&self, body: &[u8]) -> Option<String> {
        let v: Value = serde_json::from_slice(body).ok()?;
        v.get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.len() <= 128)
            .map(str::to_owned)
    }

    fn estimated_credits(&self, _op: Operation, params: &GenerationParams) -> i64 {
        self.cfg.credits_for(params)
    }

    fn can_cancel(&self) -> bool {
        true
    }

    /// `POST /predictions/{id}/cancel`; a prediction already gone counts as cancelled
    /// (one already finished is answered as it is, and stays so).
    fn cancel<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async move {
            let creds = Self::creds(creds)?;
            match self
                .call(
                    creds,
                    Method::POST,
                    &format!("/predictions/{remote_id}/cancel"),
                    None,
                    0,
                )
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

    fn probe(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(probe_base_url(&self.client, &self.cfg.base_url))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_the_last_percentage_in_the_logs() {
        assert_eq!(progress_from_logs(""), None);
        assert_eq!(progress_from_logs("loading weights\n"), None);
        let logs = "  0%|          | 0/30\n 40%|████      | 12/30\n 73%|███████▎  | 22/30";
        assert_eq!(progress_from_logs(logs), Some(0.73));
        assert_eq!(progress_from_logs("100%|██████████| 30/30"), Some(1.0));
        assert_eq!(progress_from_logs("1234% nonsense"), None);
    }

    #[test]
    fn error_codes_and_moderation_are_read_from_the_text() {
        let e = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)";
        assert!(is_moderation(e));
        assert_eq!(error_code_in(e).as_deref(), Some("E005"));
        assert_eq!(
            error_code_in("CUDA out of memory (E1001)").as_deref(),
            Some("E1001")
        );
        assert_eq!(error_code_in("no code HELLO E12345"), None);
        assert!(!is_moderation("CUDA out of memory (E1001)"));
    }

    #[test]
    fn throttling_details_give_a_retry_after() {
        assert_eq!(
            retry_from_detail("Request was throttled. Expected available in 1 second."),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_from_detail("Request was throttled. Your rate limit resets in ~30s."),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_from_detail("Request was throttled."), None);
    }

    #[test]
    fn model_references_are_checked_at_startup() {
        assert_eq!(
            ModelRef::parse("wan-video/wan-2.5-t2v").unwrap().version,
            None
        );
        assert_eq!(
            ModelRef::parse("someone/model:5c7d5dc6dd8b")
                .unwrap()
                .version
                .as_deref(),
            Some("5c7d5dc6dd8b")
        );
        for bad in ["", "noslash", "a/b/c", "a/b:", "a /b", "../x/y"] {
            assert!(ModelRef::parse(bad).is_none(), "{bad}");
        }
        let cfg = ReplicateConfig {
            image_to_video_model: "nope".into(),
            ..Default::default()
        };
        let e = cfg.check().unwrap_err().to_string();
        assert!(
            e.starts_with("generation.providers.replicate.image_to_video_model"),
            "{e}"
        );
    }
}
