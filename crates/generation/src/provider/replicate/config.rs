//! The Replicate adapter's settings (its entry in the provider settings), the models it
//! maps operations to, and its price estimate.

use std::time::Duration;

use serde::Deserialize;

use super::ID;
use crate::model::{GenerationParams, Operation};
use crate::provider::settings::{ProviderConfigError, price_table, secs};

/// Replicate settings.
///
/// Its `[generation.providers.replicate]` entry takes `base_url`,
/// `request_timeout_secs`, `poll_interval_secs`, `prefer_wait_secs`,
/// `text_to_video_model`, `image_to_video_model`, `credits_per_second` (a table
/// `{ "720p" = 10, … }`), `webhook_url` and `data_url_max_bytes`; keys left out keep
/// their defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicateConfig {
    /// e.g. `https://api.replicate.com/v1`.
    pub base_url: String,
    /// Per-request timeout (must exceed `prefer_wait_secs`).
    #[serde(rename = "request_timeout_secs", deserialize_with = "secs")]
    pub request_timeout: Duration,
    /// Pause between status polls.
    #[serde(rename = "poll_interval_secs", deserialize_with = "secs")]
    pub poll_interval: Duration,
    /// Sends `Prefer: wait=<n>` on create (1 to 60: the create call waits up to that
    /// long for the model); 0 creates asynchronously (the default: videos take
    /// minutes).
    pub prefer_wait_secs: u32,
    /// The model `text_to_video` runs: `owner/name` (an official model, created with
    /// `POST /models/{owner}/{name}/predictions`) or `owner/name:version` (a community
    /// model's version, created with `POST /predictions`). It must take the Wan 2.5
    /// text-to-video inputs (`prompt`, `negative_prompt`, `duration`, `size`, `seed`).
    pub text_to_video_model: String,
    /// The model `image_to_video` runs, as above; it must take the Wan 2.5
    /// image-to-video inputs (`image`, `prompt`, `negative_prompt`, `duration`,
    /// `resolution`, `seed`).
    pub image_to_video_model: String,
    /// Credits (US cents, say) one second of video costs, by quality; an unlisted
    /// quality costs the highest listed price. Not part of the contract: Replicate
    /// bills per model; these are configurable estimates.
    #[serde(deserialize_with = "price_table")]
    pub credits_per_second: Vec<(String, i64)>,
    /// Where Replicate can reach this server's `POST /api/v1/providers/replicate/webhook`
    /// (an `https://` URL on the public internet). Set: every prediction asks for a
    /// webhook on completion, which makes the worker poll at once instead of at its next
    /// interval. Unset (the default): polling only.
    pub webhook_url: Option<String>,
    /// Inputs up to this size go inline as `data:` URLs; larger ones are uploaded with
    /// the Files API (`POST /v1/files`) and passed by their URL. Replicate recommends
    /// data URLs only below 1 MB.
    pub data_url_max_bytes: usize,
}

impl Default for ReplicateConfig {
    fn default() -> Self {
        ReplicateConfig {
            base_url: "https://api.replicate.com/v1".into(),
            request_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            prefer_wait_secs: 0,
            text_to_video_model: "wan-video/wan-2.5-t2v".into(),
            image_to_video_model: "wan-video/wan-2.5-i2v".into(),
            credits_per_second: vec![
                ("480p".into(), 5),
                ("720p".into(), 10),
                ("1080p".into(), 15),
            ],
            webhook_url: None,
            data_url_max_bytes: 1_000_000,
        }
    }
}

/// A model reference: `owner/name` or `owner/name:version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub owner: String,
    pub name: String,
    pub version: Option<String>,
}

fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl ModelRef {
    /// Parses `owner/name[:version]` (letters, digits, `-`, `_`, `.`).
    pub fn parse(s: &str) -> Option<ModelRef> {
        let (path, version) = match s.split_once(':') {
            Some((p, v)) => (p, Some(v)),
            None => (s, None),
        };
        let (owner, name) = path.split_once('/')?;
        if !token_ok(owner) || !token_ok(name) || version.is_some_and(|v| !token_ok(v)) {
            return None;
        }
        Some(ModelRef {
            owner: owner.into(),
            name: name.into(),
            version: version.map(str::to_owned),
        })
    }
}

impl ReplicateConfig {
    /// Checks what serde cannot: model references, `prefer_wait_secs`, `webhook_url`.
    pub fn check(&self) -> Result<(), ProviderConfigError> {
        let invalid = |key: &str, message: String| ProviderConfigError::Invalid {
            provider: ID.into(),
            key: key.into(),
            message,
        };
        for (key, model) in [
            ("text_to_video_model", &self.text_to_video_model),
            ("image_to_video_model", &self.image_to_video_model),
        ] {
            if ModelRef::parse(model).is_none() {
                return Err(invalid(
                    key,
                    format!("{model:?} is not owner/name or owner/name:version"),
                ));
            }
        }
        if self.prefer_wait_secs > 60 {
            return Err(invalid(
                "prefer_wait_secs",
                format!("{} is more than 60", self.prefer_wait_secs),
            ));
        }
        if let Some(url) = &self.webhook_url {
            let ok = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(invalid(
                    "webhook_url",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        Ok(())
    }

    /// The model an operation runs (`None`: the operation is not mapped).
    pub fn model_for(&self, op: Operation) -> Option<&str> {
        match op {
            Operation::TextToVideo => Some(&self.text_to_video_model),
            Operation::ImageToVideo => Some(&self.image_to_video_model),
            _ => None,
        }
    }

    /// The estimated price of one video with these (canonical) parameters.
    pub fn credits_for(&self, params: &GenerationParams) -> i64 {
        let prices = &self.credits_per_second;
        let max = prices.iter().map(|c| c.1).max().unwrap_or(0);
        let per_second = params
            .quality
            .as_deref()
            .and_then(|q| prices.iter().find(|c| c.0 == q))
            .map_or(max, |c| c.1);
        per_second * i64::from(params.duration.unwrap_or(5))
    }
}
