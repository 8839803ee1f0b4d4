//! The OpenAI adapter's settings (its entry in the provider settings) and its price
//! estimate.

use std::time::Duration;

use serde::Deserialize;

use crate::model::GenerationParams;
use crate::provider::settings::{price_table, secs};

/// OpenAI settings.
///
/// Its `[generation.providers.openai]` entry takes `base_url`, `request_timeout_secs`,
/// `poll_interval_secs`, `max_download_bytes`, `credits_per_second` (a table
/// `{ "sora-2" = 10, … }`) and `accept_jobs`; keys left out keep their defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    #[serde(rename = "request_timeout_secs", deserialize_with = "secs")]
    pub request_timeout: Duration,
    /// Used when the answer has no `openai-poll-after-ms`.
    #[serde(rename = "poll_interval_secs", deserialize_with = "secs")]
    pub poll_interval: Duration,
    /// Largest result accepted.
    pub max_download_bytes: u64,
    /// Credits (US cents, say) one second of video costs, by model; an unlisted model
    /// costs the highest listed price. Not part of the contract: configurable estimates.
    #[serde(deserialize_with = "price_table")]
    pub credits_per_second: Vec<(String, i64)>,
    /// The API was turned off on 2026-09-24: new jobs are refused (422 naming the
    /// retirement) unless this is true, for a base URL that still serves the same
    /// contract (a compatible proxy, the contract fake).
    pub accept_jobs: bool,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "https://api.openai.com/v1".into(),
            request_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            max_download_bytes: 512 * 1024 * 1024,
            credits_per_second: vec![("sora-2".into(), 10), ("sora-2-pro".into(), 30)],
            accept_jobs: false,
        }
    }
}

impl OpenAiConfig {
    /// The estimated price of one video with these (canonical) parameters.
    pub fn credits_for(&self, params: &GenerationParams) -> i64 {
        let prices = &self.credits_per_second;
        let max = prices.iter().map(|c| c.1).max().unwrap_or(0);
        let per_second = params
            .model
            .as_deref()
            .and_then(|m| prices.iter().find(|c| c.0 == m))
            .map_or(max, |c| c.1);
        per_second * i64::from(params.duration.unwrap_or(4))
    }
}
