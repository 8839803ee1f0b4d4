//! What a provider says about itself for `GET /api/v1/providers`: its operations with
//! their parameter limits, its credit-estimate rule in a machine-readable form, whether
//! it can cancel, and whether it is retired. Each provider module builds its own
//! [`ProviderDescription`] (see [`super::Provider::describe`]); the service adds the
//! status that depends on the caller (`unconfigured`: no account its jobs could use).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::Operation;
use crate::params::MAX_PROMPT_CHARS;

/// A provider's availability, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    /// Jobs may be created and run.
    Available,
    /// The provider's API was turned off (see `retired_on`); new jobs are refused
    /// unless `accepts_jobs` says otherwise.
    Retired,
    /// The provider needs an account and none the caller's jobs could use exists.
    Unconfigured,
}

/// A retirement: the provider's API was (or will be) turned off on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    /// ISO date, e.g. `2026-09-24`.
    pub on: &'static str,
    /// Whether jobs are still accepted (the configured base URL serves the same
    /// contract, e.g. a compatible proxy).
    pub accepts_jobs: bool,
}

/// One provider, as listed by `GET /api/v1/providers`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderDescription {
    /// The registry id (`local`, `pixverse`, `openai`, `replicate`, …).
    pub id: String,
    /// A line on what it is.
    pub title: String,
    pub status: ProviderStatus,
    /// When the provider's API was turned off (ISO date), for a retired provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_on: Option<String>,
    /// Whether `POST /api/v1/generations` takes jobs for it.
    pub accepts_jobs: bool,
    /// Whether its jobs need a provider account (`/api/v1/accounts`).
    pub requires_account: bool,
    /// Whether a running job can be stopped on the provider's side.
    pub can_cancel: bool,
    /// The operations it supports, each with its parameter limits.
    pub operations: Vec<OperationLimits>,
    /// How the credits one job costs are estimated.
    pub credits: CreditRule,
}

/// The parameter limits of one operation. A list left empty means the parameter is not
/// taken; `defaults` shows what a request that leaves a parameter out gets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationLimits {
    pub operation: Operation,
    /// Whether `params.prompt` is required.
    pub prompt_required: bool,
    /// Most characters of `params.prompt`.
    pub max_prompt_chars: usize,
    /// Input assets taken (at most).
    pub max_inputs: Option<usize>,
    /// Allowed `params.model` values.
    pub models: Vec<String>,
    /// Allowed `params.duration` values, in seconds.
    pub durations: Vec<u32>,
    /// Allowed `params.quality` values.
    pub qualities: Vec<String>,
    /// Allowed `params.aspect_ratio` values.
    pub aspect_ratios: Vec<String>,
    /// Allowed `params.size` values.
    pub sizes: Vec<String>,
    /// Other parameters it takes (`seed`, `negative_prompt`, `motion_mode`, …).
    pub other_params: Vec<String>,
    /// The values a request that leaves them out gets.
    #[schema(value_type = Object)]
    pub defaults: BTreeMap<String, serde_json::Value>,
}

impl OperationLimits {
    /// Limits with nothing but the operation and the prompt rule (fill in the rest).
    pub fn new(operation: Operation, prompt_required: bool) -> Self {
        OperationLimits {
            operation,
            prompt_required,
            max_prompt_chars: MAX_PROMPT_CHARS,
            max_inputs: None,
            models: Vec::new(),
            durations: Vec::new(),
            qualities: Vec::new(),
            aspect_ratios: Vec::new(),
            sizes: Vec::new(),
            other_params: Vec::new(),
            defaults: BTreeMap::new(),
        }
    }

    /// Adds a default value.
    pub fn default_value(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.defaults.insert(key.to_owned(), value.into());
        self
    }
}

/// How a job's credits are estimated (what an account is charged when the provider
/// accepts a submission).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CreditRule {
    /// Costs nothing.
    Free,
    /// `prices[params.<by>] × (params.duration when per = "second", else 1) × every
    /// multiplier whose condition holds`; a value not in `prices` costs the highest
    /// listed price.
    Table {
        /// The parameter whose value picks the price (`quality`, `model`).
        by: String,
        per: CreditUnit,
        prices: BTreeMap<String, i64>,
        multipliers: Vec<CreditMultiplier>,
    },
}

/// What one listed price pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditUnit {
    /// One second of video.
    Second,
    /// One video.
    Video,
}

/// A factor applied to the price when a parameter meets a condition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreditMultiplier {
    pub param: String,
    /// The condition holds when the parameter is above this number …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above: Option<i64>,
    /// … or equals this value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    pub factor: i64,
}

/// A price table as the listing shows it.
pub fn price_map(prices: &[(String, i64)]) -> BTreeMap<String, i64> {
    prices.iter().cloned().collect()
}

/// `&[&str]` as owned strings.
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}
