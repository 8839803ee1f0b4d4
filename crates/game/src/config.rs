//! [`GameConfig`]: the game's tunables (resend window, queues, eviction, batching).

use std::time::Duration;

/// Tunables.
#[derive(Clone, Debug)]
pub struct GameConfig {
    /// Events kept per session for resend after a reconnect.
    pub resend_window: usize,
    /// Inbound channel capacity (commands between two ticks, all sessions).
    pub inbound_capacity: usize,
    /// Commands queued per session in the tick (beyond: busy).
    pub per_session_queue: usize,
    /// Ticks waiting for the persister beyond which new commands are refused (busy).
    pub max_pending_ticks: u64,
    /// Commands awaiting their durable answer on one QUIC connection; more are
    /// answered `busy` at once.
    pub max_inflight: usize,
    /// How long a connection's event forwarder waits for room in the connection's
    /// send queue before the client counts as a slow consumer and is closed.
    pub send_wait: Duration,
    /// Ended sessions stay in memory this long after their end was committed.
    pub evict_ended_after: Duration,
    /// Sessions with no subscriber (no connection or event stream attached) and no
    /// activity for this long are saved and unloaded from the tick and from memory.
    pub evict_idle_after: Duration,
    /// How long after a batch is logged (and its events published) the applier waits
    /// before writing it into the session and event tables. The write costs the
    /// database a few milliseconds of CPU; made at once, it competes with the
    /// delivery of the events that follows the commit. A backlog is applied without
    /// waiting. Set it to about a third of the tick period.
    pub apply_delay: Duration,
    /// Sessions whose command waited at least this long for its tick are handed to the
    /// persister first, in a smaller batch of their own, committed while the tick
    /// builds the rest: the commands that waited longest, the closest to the latency
    /// bound, are answered sooner; the others, with time to spare, a commit later.
    /// `None`: one batch per tick. Set it to about four fifths of the tick period.
    pub urgent_wait: Option<Duration>,
    /// Sessions one user may have live (in memory and not ended) at once; creating or
    /// reloading one more is refused with [`GameError::SessionLimit`].
    pub max_live_sessions_per_user: usize,
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig {
            resend_window: 1000,
            inbound_capacity: 16 * 1024,
            per_session_queue: 8,
            max_pending_ticks: 20,
            max_inflight: 32,
            send_wait: Duration::from_secs(2),
            evict_ended_after: Duration::from_secs(60),
            evict_idle_after: Duration::from_secs(600),
            apply_delay: Duration::from_millis(15),
            urgent_wait: Some(Duration::from_millis(40)),
            max_live_sessions_per_user: 16,
        }
    }
}

impl GameConfig {
    /// How often the sweeper looks for sessions to evict.
    pub(crate) fn sweep_interval(&self) -> Duration {
        (self.evict_ended_after.min(self.evict_idle_after) / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(5))
    }
}
