//! The worlds' clocks: sampled by the tick after each tick ([`ClockSample`], every
//! served world's), read and extrapolated to now by [`GameHandle::clock`] (the default
//! world), [`GameHandle::world_clock`] and [`GameHandle::session_clock`] (the clock of a
//! session's world, what its time-sync replies carry) as a [`WorldTime`].

use std::time::Instant;

use uuid::Uuid;

use crate::GameHandle;

/// The worlds' clocks as published by the tick after each tick.
#[derive(Clone, Debug)]
pub(crate) struct ClockSample {
    /// The simulation's tick number.
    pub tick: u64,
    /// When the tick began (its `PreUpdate`).
    pub started: Instant,
    /// World ms one tick adds at scale 1.
    pub tick_ms: i64,
    /// Every served world (the default world first): its id and time.
    pub worlds: Vec<(String, WorldSample)>,
}

/// One world's time after a tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorldSample {
    /// World time after the tick's clock advance (ms).
    pub now_ms: i64,
    /// World ms per 1,000 real ms; 0 while paused or turn-based.
    pub rate_permille: u32,
}

impl ClockSample {
    /// The sample of a tick that began at `started`, from the simulation's clocks.
    pub(crate) fn new(started: Instant, tick_ms: i64, clocks: Vec<(String, sim::Clock)>) -> Self {
        let tick = clocks.first().map_or(0, |(_, c)| c.tick);
        let worlds = clocks
            .into_iter()
            .map(|(id, c)| {
                let rate_permille = if c.paused || c.turn_based {
                    0
                } else {
                    c.scale_permille
                };
                let now_ms = c.now_ms;
                (
                    id,
                    WorldSample {
                        now_ms,
                        rate_permille,
                    },
                )
            })
            .collect();
        ClockSample {
            tick,
            started,
            tick_ms,
            worlds,
        }
    }
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
    /// The default world's time now (see [`GameHandle::world_clock`]).
    pub fn clock(&self) -> Option<WorldTime> {
        self.world_clock(domain::narrative::world::DEFAULT_WORLD)
    }

    /// A world's time now: the last tick's world time plus the scaled real time since
    /// that tick began (at most one tick's worth, so a stalled tick is not run ahead
    /// of). `None` before the first tick or for a world that is not served.
    pub fn world_clock(&self, world: &str) -> Option<WorldTime> {
        let guard = self.shared.clock.lock().unwrap_or_else(|p| p.into_inner());
        let sample = guard.as_ref()?;
        let (_, w) = sample.worlds.iter().find(|(id, _)| id == world)?;
        let elapsed = i64::try_from(sample.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let elapsed = elapsed.min(sample.tick_ms.saturating_mul(1000));
        let ahead = elapsed.saturating_mul(i64::from(w.rate_permille)) / 1_000_000;
        Some(WorldTime {
            world_time_ms: w.now_ms.saturating_add(ahead),
            tick: sample.tick,
        })
    }

    /// The time now in the world of a loaded session (the world of the scene it
    /// started at; the default world's for a session not loaded).
    pub fn session_clock(&self, session: Uuid) -> Option<WorldTime> {
        let scene = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&session)
            .and_then(|s| s.scene.clone());
        let content = self.content.get();
        let world = scene
            .as_deref()
            .and_then(|s| content.scene(s))
            .map_or(domain::narrative::world::DEFAULT_WORLD, |s| {
                domain::narrative::world::scene_world(s)
            });
        self.world_clock(world)
    }

    /// Every served world's time now, the default world first.
    pub fn world_clocks(&self) -> Vec<(String, WorldTime)> {
        let ids: Vec<String> = {
            let guard = self.shared.clock.lock().unwrap_or_else(|p| p.into_inner());
            guard
                .as_ref()
                .map(|s| s.worlds.iter().map(|(id, _)| id.clone()).collect())
                .unwrap_or_default()
        };
        ids.into_iter()
            .filter_map(|id| Some((id.clone(), self.world_clock(&id)?)))
            .collect()
    }
}
