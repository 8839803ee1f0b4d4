//! What every connection of one transport shares: the [`Channel`] (configuration,
//! handler, live counters, connection ids, stop signal), the [`ConnectionStats`] it
//! counts in and the [`Admission`] that holds a connection's place under
//! `max_connections`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use protocol::CloseCode;
use tokio::sync::watch;

use crate::handler::ConnectionHandler;
use crate::{ChannelConfig, ChannelError};

/// Live counters of one transport. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ConnectionStats {
    live: Arc<AtomicUsize>,
    accepted: Arc<AtomicU64>,
}

impl ConnectionStats {
    /// Connections currently admitted (not closed).
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
    /// Connections admitted since start.
    pub fn total_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// A connection's place in the live count, given back when dropped.
#[derive(Debug)]
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The shared part of one transport's connections. Cheap to clone.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ChannelConfig,
    handler: Arc<dyn ConnectionHandler>,
    stats: ConnectionStats,
    next_id: AtomicU64,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("cfg", &self.inner.cfg)
            .field("stats", &self.inner.stats)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel serving `handler` under `cfg`, counting in `stats` (pass
    /// `ConnectionStats::default()`, or a clone kept to read the figures).
    pub fn new(
        cfg: ChannelConfig,
        handler: Arc<dyn ConnectionHandler>,
        stats: ConnectionStats,
    ) -> Result<Channel, ChannelError> {
        if cfg.max_connections == 0 {
            return Err(ChannelError::Config("max_connections must be > 0".into()));
        }
        if cfg.outbox_capacity == 0 {
            return Err(ChannelError::Config("outbox_capacity must be > 0".into()));
        }
        Ok(Channel {
            inner: Arc::new(Inner {
                cfg,
                handler,
                stats,
                next_id: AtomicU64::new(1),
                stop: watch::Sender::new(false),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ChannelConfig {
        &self.inner.cfg
    }

    /// The connection handler.
    pub fn handler(&self) -> &Arc<dyn ConnectionHandler> {
        &self.inner.handler
    }

    /// The live counters.
    pub fn stats(&self) -> ConnectionStats {
        self.inner.stats.clone()
    }

    /// A new channel-unique connection id (for log spans and the handler).
    pub fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a new connection in: its [`Admission`], or [`CloseCode::ServerFull`]
    /// when `max_connections` are open (the transport then closes it with that code).
    pub fn admit(&self) -> Result<Admission, CloseCode> {
        let stats = &self.inner.stats;
        let live = stats.live.fetch_add(1, Ordering::Relaxed) + 1;
        let admission = Admission(Arc::clone(&stats.live));
        if live > self.inner.cfg.max_connections {
            tracing::warn!(
                max = self.inner.cfg.max_connections,
                "connection refused: server full"
            );
            return Err(CloseCode::ServerFull);
        }
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(admission)
    }

    /// Tells every connection (and every later one) to close with
    /// [`CloseCode::ServerShutdown`].
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// True once [`Channel::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Resolves once [`Channel::stop`] is called.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}
