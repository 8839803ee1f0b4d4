//! [`Shared`]: what the handle, the tick and the persister share (the live session
//! registry, the slot, the clock, the durability metrics), with eviction's sweep.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{ClockSample, GameConfig, LiveSession, MediaWanted, Slot, Whereabouts};

pub(crate) struct Shared {
    pub(crate) sessions: Mutex<HashMap<Uuid, Arc<LiveSession>>>,
    pub(crate) slot: Slot,
    pub(crate) cfg: GameConfig,
    /// The latest world clock (written once per tick; the tick never waits for it).
    pub(crate) clock: Mutex<Option<ClockSample>>,
    /// Signalled when an eviction finished (or was refused).
    pub(crate) evicted: tokio::sync::Notify,
    /// Sessions evicted since start (ended and idle).
    pub(crate) evictions: AtomicU64,
    /// Media requests from the tick (never waits: `try_send`).
    pub(crate) media_wanted: mpsc::Sender<MediaWanted>,
    /// Their receiver, until the server takes it.
    pub(crate) media_requests: Mutex<Option<mpsc::Receiver<MediaWanted>>>,
    /// Where sessions moved, once per tick (never waits: `try_send`).
    pub(crate) whereabouts: mpsc::Sender<Whereabouts>,
    /// Its receiver, until the server takes it …
    pub(crate) whereabouts_rx: Mutex<Option<mpsc::Receiver<Whereabouts>>>,
    /// … which it did: the tick records moves.
    pub(crate) whereabouts_taken: AtomicBool,
    pub(crate) metrics: DurabilityMetrics,
    /// Every logged batch up to this id is applied to the tables.
    pub(crate) applied_through: AtomicI64,
}

/// How long durability takes, for `/metrics`.
#[derive(Debug)]
pub(crate) struct DurabilityMetrics {
    /// One batch made durable in the batch log (the acknowledgement path).
    pub(crate) commit: tick::Histogram,
    /// One logged batch written into the session and event tables.
    pub(crate) apply: tick::Histogram,
    /// From the tick handing a batch over to its events published and its commands
    /// acknowledged (waiting for the writer, writing, publishing).
    pub(crate) handoff_to_ack: tick::Histogram,
    /// Batch writes (log or apply) that failed and were retried.
    pub(crate) retries: AtomicU64,
    /// Batches that held a tick's urgent part alone (see [`GameConfig::urgent_wait`]).
    pub(crate) urgent: AtomicU64,
}

/// Bounds, in seconds, of the durability histograms: fine below a tick period, where the
/// acknowledgement latency target lies.
const DURABILITY_BOUNDS: [f64; 18] = [
    0.000_25, 0.000_5, 0.001, 0.001_5, 0.002, 0.002_5, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01,
    0.015, 0.025, 0.05, 0.1, 0.25, 1.0,
];

impl Default for DurabilityMetrics {
    fn default() -> Self {
        DurabilityMetrics {
            commit: tick::Histogram::new(&DURABILITY_BOUNDS),
            apply: tick::Histogram::new(&DURABILITY_BOUNDS),
            handoff_to_ack: tick::Histogram::new(&DURABILITY_BOUNDS),
            retries: AtomicU64::new(0),
            urgent: AtomicU64::new(0),
        }
    }
}

impl Shared {
    pub(crate) fn session(&self, id: &Uuid) -> Option<Arc<LiveSession>> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// After the tick's unload of `id` is committed (or refused): forget the session
    /// (or keep it), and wake joins waiting on it.
    pub(crate) fn finish_unload(&self, id: &Uuid, unloaded: bool) {
        {
            let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = map.get(id) {
                if unloaded {
                    if s.is_evicting() {
                        map.remove(id);
                        self.evictions.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    s.evicting.store(false, Ordering::Release);
                    s.touch();
                }
            }
        }
        self.evicted.notify_waiters();
    }

    /// One sweep: drops ended sessions past their grace period and asks the tick to
    /// unload idle detached ones. Returns the sessions to unload.
    pub(crate) fn sweep(&self) -> Vec<Uuid> {
        let ended_ms = self.cfg.evict_ended_after.as_millis() as u64;
        let idle_ms = self.cfg.evict_idle_after.as_millis() as u64;
        let mut unload = Vec::new();
        let mut dropped = 0u64;
        let applied_through = self.applied_through.load(Ordering::Acquire);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, s| {
                if s.is_evicting() {
                    return true;
                }
                if s.ended() {
                    // `ended` is set only after the end was committed: every event of
                    // the session is durable. It leaves memory once its rows are applied
                    // too (a later join reads them). Subscribers keep their own `Arc`.
                    let applied = s.last_batch.load(Ordering::Acquire) <= applied_through;
                    let keep = s.idle_ms() < ended_ms || !applied;
                    if !keep {
                        dropped += 1;
                    }
                    return keep;
                }
                if s.subscribers.load(Ordering::Acquire) == 0 && s.idle_ms() >= idle_ms {
                    s.evicting.store(true, Ordering::Release);
                    unload.push(*id);
                }
                true
            });
        if dropped > 0 {
            self.evictions.fetch_add(dropped, Ordering::Relaxed);
            tracing::debug!(sessions = dropped, "ended sessions dropped from memory");
        }
        unload
    }
}
