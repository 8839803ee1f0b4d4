//! Pixverse platform API adapter (`/openapi/v2`).
//!
//! Every call sends `API-KEY` and a fresh `Ai-trace-id` (a new UUID per request,
//! retries included). Answers are `{ErrCode, ErrMsg, Resp}` envelopes (also the
//! lowercase `{err_code, err_msg, resp}` variant), where a non-zero `ErrCode` can come
//! with any HTTP status. Ids are integers.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::describe::{
    CreditMultiplier, CreditRule, CreditUnit, OperationLimits, ProviderDescription, ProviderStatus,
    price_map, strings,
};
use super::http::{Multipart, ext_for, transport};
use super::settings::{ProviderConfigError, parse};
use super::{
    BoxFuture, BuildContext, Credentials, InputMedia, PollResult, Provider, ProviderError,
    RemoteInput, RemoteStatus, SubmitRequest, Submitted,
};
use crate::guard::{Guard, GuardedClient};
use crate::model::{GenerationParams, InputRef, InputRole, MediaType, Operation};
use crate::params::Issues;

mod config;
mod errors;
mod rules;

pub use config::PixverseConfig;
pub use errors::codes;
use errors::{as_i64, classify_code, classify_status, id_string};
pub use rules::{PIXVERSE_MODELS, validate};

/// The registry id.
pub const ID: &str = "pixverse";

/// Builds the provider from its entry (see [`super::registry::BUILT_IN`]).
pub fn build(
    entry: Option<&Value>,
    ctx: BuildContext<'_>,
) -> Result<Arc<dyn Provider>, ProviderConfigError> {
    let cfg: PixverseConfig = parse(ID, entry)?;
    let p = PixverseProvider::new(cfg, ctx.guard).map_err(|e| ProviderConfigError::build(ID, e))?;
    Ok(Arc::new(p))
}

/// The Pixverse adapter.
#[derive(Debug, Clone)]
pub struct PixverseProvider {
    client: GuardedClient,
    cfg: PixverseConfig,
}

enum Body {
    None,
    Json(Value),
    Multipart(String, Vec<u8>),
}

impl PixverseProvider {
    /// An adapter calling `cfg.base_url` (server configuration, never an account's)
    /// through `guard`.
    pub fn new(cfg: PixverseConfig, guard: &Guard) -> Result<Self, reqwest::Error> {
        let client = guard.client(reqwest::Client::builder().timeout(cfg.request_timeout))?;
        Ok(PixverseProvider { client, cfg })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/openapi/v2{path}",
            self.cfg.base_url.trim_end_matches('/')
        )
    }

    /// One call; returns `Resp` on `ErrCode == 0`.
    async fn call(
        &self,
        creds: Option<&Credentials>,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Value, ProviderError> {
        let creds = creds.ok_or_else(|| ProviderError::Auth {
            code: Some("no_account".into()),
            message: "pixverse calls need an account".into(),
        })?;
        let mut req = self
            .client
            .request(method, &self.url(path))?
            .header("API-KEY", &creds.api_key)
            .header("Ai-trace-id", uuid::Uuid::new_v4().to_string());
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Multipart(ct, bytes) => req.header("Content-Type", ct).body(bytes),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(classify_status(status, &headers, &bytes));
        };
        let code = v
            .get("ErrCode")
            .or_else(|| v.get("err_code"))
            .and_then(as_i64);
        let msg = v
            .get("ErrMsg")
            .or_else(|| v.get("err_msg"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        match code {
            Some(0) if status.is_success() => {
                let r = v.get("Resp").or_else(|| v.get("resp")).cloned();
                match r {
                    Some(r) if r.is_object() => Ok(r),
                    _ => Err(ProviderError::Transient {
                        code: Some("malformed_response".into()),
                        message: "success without a Resp object".into(),
                        retry_after: None,
                    }),
                }
            }
            Some(0) => Err(classify_status(status, &headers, &bytes)),
            Some(c) => Err(classify_code(c, msg, status, &headers)),
            None => Err(classify_status(
                if status.is_success() {
                    StatusCode::from_u16(299).unwrap_or(StatusCode::OK)
                } else {
                    status
                },
                &headers,
                &bytes,
            )),
        }
    }

    /// `GET /account/balance` → (monthly, package) credits.
    pub async fn credit_balance(&self, creds: &Credentials) -> Result<(i64, i64), ProviderError> {
        let r = self
            .call(Some(creds), Method::GET, "/account/balance", Body::None)
            .await?;
        let monthly = r.get("credit_monthly").and_then(as_i64);
        let package = r.get("credit_package").and_then(as_i64);
        if monthly.is_none() && package.is_none() {
            return Err(malformed());
        }
        Ok((monthly.unwrap_or(0), package.unwrap_or(0)))
    }

    fn remote_int(input: &InputMedia) -> Result<i64, ProviderError> {
        input
            .remote
            .as_ref()
            .and_then(|r| r.remote_id.parse::<i64>().ok())
            .ok_or_else(|| ProviderError::InvalidRequest {
                code: Some("input_not_uploaded".into()),
                message: format!("input {} has no pixverse id", input.asset_id),
            })
    }

    fn body(req: &SubmitRequest) -> Result<(&'static str, Value), ProviderError> {
        let p = &req.params;
        let mut b = Fields::default();
        let mut prompt = p.prompt.clone().unwrap_or_default();
        if req.operation == Operation::Fusion && !prompt.ends_with(' ') {
            // Each `@ref_name` must be followed by a space, also at the very end.
            prompt.push(' ');
        }
        b.put("prompt", Some(json!(prompt)));
        b.put("model", p.model.clone().map(Value::from));
        b.put("duration", p.duration.map(Value::from));
        b.put("quality", p.quality.clone().map(Value::from));
        b.put("seed", p.seed.map(Value::from));
        b.put("motion_mode", p.motion_mode.clone().map(Value::from));
        let path = match req.operation {
            Operation::TextToVideo => {
                b.put("aspect_ratio", p.aspect_ratio.clone().map(Value::from));
                b.put_look(p);
                "/video/text/generate"
            }
            Operation::ImageToVideo => {
                let img = req.inputs.first().ok_or_else(|| missing("image"))?;
                b.put("img_id", Some(json!(Self::remote_int(img)?)));
                b.put_look(p);
                "/video/img/generate"
            }
            Operation::VideoTransition => {
                let first = req.inputs.first().ok_or_else(|| missing("first frame"))?;
                let last = req.inputs.get(1).ok_or_else(|| missing("last frame"))?;
                b.put("first_frame_img", Some(json!(Self::remote_int(first)?)));
                b.put("last_frame_img", Some(json!(Self::remote_int(last)?)));
                "/video/transition/generate"
            }
            Operation::VideoExtend => Self::extend_fields(&mut b, req)?,
            Operation::Fusion => Self::fusion_fields(&mut b, req)?,
        };
        Ok((path, Value::Object(b.0)))
    }

    /// The fields of a video extension (the source video: a Pixverse video by its
    /// video id, else an uploaded one by its media id) and its path.
    fn extend_fields(b: &mut Fields, req: &SubmitRequest) -> Result<&'static str, ProviderError> {
        let v = req.inputs.first().ok_or_else(|| missing("video"))?;
        match (&v.origin_provider, &v.origin_remote_id) {
            (Some(pv), Some(id)) if pv == ID && id.parse::<i64>().is_ok() => {
                b.put("source_video_id", id.parse::<i64>().ok().map(Value::from));
            }
            _ => b.put("video_media_id", Some(json!(Self::remote_int(v)?))),
        }
        b.put("style", req.params.style.clone().map(Value::from));
        Ok("/video/extend/generate")
    }

    /// The fields of a fusion (its image references, each a subject or the
    /// background) and its path.
    fn fusion_fields(b: &mut Fields, req: &SubmitRequest) -> Result<&'static str, ProviderError> {
        b.put(
            "aspect_ratio",
            req.params.aspect_ratio.clone().map(Value::from),
        );
        let refs = req
            .inputs
            .iter()
            .map(|i| {
                Ok(json!({
                    "type": if i.role == InputRole::Background { "background" } else { "subject" },
                    "img_id": Self::remote_int(i)?,
                    "ref_name": i.ref_name.clone().unwrap_or_default(),
                }))
            })
            .collect::<Result<Vec<Value>, ProviderError>>()?;
        b.put("image_references", Some(Value::Array(refs)));
        Ok("/video/fusion/generate")
    }
}

/// A request body being built: fields without a value are left out.
#[derive(Default)]
struct Fields(serde_json::Map<String, Value>);

impl Fields {
    fn put(&mut self, k: &str, v: Option<Value>) {
        if let Some(v) = v {
            self.0.insert(k.to_owned(), v);
        }
    }

    /// The look of a text or image to video: negative prompt, style, template and
    /// camera movement.
    fn put_look(&mut self, p: &GenerationParams) {
        self.put(
            "negative_prompt",
            p.negative_prompt.clone().map(Value::from),
        );
        self.put("style", p.style.clone().map(Value::from));
        self.put("template_id", p.template_id.map(Value::from));
        self.put(
            "camera_movement",
            p.camera_movement.clone().map(Value::from),
        );
    }
}

fn missing(what: &str) -> ProviderError {
    ProviderError::InvalidRequest {
        code: Some("missing_input".into()),
        message: format!("missing the {what} input"),
    }
}

impl Provider for PixverseProvider {
    fn id(&self) -> &str {
        ID
    }

    fn describe(&self) -> ProviderDescription {
        let operations = Operation::ALL
            .iter()
            .map(|&op| {
                let takes_aspect = matches!(op, Operation::TextToVideo | Operation::Fusion);
                let mut l = OperationLimits::new(op, true)
                    .default_value("model", "v5")
                    .default_value("duration", 5)
                    .default_value("quality", "540p");
                l.max_inputs = Some(
                    self.max_inputs(op)
                        .unwrap_or(crate::params::input_shape(op).1),
                );
                l.models = strings(PIXVERSE_MODELS);
                l.durations = vec![5, 8];
                l.qualities = strings(crate::params::QUALITIES);
                if takes_aspect {
                    l.aspect_ratios = strings(crate::params::ASPECT_RATIOS);
                    l = l.default_value("aspect_ratio", "16:9");
                }
                l.other_params =
                    if matches!(op, Operation::VideoTransition | Operation::VideoExtend) {
                        strings(&["seed", "motion_mode", "style"])
                    } else {
                        strings(&[
                            "seed",
                            "negative_prompt",
                            "motion_mode",
                            "style",
                            "camera_movement",
                            "template_id",
                        ])
                    };
                l
            })
            .collect();
        ProviderDescription {
            id: ID.into(),
            title: "Pixverse platform API".into(),
            status: ProviderStatus::Available,
            retired_on: None,
            accepts_jobs: true,
            requires_account: true,
            can_cancel: false,
            operations,
            credits: CreditRule::Table {
                by: "quality".into(),
                per: CreditUnit::Video,
                prices: price_map(&self.cfg.credits_5s),
                multipliers: vec![
                    CreditMultiplier {
                        param: "duration".into(),
                        above: Some(5),
                        equals: None,
                        factor: 2,
                    },
                    CreditMultiplier {
                        param: "motion_mode".into(),
                        above: None,
                        equals: Some("fast".into()),
                        factor: 2,
                    },
                ],
            },
        }
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
        inputs: &[InputRef],
        issues: &mut Issues,
    ) -> GenerationParams {
        validate(op, params, inputs, issues)
    }

    fn max_inputs(&self, op: Operation) -> Option<usize> {
        match op {
            Operation::VideoTransition => Some(2),
            _ => None,
        }
    }

    fn needs_upload(&self, input: &InputMedia) -> bool {
        match input.media_type {
            MediaType::Video => {
                !(input.origin_provider.as_deref() == Some(ID) && input.origin_remote_id.is_some())
            }
            _ => true,
        }
    }

    fn upload_input<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        input: &'a InputMedia,
    ) -> BoxFuture<'a, Result<RemoteInput, ProviderError>> {
        Box::pin(async move {
            let name = format!("{}.{}", input.asset_id.simple(), ext_for(&input.mime));
            if input.media_type == MediaType::Image {
                let (ct, body) = Multipart::new()
                    .file("image", &name, &input.mime, &input.bytes)
                    .finish();
                let r = self
                    .call(
                        creds,
                        Method::POST,
                        "/image/upload",
                        Body::Multipart(ct, body),
                    )
                    .await?;
                let id = r.get("img_id").and_then(id_string).ok_or_else(malformed)?;
                Ok(RemoteInput {
                    remote_id: id,
                    url: r.get("img_url").and_then(Value::as_str).map(str::to_owned),
                })
            } else {
                let (ct, body) = Multipart::new()
                    .file("file", &name, &input.mime, &input.bytes)
                    .finish();
                let r = self
                    .call(
                        creds,
                        Method::POST,
                        "/media/upload",
                        Body::Multipart(ct, body),
                    )
                    .await?;
                let id = r
                    .get("media_id")
                    .and_then(id_string)
                    .ok_or_else(malformed)?;
                Ok(RemoteInput {
                    remote_id: id,
                    url: r.get("url").and_then(Value::as_str).map(str::to_owned),
                })
            }
        })
    }

    fn submit<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        req: &'a SubmitRequest,
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        Box::pin(async move {
            let (path, body) = Self::body(req)?;
            let r = self
                .call(creds, Method::POST, path, Body::Json(body))
                .await?;
            let id = r
                .get("video_id")
                .and_then(id_string)
                .ok_or_else(malformed)?;
            Ok(Submitted {
                remote_id: id,
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
            let r = self
                .call(
                    creds,
                    Method::GET,
                    &format!("/video/result/{remote_id}"),
                    Body::None,
                )
                .await?;
            let code = r.get("status").and_then(as_i64).ok_or_else(malformed)?;
            let status = match code {
                1 => RemoteStatus::Succeeded,
                5 => RemoteStatus::Processing,
                6 => RemoteStatus::Deleted,
                7 => RemoteStatus::Filtered,
                8 => RemoteStatus::Failed,
                _ => RemoteStatus::Queued,
            };
            let url = r
                .get("url")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if status == RemoteStatus::Succeeded && url.is_none() {
                return Err(malformed());
            }
            Ok(PollResult {
                status,
                progress: None,
                result_url: url,
                next_poll: None,
                error_code: match status {
                    RemoteStatus::Filtered => Some("moderation_failed".into()),
                    RemoteStatus::Failed => Some("generation_failed".into()),
                    RemoteStatus::Deleted => Some("deleted".into()),
                    _ => None,
                },
                error_message: None,
            })
        })
    }

    fn poll_interval(&self) -> Duration {
        self.cfg.poll_interval
    }

    fn estimated_credits(&self, _op: Operation, params: &GenerationParams) -> i64 {
        self.cfg.credits_for(params)
    }

    /// Status 7: "moderation failed (credits refunded)".
    fn refunds(&self, status: RemoteStatus) -> bool {
        status == RemoteStatus::Filtered
    }

    /// Monthly plus package credits.
    fn balance<'a>(
        &'a self,
        creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Option<i64>, ProviderError>> {
        Box::pin(async move {
            let (monthly, package) = self.credit_balance(creds).await?;
            Ok(Some(monthly.saturating_add(package)))
        })
    }
    // No cancel: the contract documents no call that stops a generation.
}

fn malformed() -> ProviderError {
    ProviderError::Transient {
        code: Some("malformed_response".into()),
        message: "the answer lacks an expected field".into(),
        retry_after: None,
    }
}
