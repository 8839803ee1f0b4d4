//! [`WorldClock`]: the terminal player's estimate of the server's world clock, which
//! decides when a hidden choice is revealed and what time a reflex key press claims.

use std::time::{Duration, Instant};

use crate::TimeSync;

/// The client's estimate of the server's world clock: a time sync when one
/// succeeded, else the world time of the latest live event plus the time since it
/// arrived (a lower bound: events arrive after they happen).
#[derive(Debug, Default)]
pub(super) struct WorldClock {
    sync: Option<TimeSync>,
    anchor: Option<(i64, Instant)>,
}

impl WorldClock {
    /// A clock from a time sync, if one succeeded.
    pub(super) fn new(sync: Option<TimeSync>) -> WorldClock {
        WorldClock { sync, anchor: None }
    }

    /// The estimated world time now.
    pub(super) fn now(&self) -> Option<i64> {
        self.at(Instant::now())
    }

    fn at(&self, t: Instant) -> Option<i64> {
        if let Some(s) = &self.sync {
            return Some(s.server_ms_at(t));
        }
        self.anchor.map(|(ms, at)| {
            ms + i64::try_from(t.saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX)
        })
    }

    /// A live event happened at world time `at_ms`.
    pub(super) fn saw(&mut self, at_ms: i64) {
        let now = Instant::now();
        if self.at(now).is_none_or(|est| at_ms > est) {
            self.anchor = Some((at_ms, now));
        }
    }

    /// The local instant when the world clock reads `ms`.
    pub(super) fn instant_of(&self, ms: i64) -> Option<Instant> {
        let now = Instant::now();
        let current = self.at(now)?;
        let ahead = u64::try_from(ms.saturating_sub(current)).unwrap_or(0);
        Some(now + Duration::from_millis(ahead + 1))
    }
}

/// The claimed world time of a key press at `pressed`: the one place input time
/// stamps are made.
pub(super) fn stamp(clock: &WorldClock, pressed: Instant) -> i64 {
    clock.at(pressed).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn world_clock_estimates() {
        let mut c = WorldClock::default();
        assert_eq!(c.now(), None);
        c.saw(1000);
        let now = c.now().unwrap();
        assert!((1000..1100).contains(&now), "{now}");
        // An older event does not move the estimate back.
        c.saw(10);
        assert!(c.now().unwrap() >= 1000);
        let at = c.instant_of(1500).unwrap();
        assert!(at > Instant::now() + Duration::from_millis(300));
        assert_eq!(stamp(&WorldClock::default(), Instant::now()), 0);
    }
}
