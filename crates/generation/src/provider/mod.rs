//! Providers behind one trait: the embedded `local` renderer, `pixverse`, `replicate`
//! and `openai` (retired).
//!
//! Each provider is one self-contained module (its adapter, its config struct parsed
//! from its entry in [`ProviderSettings`], its parameter rules and price estimate, and
//! its `build` constructor), registered by one line in [`registry::BUILT_IN`].
//!
//! A provider validates its parameters, optionally uploads inputs (reusing cached
//! uploads), submits once per job attempt, is polled until a terminal status, and
//! hands over the result bytes. Errors carry a failure class that drives the worker's
//! retry policy (see [`ProviderError`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use uuid::Uuid;

use crate::download::{DownloadError, Downloader};
use crate::model::{GenerationParams, InputRef, InputRole, MediaType, Operation};
use crate::params::Issues;

pub mod describe;
pub mod http;
pub mod local;
pub mod openai;
pub mod pixverse;
pub mod registry;
pub mod replicate;
pub mod settings;

pub use describe::{
    CreditMultiplier, CreditRule, CreditUnit, OperationLimits, ProviderDescription, ProviderStatus,
    Retirement,
};
pub use registry::{BUILT_IN, BuildContext, ProviderRegistry};
pub use settings::{ProviderConfigError, ProviderSettings};

/// A boxed, sendable future (keeps [`Provider`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The account a call runs under. `Debug` never shows the key.
#[derive(Clone)]
pub struct Credentials {
    pub account_id: Uuid,
    pub api_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account_id", &self.account_id)
            .field("api_key", &"…")
            .finish()
    }
}

/// A remote handle of an uploaded input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInput {
    pub remote_id: String,
    pub url: Option<String>,
}

/// An input asset, resolved for a provider call.
#[derive(Debug, Clone)]
pub struct InputMedia {
    pub asset_id: Uuid,
    pub role: InputRole,
    pub ref_name: Option<String>,
    pub media_type: MediaType,
    pub mime: String,
    pub bytes: Arc<Vec<u8>>,
    /// The provider and remote id the asset came from (e.g. a Pixverse video to extend).
    pub origin_provider: Option<String>,
    pub origin_remote_id: Option<String>,
    /// Set by the worker after upload (or from the upload cache).
    pub remote: Option<RemoteInput>,
}

/// One submit.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub job_id: Uuid,
    pub attempt: i32,
    pub operation: Operation,
    /// Canonical parameters (defaults applied).
    pub params: GenerationParams,
    pub inputs: Vec<InputMedia>,
    /// Where a provider that works inside submit (the local renderer) reports its
    /// progress; the worker records it while submit runs.
    pub progress: ProgressSink,
}

/// Progress reported from inside a submit (0..=1), read by the worker. Clones share
/// the value.
#[derive(Debug, Clone, Default)]
pub struct ProgressSink(Arc<AtomicU32>);

impl ProgressSink {
    /// Sets the progress (clamped to 0..=1).
    pub fn report(&self, fraction: f32) {
        self.0
            .store(fraction.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    /// The last reported progress (0 before any report).
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Result bytes.
#[derive(Debug, Clone)]
pub struct MediaResult {
    pub bytes: Vec<u8>,
    pub thumbnail: Option<Vec<u8>>,
    pub remote_url: Option<String>,
}

/// What submit answered.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub remote_id: String,
    /// Synchronous providers return the result at once (no polling).
    pub immediate: Option<MediaResult>,
}

/// Normalized remote status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteStatus {
    Queued,
    Processing,
    Succeeded,
    Failed,
    /// Refused by moderation.
    Filtered,
    Cancelled,
    Deleted,
}

impl RemoteStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, RemoteStatus::Queued | RemoteStatus::Processing)
    }
}

/// One poll.
#[derive(Debug, Clone)]
pub struct PollResult {
    pub status: RemoteStatus,
    /// 0..=1.
    pub progress: Option<f32>,
    /// Where the result is, when the body says (Pixverse `Resp.url`).
    pub result_url: Option<String>,
    /// The provider's hint for the next poll.
    pub next_poll: Option<Duration>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Provider failures, by class.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Retry later with backoff (network, 5xx, high load, malformed answers).
    #[error("transient provider error{}: {message}", code_suffix(.code))]
    Transient {
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The account runs as many jobs as the provider allows: requeue, not a failure.
    #[error("provider concurrency limit{}: {message}", code_suffix(.code))]
    ConcurrencyLimit {
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Too many requests: the account cools down.
    #[error("rate limited{}: {message}", code_suffix(.code))]
    RateLimited {
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Refused by moderation: terminal for this input.
    #[error("refused by moderation{}: {message}", code_suffix(.code))]
    Moderation {
        code: Option<String>,
        message: String,
    },
    /// The account has no credits left: mark it exhausted and try another.
    #[error("out of credits{}: {message}", code_suffix(.code))]
    OutOfCredits {
        code: Option<String>,
        message: String,
    },
    /// The key was refused: mark the account errored and try another.
    #[error("authentication refused{}: {message}", code_suffix(.code))]
    Auth {
        code: Option<String>,
        message: String,
    },
    /// The request itself is wrong: terminal.
    #[error("request refused{}: {message}", code_suffix(.code))]
    InvalidRequest {
        code: Option<String>,
        message: String,
    },
    /// A request timed out.
    #[error("provider request timed out: {0}")]
    Timeout(String),
    /// The result could not be fetched.
    #[error("download failed: {0}")]
    Download(#[from] DownloadError),
    /// The provider does not support this (e.g. an upload).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The outbound guard refused the destination (a base URL or a result URL on a
    /// private address): terminal.
    #[error("destination not allowed: {0}")]
    Blocked(String),
}

impl From<crate::guard::GuardError> for ProviderError {
    fn from(e: crate::guard::GuardError) -> Self {
        ProviderError::Blocked(e.to_string())
    }
}

/// A provider's error code, if it is a short token (letters, digits, `_`, `-`, `.`);
/// anything else may be text from the provider and is not shown.
pub fn public_code(code: &str) -> Option<&str> {
    (!code.is_empty()
        && code.len() <= 40
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')))
    .then_some(code)
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
}

impl ProviderError {
    /// The class name recorded with submissions: transient, concurrency_limit,
    /// rate_limited, moderation, out_of_credits, auth, invalid_request, timeout,
    /// download, unsupported.
    pub fn class(&self) -> &'static str {
        match self {
            ProviderError::Transient { .. } => "transient",
            ProviderError::ConcurrencyLimit { .. } => "concurrency_limit",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Moderation { .. } => "moderation",
            ProviderError::OutOfCredits { .. } => "out_of_credits",
            ProviderError::Auth { .. } => "auth",
            ProviderError::InvalidRequest { .. } => "invalid_request",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Download(_) => "download",
            ProviderError::Unsupported(_) => "unsupported",
            ProviderError::Blocked(_) => "blocked",
        }
    }

    /// What a user may see of this error: its class, the provider's code when it is a
    /// short token, and a fixed sentence. Never the provider's own text (it may echo
    /// internal addresses, request bodies or keys); `Display` has that, for the admin
    /// log only.
    pub fn public_message(&self) -> String {
        let what = match self {
            ProviderError::Transient { .. } => "the provider is unavailable",
            ProviderError::ConcurrencyLimit { .. } => "the account runs as many jobs as it may",
            ProviderError::RateLimited { .. } => "the provider is rate limiting the account",
            ProviderError::Moderation { .. } => "the provider's moderation refused the content",
            ProviderError::OutOfCredits { .. } => "the account has no credits left",
            ProviderError::Auth { .. } => "the provider refused the account's credentials",
            ProviderError::InvalidRequest { .. } => "the provider refused the request",
            ProviderError::Timeout(_) => "the provider did not answer in time",
            ProviderError::Download(DownloadError::TooLarge(_)) => "the result is too large",
            ProviderError::Download(DownloadError::BadContent) => {
                "the result is not a known media type"
            }
            ProviderError::Download(DownloadError::Blocked(_)) | ProviderError::Blocked(_) => {
                "the destination is not allowed"
            }
            ProviderError::Download(_) => "the result could not be downloaded",
            ProviderError::Unsupported(_) => "the provider does not support this request",
        };
        match self.code().and_then(public_code) {
            Some(c) => format!("{what} (code {c})"),
            None => what.to_owned(),
        }
    }

    /// The provider's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ProviderError::Transient { code, .. }
            | ProviderError::ConcurrencyLimit { code, .. }
            | ProviderError::RateLimited { code, .. }
            | ProviderError::Moderation { code, .. }
            | ProviderError::OutOfCredits { code, .. }
            | ProviderError::Auth { code, .. }
            | ProviderError::InvalidRequest { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The provider's Retry-After, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Transient { retry_after, .. }
            | ProviderError::ConcurrencyLimit { retry_after, .. }
            | ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Safe to retry the same request at once-ish (polls and downloads only).
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Transient { .. }
            | ProviderError::Timeout(_)
            | ProviderError::RateLimited { .. }
            | ProviderError::ConcurrencyLimit { .. } => true,
            ProviderError::Download(d) => d.is_transient(),
            _ => false,
        }
    }
}

/// A video provider.
pub trait Provider: Send + Sync + 'static {
    /// Registry id (`local`, `pixverse`, `openai`, …).
    fn id(&self) -> &str;

    /// What the provider says about itself (`GET /api/v1/providers`): its operations
    /// with their parameter limits, its credit rule, whether it can cancel and whether
    /// it is retired. The default describes an unknown provider with no operations.
    fn describe(&self) -> ProviderDescription {
        ProviderDescription {
            id: self.id().to_owned(),
            title: self.id().to_owned(),
            status: ProviderStatus::Available,
            retired_on: None,
            accepts_jobs: true,
            requires_account: self.requires_account(),
            can_cancel: self.can_cancel(),
            operations: Vec::new(),
            credits: CreditRule::Free,
        }
    }

    /// When the provider's API was turned off, and whether jobs are still accepted;
    /// `None`: not retired.
    fn retirement(&self) -> Option<Retirement> {
        None
    }

    /// A cheap reachability check for `/health` (the service caches its answer): a
    /// remote provider asks its base URL through the guard with a short timeout (any
    /// HTTP answer counts as reachable). `Err` says why not, without secrets.
    fn probe(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether jobs need a provider account (and its credentials).
    fn requires_account(&self) -> bool;

    /// Checks provider-specific parameter rules; returns the canonical parameters.
    fn validate(
        &self,
        op: Operation,
        params: &GenerationParams,
        inputs: &[InputRef],
        issues: &mut Issues,
    ) -> GenerationParams;

    /// Most inputs the provider takes for an operation (`None`: the operation's maximum).
    fn max_inputs(&self, _op: Operation) -> Option<usize> {
        None
    }

    /// Whether inputs must be uploaded before submit (and so are cached).
    fn needs_upload(&self, _input: &InputMedia) -> bool {
        false
    }

    /// How long the provider keeps an uploaded input (`None`: as long as we need it).
    /// A cached upload older than this is uploaded again.
    fn upload_lifetime(&self) -> Option<std::time::Duration> {
        None
    }

    /// Uploads one input.
    fn upload_input<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        input: &'a InputMedia,
    ) -> BoxFuture<'a, Result<RemoteInput, ProviderError>> {
        let id = input.asset_id;
        Box::pin(async move {
            Err(ProviderError::Unsupported(format!(
                "uploading input {id} is not supported"
            )))
        })
    }

    /// Submits a generation (called at most once per job attempt).
    fn submit<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        req: &'a SubmitRequest,
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>>;

    /// Polls a submission.
    fn poll<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        remote_id: &'a str,
    ) -> BoxFuture<'a, Result<PollResult, ProviderError>>;

    /// Fetches the result of a succeeded submission. The default downloads
    /// `poll.result_url` through the guarded downloader.
    fn download<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        _remote_id: &'a str,
        poll: &'a PollResult,
        downloader: &'a Downloader,
    ) -> BoxFuture<'a, Result<MediaResult, ProviderError>> {
        Box::pin(async move {
            let url = poll
                .result_url
                .as_deref()
                .ok_or_else(|| ProviderError::Transient {
                    code: None,
                    message: "succeeded without a result url".into(),
                    retry_after: None,
                })?;
            let d = downloader.fetch(url).await?;
            Ok(MediaResult {
                bytes: d.bytes,
                thumbnail: None,
                remote_url: Some(url.to_owned()),
            })
        })
    }

    /// Whether submit always returns the result at once (`Submitted::immediate`) and
    /// costs nothing: the submission record is then written with the completion.
    fn is_synchronous(&self) -> bool {
        false
    }

    /// Default pause between polls when the provider gives no hint.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(4)
    }

    /// Credits one submission costs: the account is charged this when the provider
    /// accepts a submission, and accounts with fewer tracked credits are not chosen
    /// (0: free or unknown).
    fn estimated_credits(&self, _op: Operation, _params: &GenerationParams) -> i64 {
        0
    }

    /// Whether the provider gives the charge back when a submission ends with this
    /// terminal status (Pixverse: moderation failures are refunded).
    fn refunds(&self, _status: RemoteStatus) -> bool {
        false
    }

    /// The account's current credit balance, from the provider's documented balance
    /// endpoint; `None` when the provider has none.
    fn balance<'a>(
        &'a self,
        _creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Option<i64>, ProviderError>> {
        Box::pin(async { Ok(None) })
    }

    /// The key the provider signs its webhooks with for this account (Standard
    /// Webhooks, `whsec_…`), where its contract has webhooks and this deployment asked
    /// for them; `Ok(None)` otherwise.
    fn webhook_secret<'a>(
        &'a self,
        _creds: &'a Credentials,
    ) -> BoxFuture<'a, Result<Option<String>, ProviderError>> {
        Box::pin(async { Ok(None) })
    }

    /// The submission (its id at the provider) a verified webhook body is about.
    fn webhook_subject(&self, _body: &[u8]) -> Option<String> {
        None
    }

    /// Whether [`Self::cancel`] can stop a submission (the provider's contract has a
    /// call for it). A processing job past its deadline is cancelled only then; else it
    /// is left to finish.
    fn can_cancel(&self) -> bool {
        false
    }

    /// Stops a submission on the provider's side, where its contract documents a call
    /// for it. `Ok(false)`: the provider has no such call (nothing was sent).
    fn cancel<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        _remote_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async { Ok(false) })
    }
}

/// How long a reachability probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reachability of a remote provider's base URL: one GET through the guarded client
/// with [`PROBE_TIMEOUT`]; any HTTP answer (401 and 404 included) counts as reachable.
/// The error names only the kind of failure.
pub async fn probe_base_url(
    client: &crate::guard::GuardedClient,
    base_url: &str,
) -> Result<(), String> {
    let req = client
        .request(reqwest::Method::GET, base_url)
        .map_err(|_| "the outbound guard refuses the base URL".to_owned())?;
    match req.timeout(PROBE_TIMEOUT).send().await {
        Ok(_) => Ok(()),
        Err(e) if crate::guard::refused_by_guard(&e) => {
            Err("the outbound guard refuses the base URL".into())
        }
        Err(e) if e.is_timeout() => Err("no answer in time".into()),
        Err(e) if e.is_connect() => Err("cannot connect".into()),
        Err(_) => Err("the request failed".into()),
    }
}
