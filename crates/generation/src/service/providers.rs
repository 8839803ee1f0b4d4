//! The providers as users see them (`GET /api/v1/providers`) and their reachability
//! (`/health`), probed in the background and cached so that health checks can neither
//! hammer a provider nor wait on a slow one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Mutex;
use store::generation::accounts;
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::GenerationService;
use crate::error::GenerationError;
use crate::model::Actor;
use crate::provider::{Provider, ProviderDescription, ProviderRegistry, ProviderStatus};

/// Whether a provider answered its last reachability probe.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderReachability {
    pub id: String,
    /// `up`, `down`, `unknown` (the first probe has not answered yet) or `disabled`
    /// (probes are off).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why not (the kind of failure only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the answer's probe ran (answers are reused for the probe interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
}

impl ProviderReachability {
    fn without_probe(id: &str, status: &'static str) -> Self {
        ProviderReachability {
            id: id.to_owned(),
            status,
            latency_ms: None,
            error: None,
            checked_at: None,
        }
    }
}

#[derive(Debug, Default)]
struct SlotState {
    last: Option<(Instant, ProviderReachability)>,
    probing: bool,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<SlotState>,
    done: Notify,
}

/// One answer per provider, refreshed in the background: a health check reads the last
/// answer and, when it is older than the interval, starts one probe (never more than
/// one at a time per provider), so health checks neither wait for a slow provider nor
/// make more than one request to it per interval. Only the very first check waits, at
/// most [`FIRST_WAIT`], for the first answer.
#[derive(Debug, Default)]
pub(crate) struct ProbeCache {
    slots: HashMap<String, Arc<Slot>>,
}

/// How long a health check waits for a provider's first probe.
const FIRST_WAIT: Duration = Duration::from_millis(1500);

impl ProbeCache {
    pub(crate) fn new(providers: &ProviderRegistry) -> Self {
        ProbeCache {
            slots: providers
                .ids()
                .into_iter()
                .map(|id| (id, Arc::default()))
                .collect(),
        }
    }
}

async fn probe(p: Arc<dyn Provider>) -> ProviderReachability {
    let started = Instant::now();
    let result = p.probe().await;
    ProviderReachability {
        id: p.id().to_owned(),
        status: if result.is_ok() { "up" } else { "down" },
        latency_ms: result
            .is_ok()
            .then(|| started.elapsed().as_secs_f64() * 1e3),
        error: result.err(),
        checked_at: Some(Utc::now()),
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

    /// Each provider's reachability (`local`: ffmpeg is there; a remote provider: its
    /// base URL answers through the guard), probed in the background at most once per
    /// `provider_probe_interval` (zero: probes are off, every provider `disabled`).
    /// Sorted by id.
    pub async fn provider_reachability(&self) -> Vec<ProviderReachability> {
        let every = self.shared.cfg.provider_probe_interval;
        let checks = self.providers().ids().into_iter().map(|id| async move {
            if every.is_zero() {
                return ProviderReachability::without_probe(&id, "disabled");
            }
            match (self.probes.slots.get(&id), self.providers().get(&id)) {
                (Some(slot), Some(p)) => reachability(slot.clone(), p, every).await,
                _ => ProviderReachability::without_probe(&id, "unknown"),
            }
        });
        futures::future::join_all(checks).await
    }
}

async fn reachability(
    slot: Arc<Slot>,
    p: Arc<dyn Provider>,
    every: Duration,
) -> ProviderReachability {
    let id = p.id().to_owned();
    let first = {
        let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = st.last.as_ref().is_some_and(|(at, _)| at.elapsed() < every);
        if !fresh && !st.probing {
            st.probing = true;
            let slot = slot.clone();
            tokio::spawn(async move {
                let r = probe(p).await;
                let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
                st.last = Some((Instant::now(), r));
                st.probing = false;
                drop(st);
                slot.done.notify_waiters();
            });
        }
        match &st.last {
            Some((_, r)) => return r.clone(),
            None => slot.done.notified(),
        }
    };
    // No answer yet: wait a little for the first one.
    let _ = tokio::time::timeout(FIRST_WAIT, first).await;
    let st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
    st.last
        .as_ref()
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| ProviderReachability::without_probe(&id, "unknown"))
}
