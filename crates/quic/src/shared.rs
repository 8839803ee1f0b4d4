//! What the endpoint shares with its connection tasks: the configuration, the handler
//! and the live counters ([`QuicStats`]) in [`Shared`], the guard that keeps the live
//! count honest, the stop signal and the wall clock. `server` (the accept loop) and
//! `conn` (one connection) both build on this; it depends on neither.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::QuicConfig;
use crate::handler::ConnectionHandler;

/// Live counters of an endpoint. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct QuicStats {
    pub(crate) live: Arc<AtomicUsize>,
    pub(crate) accepted: Arc<AtomicU64>,
}

impl QuicStats {
    /// Connections currently established (TLS done, not closed).
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
    /// Connections established since start.
    pub fn total_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Decrements the live count when the connection task ends.
pub(crate) struct LiveGuard(pub(crate) Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every connection task of one endpoint holds (behind an `Arc`).
pub(crate) struct Shared {
    pub(crate) cfg: QuicConfig,
    pub(crate) stats: QuicStats,
    pub(crate) handler: Arc<dyn ConnectionHandler>,
    pub(crate) next_id: AtomicU64,
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Resolves when shutdown is requested (or the run loop is gone).
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
