//! The world clock: sampled by the tick after each tick ([`ClockSample`]), read and
//! extrapolated to now by [`GameHandle::clock`] ([`WorldTime`]).

use std::time::Instant;

use crate::GameHandle;

/// The world clock as published by the tick after each tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClockSample {
    /// World time after the tick's clock advance (ms).
    pub now_ms: i64,
    /// The simulation's tick number.
    pub tick: u64,
    /// When the tick began (its `PreUpdate`).
    pub started: Instant,
    /// World ms per 1,000 real ms; 0 while paused or turn-based.
    pub rate_permille: u32,
    /// World ms one tick adds at scale 1.
    pub tick_ms: i64,
}

/// The simulation's world time at a moment, for time-sync replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldTime {
    /// World time (ms).
    pub world_time_ms: i64,
    /// The simulation's tick number.
    pub tick: u64,
}

impl GameHandle {
    /// The simulation's world time now: the last tick's world time plus the scaled
    /// real time since that tick began (at most one tick's worth, so a stalled tick
    /// is not run ahead of). `None` before the first tick.
    pub fn clock(&self) -> Option<WorldTime> {
        let sample = (*self.shared.clock.lock().unwrap_or_else(|p| p.into_inner()))?;
        let elapsed = i64::try_from(sample.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let elapsed = elapsed.min(sample.tick_ms.saturating_mul(1000));
        let ahead = elapsed.saturating_mul(i64::from(sample.rate_permille)) / 1_000_000;
        Some(WorldTime {
            world_time_ms: sample.now_ms.saturating_add(ahead),
            tick: sample.tick,
        })
    }
}
