//! The providers by id: [`BUILT_IN`], the one list where a provider module is
//! registered, and [`ProviderRegistry`], the providers a service runs with.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::settings::{ProviderConfigError, ProviderSettings};
use super::{Provider, local, openai, pixverse, replicate};
use crate::guard::Guard;

/// What a provider is built with besides its own configuration entry.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// Every outbound request goes through this guard ([`Guard::client`]).
    pub guard: &'a Guard,
}

/// Builds a provider from its configuration entry (`None`: not configured, defaults).
pub type Build =
    fn(Option<&Value>, BuildContext<'_>) -> Result<Arc<dyn Provider>, ProviderConfigError>;

/// The built-in providers: `(id, constructor)`. Adding a provider is a module under
/// `provider/` and one line here.
pub const BUILT_IN: &[(&str, Build)] = &[
    (local::ID, local::build),
    (pixverse::ID, pixverse::build),
    (replicate::ID, replicate::build),
    (openai::ID, openai::build),
];

/// Providers by id.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    map: HashMap<String, Arc<dyn Provider>>,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("ids", &self.ids())
            .finish()
    }
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every built-in provider, each configured from its entry in `settings`. An entry
    /// naming no built-in provider is an error (a misspelt id would else be ignored).
    pub fn built_in(
        settings: &ProviderSettings,
        guard: &Guard,
    ) -> Result<Self, ProviderConfigError> {
        if let Some(unknown) = settings
            .ids()
            .find(|id| !BUILT_IN.iter().any(|(known, _)| known == id))
        {
            let known: Vec<&str> = BUILT_IN.iter().map(|(id, _)| *id).collect();
            return Err(ProviderConfigError::Unknown {
                provider: unknown.to_owned(),
                known: known.join(", "),
            });
        }
        let ctx = BuildContext { guard };
        let mut r = Self::new();
        for (id, build) in BUILT_IN {
            r.register(build(settings.entry(id), ctx)?);
        }
        Ok(r)
    }

    /// Adds (or replaces) a provider under its id.
    pub fn register(&mut self, p: Arc<dyn Provider>) -> &mut Self {
        self.map.insert(p.id().to_owned(), p);
        self
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn Provider>> {
        self.map.get(id).cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.map.keys().cloned().collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::guard::GuardConfig;

    #[test]
    fn every_built_in_provider_answers_to_its_registered_id() {
        let r = ProviderRegistry::built_in(
            &ProviderSettings::new(),
            &Guard::new(GuardConfig::default()),
        )
        .unwrap();
        for (id, _) in BUILT_IN {
            assert_eq!(r.get(id).unwrap().id(), *id);
        }
        // Ids are unique: a second registration under one id would replace the first.
        assert_eq!(r.ids().len(), BUILT_IN.len());
    }

    #[test]
    fn a_misspelt_or_wrong_entry_is_refused_with_its_provider_and_key() {
        let guard = Guard::new(GuardConfig::default());
        let mut s = ProviderSettings::new();
        s.set("pixvers", "base_url", "http://x");
        let e = ProviderRegistry::built_in(&s, &guard).unwrap_err();
        assert!(e.to_string().contains("pixvers"), "{e}");
        let mut s = ProviderSettings::new();
        s.set("openai", "poll_interval_secs", "often");
        let e = ProviderRegistry::built_in(&s, &guard).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("generation.providers.openai.poll_interval_secs"),
            "{e}"
        );
        let mut s = ProviderSettings::new();
        s.set("local", "colour", 1);
        let e = ProviderRegistry::built_in(&s, &guard).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
