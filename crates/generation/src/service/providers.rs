//! The providers as users see them (`GET /api/v1/providers`) and their reachability
//! (`/health`), each probe's answer cached so that health checks cannot hammer a
//! provider.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::generation::accounts;
use tokio::sync::Mutex;
use utoipa::ToSchema;

use super::GenerationService;
use crate::error::GenerationError;
use crate::model::Actor;
use crate::provider::{ProviderDescription, ProviderRegistry, ProviderStatus};

/// Whether a provider answered its last reachability probe.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderReachability {
    pub id: String,
    /// `up` or `down`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why not (the kind of failure only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the probe ran (answers are reused for the probe's cache time).
    pub checked_at: DateTime<Utc>,
}

type Slot = Arc<Mutex<Option<(Instant, ProviderReachability)>>>;

/// One cached answer per provider; a probe runs under its provider's lock, so
/// concurrent health checks wait for the one probe instead of sending their own.
#[derive(Debug, Default)]
pub(crate) struct ProbeCache {
    slots: HashMap<String, Slot>,
}

impl ProbeCache {
    pub(crate) fn new(providers: &ProviderRegistry) -> Self {
        ProbeCache {
            slots: providers
                .ids()
                .into_iter()
                .map(|id| (id, Slot::default()))
                .collect(),
        }
    }
}

impl GenerationService {
    /// Every provider with its operations, parameter limits, credit rule and status for
    /// this actor: `retired` for a retired provider, `unconfigured` when it needs an
    /// account and none could run the actor's jobs, else `available`. Sorted by id.
    pub async fn list_providers(
        &self,
        actor: Actor,
    ) -> Result<Vec<ProviderDescription>, GenerationError> {
        let providers = &self.shared.providers;
        let mut out = Vec::new();
        for id in providers.ids() {
            let Some(p) = providers.get(&id) else {
                continue;
            };
            let mut d = p.describe();
            if d.status == ProviderStatus::Available
                && d.requires_account
                && !accounts::any_could_qualify(&self.shared.pool, &id, actor.user_id.0).await?
            {
                d.status = ProviderStatus::Unconfigured;
            }
            out.push(d);
        }
        Ok(out)
    }

    /// Each provider's reachability, probed at most once per `provider_probe_ttl`
    /// (`local`: ffmpeg is there; a remote provider: its base URL answers through the
    /// guard). Sorted by id.
    pub async fn provider_reachability(&self) -> Vec<ProviderReachability> {
        let ttl = self.shared.cfg.provider_probe_ttl;
        let checks = self.providers().ids().into_iter().map(|id| async move {
            let slot = self.probes.slots.get(&id).cloned().unwrap_or_default();
            self.reachability(&id, &slot, ttl).await
        });
        futures::future::join_all(checks).await
    }

    async fn reachability(&self, id: &str, slot: &Slot, ttl: Duration) -> ProviderReachability {
        let mut cached = slot.lock().await;
        if let Some((at, r)) = cached.as_ref()
            && at.elapsed() < ttl
        {
            return r.clone();
        }
        let started = Instant::now();
        let result = match self.providers().get(id) {
            Some(p) => p.probe().await,
            None => Err("unknown provider".into()),
        };
        let r = ProviderReachability {
            id: id.to_owned(),
            status: if result.is_ok() { "up" } else { "down" },
            latency_ms: result
                .is_ok()
                .then(|| started.elapsed().as_secs_f64() * 1e3),
            error: result.err(),
            checked_at: Utc::now(),
        };
        *cached = Some((Instant::now(), r.clone()));
        r
    }
}
