//! Errors of the pipeline's public API, each with a stable machine code.

use store::StoreError;

use crate::model::ParamIssue;

/// Errors of [`crate::GenerationService`] (and the worker's setup).
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    /// The request does not validate; the issues say why (same as validate's answer).
    #[error("invalid parameters: {}", summary(.0))]
    InvalidParameters(Vec<ParamIssue>),
    /// No provider account could ever run the job for this user.
    #[error("no account available for provider {0}")]
    NoAccountAvailable(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (or a unique key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The per-user limit on concurrent jobs is reached.
    #[error("limit exceeded: {active} active jobs, at most {limit}")]
    LimitExceeded { active: i64, limit: i64 },
    /// The job would spend more than a credit budget allows.
    #[error(
        "budget exceeded: the {} budget of {} {} allows {} credits, {} spent, this job needs {}",
        .0.period, .0.scope, .0.scope_id, .0.limit, .0.spent, .0.estimate
    )]
    BudgetExceeded(BudgetRefusal),
    /// The actor may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A provider's webhook whose signature does not verify (or is stale).
    #[error("webhook refused: {0}")]
    WebhookRefused(String),
    /// An upload was refused (too large, unknown or mismatched content).
    #[error("invalid media: {0}")]
    InvalidMedia(String),
    /// A request's value breaks a rule (a clip outside its video, a malformed tag).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unknown provider {0}")]
    UnknownProvider(String),
    /// The provider has no such operation (e.g. no balance endpoint).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The provider refused the account (its key).
    #[error("the provider refused the account: {0}")]
    ProviderRefused(String),
    /// The provider could not be reached or answered with an error.
    #[error("the provider is unavailable: {0}")]
    ProviderUnavailable(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A provider's configuration entry is wrong (at startup).
    #[error(transparent)]
    ProviderConfig(#[from] crate::provider::ProviderConfigError),
}

/// Which budget refused a job, and by how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRefusal {
    /// `user` or `world`.
    pub scope: String,
    pub scope_id: String,
    /// `daily` or `total`.
    pub period: &'static str,
    pub limit: i64,
    pub spent: i64,
    /// The job's estimated credits.
    pub estimate: i64,
}

fn summary(issues: &[ParamIssue]) -> String {
    issues
        .iter()
        .map(ParamIssue::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl GenerationError {
    /// `invalid_parameters` with one issue.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        GenerationError::InvalidParameters(vec![ParamIssue {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }])
    }

    /// Stable machine code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            GenerationError::InvalidParameters(_) => "invalid_parameters",
            GenerationError::NoAccountAvailable(_) => "no_account_available",
            GenerationError::NotFound(_) => "not_found",
            GenerationError::Conflict(_) => "conflict",
            GenerationError::LimitExceeded { .. } => "limit_exceeded",
            GenerationError::BudgetExceeded(_) => "budget_exceeded",
            GenerationError::Forbidden(_) => "forbidden",
            GenerationError::WebhookRefused(_) => "invalid_signature",
            GenerationError::InvalidMedia(_) => "invalid_media",
            GenerationError::InvalidRequest(_) => "invalid_request",
            GenerationError::UnknownProvider(_) => "unknown_provider",
            GenerationError::Unsupported(_) => "unsupported",
            GenerationError::ProviderRefused(_) => "provider_refused",
            GenerationError::ProviderUnavailable(_) => "provider_unavailable",
            GenerationError::Store(e) if e.is_unavailable() => "unavailable",
            GenerationError::Store(_)
            | GenerationError::Io(_)
            | GenerationError::ProviderConfig(_) => "internal",
        }
    }

    /// The HTTP status the REST layer should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            GenerationError::InvalidParameters(_)
            | GenerationError::InvalidMedia(_)
            | GenerationError::InvalidRequest(_)
            | GenerationError::UnknownProvider(_)
            | GenerationError::Unsupported(_) => 422,
            GenerationError::ProviderRefused(_) => 409,
            GenerationError::ProviderUnavailable(_) => 503,
            GenerationError::NoAccountAvailable(_) => 409,
            GenerationError::NotFound(_) => 404,
            GenerationError::Conflict(_) => 409,
            GenerationError::LimitExceeded { .. } => 429,
            GenerationError::BudgetExceeded(_) => 402,
            GenerationError::Forbidden(_) => 403,
            GenerationError::WebhookRefused(_) => 401,
            GenerationError::Store(e) if e.is_unavailable() => 503,
            GenerationError::Store(_)
            | GenerationError::Io(_)
            | GenerationError::ProviderConfig(_) => 500,
        }
    }
}

impl From<StoreError> for GenerationError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => GenerationError::NotFound(what),
            StoreError::Conflict(what) => GenerationError::Conflict(what.to_owned()),
            other => GenerationError::Store(other),
        }
    }
}
