//! The Pixverse adapter's settings (its entry in the provider settings) and its price
//! estimate.

use std::time::Duration;

use serde::Deserialize;

use crate::model::GenerationParams;
use crate::provider::settings::{price_table, secs};

/// Pixverse settings.
///
/// Its `[generation.providers.pixverse]` entry takes `base_url`,
/// `request_timeout_secs`, `poll_interval_secs` and `credits_5s` (a table
/// `{ "360p" = 45, … }`); keys left out keep their defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PixverseConfig {
    /// e.g. `https://app-api.pixverse.ai` (no trailing `/openapi/v2`).
    pub base_url: String,
    /// Per-request timeout.
    #[serde(rename = "request_timeout_secs", deserialize_with = "secs")]
    pub request_timeout: Duration,
    /// Pause between status polls (the docs suggest 3–5 s).
    #[serde(rename = "poll_interval_secs", deserialize_with = "secs")]
    pub poll_interval: Duration,
    /// Credits a 5-second, normal-motion video costs, by quality. The contract does not
    /// document prices: these are configurable estimates. 8-second and `fast` motion
    /// videos cost double each; an unlisted quality costs the highest listed price.
    #[serde(deserialize_with = "price_table")]
    pub credits_5s: Vec<(String, i64)>,
}

impl Default for PixverseConfig {
    fn default() -> Self {
        PixverseConfig {
            base_url: "https://app-api.pixverse.ai".into(),
            request_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(4),
            credits_5s: vec![
                ("360p".into(), 45),
                ("540p".into(), 45),
                ("720p".into(), 60),
                ("1080p".into(), 120),
            ],
        }
    }
}

impl PixverseConfig {
    /// The estimated price of one video with these (canonical) parameters.
    pub fn credits_for(&self, params: &GenerationParams) -> i64 {
        let max = self.credits_5s.iter().map(|c| c.1).max().unwrap_or(0);
        let base = params
            .quality
            .as_deref()
            .and_then(|q| self.credits_5s.iter().find(|c| c.0 == q))
            .map_or(max, |c| c.1);
        let long = if params.duration.is_some_and(|d| d > 5) {
            2
        } else {
            1
        };
        let fast = if params.motion_mode.as_deref() == Some("fast") {
            2
        } else {
            1
        };
        base * long * fast
    }
}
