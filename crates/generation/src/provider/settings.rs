//! Provider configuration: one entry per provider id (`[generation.providers.<id>]` in
//! the server's TOML), handed as it is to the provider, which parses its own entry
//! with [`parse`] (its config struct, serde defaults for what the entry leaves out).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The configuration entries of the providers, keyed by provider id. Each entry is a
/// table of that provider's keys (see its config struct); a provider without an entry
/// runs on its defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderSettings(BTreeMap<String, Value>);

impl ProviderSettings {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of provider `id`, if configured.
    pub fn entry(&self, id: &str) -> Option<&Value> {
        self.0.get(id)
    }

    /// Replaces the entry of provider `id`.
    pub fn insert(&mut self, id: impl Into<String>, entry: Value) -> &mut Self {
        self.0.insert(id.into(), entry);
        self
    }

    /// Sets one key of provider `id`'s entry (creating the entry).
    pub fn set(&mut self, id: &str, key: &str, value: impl Into<Value>) -> &mut Self {
        let entry = self
            .0
            .entry(id.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
        if !entry.is_object() {
            *entry = Value::Object(Default::default());
        }
        if let Value::Object(m) = entry {
            m.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Whether provider `id`'s entry sets `key`.
    pub fn has(&self, id: &str, key: &str) -> bool {
        self.entry(id).and_then(|e| e.get(key)).is_some()
    }

    /// The configured provider ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl From<BTreeMap<String, Value>> for ProviderSettings {
    fn from(m: BTreeMap<String, Value>) -> Self {
        ProviderSettings(m)
    }
}

/// A provider's configuration entry could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProviderConfigError {
    /// A key of the entry is unknown or has a wrong value.
    #[error("generation.providers.{provider}{}: {message}", key_suffix(.key))]
    Invalid {
        provider: String,
        /// The key (a dotted path inside the entry); empty for the entry itself.
        key: String,
        message: String,
    },
    /// An entry names no built-in provider.
    #[error("generation.providers.{provider}: no such provider (known: {known})")]
    Unknown { provider: String, known: String },
    /// The provider could not be built from a valid entry (e.g. its HTTP client).
    #[error("generation.providers.{provider}: {message}")]
    Build { provider: String, message: String },
}

fn key_suffix(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!(".{key}")
    }
}

impl ProviderConfigError {
    pub fn build(provider: &str, e: impl std::fmt::Display) -> Self {
        ProviderConfigError::Build {
            provider: provider.to_owned(),
            message: e.to_string(),
        }
    }
}

/// Parses provider `id`'s entry into its config struct; no entry (or `null`) gives
/// the struct's defaults. Errors name the provider and the key.
pub fn parse<T: DeserializeOwned + Default>(
    id: &str,
    entry: Option<&Value>,
) -> Result<T, ProviderConfigError> {
    let Some(entry) = entry.filter(|e| !e.is_null()) else {
        return Ok(T::default());
    };
    serde_path_to_error::deserialize(entry).map_err(|e| ProviderConfigError::Invalid {
        provider: id.to_owned(),
        key: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Deserializes seconds (an integer or a fraction) into a [`Duration`].
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = f64::deserialize(d)?;
    Duration::try_from_secs_f64(s).map_err(|_| {
        serde::de::Error::custom(format!("{s} is not a number of seconds (0 or more)"))
    })
}

/// Deserializes a price table `{ "<name>" = <credits>, … }` into `(name, credits)` pairs.
pub fn price_table<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, i64)>, D::Error> {
    Ok(BTreeMap::<String, i64>::deserialize(d)?
        .into_iter()
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        base_url: String,
        #[serde(rename = "timeout_secs", deserialize_with = "secs")]
        timeout: Duration,
        #[serde(deserialize_with = "price_table")]
        prices: Vec<(String, i64)>,
    }

    impl Default for Sample {
        fn default() -> Self {
            Sample {
                base_url: "https://x".into(),
                timeout: Duration::from_secs(3),
                prices: vec![("a".into(), 1)],
            }
        }
    }

    #[test]
    fn no_entry_gives_the_defaults_and_an_entry_overrides_its_keys() {
        assert_eq!(parse::<Sample>("p", None).unwrap(), Sample::default());
        let mut s = ProviderSettings::new();
        s.set("p", "timeout_secs", 0.5)
            .set("p", "prices", serde_json::json!({"b": 2, "a": 3}));
        let got: Sample = parse("p", s.entry("p")).unwrap();
        assert_eq!(got.base_url, "https://x");
        assert_eq!(got.timeout, Duration::from_millis(500));
        assert_eq!(got.prices, vec![("a".into(), 3), ("b".into(), 2)]);
    }

    #[test]
    fn errors_name_the_provider_and_the_key() {
        let bad = serde_json::json!({"timeout_secs": "soon"});
        let e = parse::<Sample>("pv", Some(&bad)).unwrap_err().to_string();
        assert!(
            e.starts_with("generation.providers.pv.timeout_secs: "),
            "{e}"
        );
        let unknown = serde_json::json!({"base_ur": "x"});
        let e = parse::<Sample>("pv", Some(&unknown))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("generation.providers.pv") && e.contains("base_ur"),
            "{e}"
        );
        let price = serde_json::json!({"prices": {"a": "x"}});
        let e = parse::<Sample>("pv", Some(&price)).unwrap_err().to_string();
        assert!(e.contains("pv.prices.a"), "{e}");
        let negative = serde_json::json!({"timeout_secs": -1});
        let e = parse::<Sample>("pv", Some(&negative))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pv.timeout_secs"), "{e}");
    }
}
