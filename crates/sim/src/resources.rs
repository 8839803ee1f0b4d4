//! The ECS resources: the inbound and outbound queues the server fills and drains, the
//! tunables, the loaded content, the session index, the timer heap and the per-tick
//! staging between the system sets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bevy_ecs::prelude::*;

use domain::narrative::Content;
use domain::narrative::state::Change;

use crate::protocol::{Event, SessionId, SimCommand, SimEvent, WorldControl};
use crate::view::ViewProgression;

/// The loaded content. Replace it through [`Inbox::reload`] so live sessions are checked.
#[derive(Resource, Clone, Debug)]
pub(crate) struct SimContent(pub Arc<Content>);

/// Tunables.
#[derive(Resource, Clone, Debug)]
pub struct SimConfig {
    /// World time added per fixed tick (before scaling).
    pub tick_ms: i64,
    /// Random delay before a reflex round opens (inclusive range, ms).
    pub reflex_delay_ms: (i64, i64),
    /// How long after a window closes the server still accepts an input (network slack).
    pub input_grace_ms: i64,
    /// Maximum accepted gap between an input's claimed time and its arrival.
    pub max_input_latency_ms: i64,
    /// Guard against content loops: automatic steps per command.
    pub max_auto_steps: u32,
    /// World time (ms) the clock starts from. A server sets it to the latest world time
    /// it has stored, so world time never goes backwards across restarts.
    pub start_ms: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            tick_ms: 50,
            reflex_delay_ms: (500, 1500),
            input_grace_ms: 100,
            max_input_latency_ms: 250,
            max_auto_steps: 1000,
            start_ms: 0,
        }
    }
}

/// What kind of step is running: a fixed tick (`FixedUpdate`: clocks advance, timers
/// fire, content and media come in) or a command step between two ticks
/// ([`crate::CommandUpdate`]: only commands, on the clock of the last tick).
#[derive(Resource, Default, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    #[default]
    Tick,
    Commands,
}

impl StepKind {
    /// How far ahead of the session's world time a client's clock may be in this kind
    /// of step (see `Cx::ahead_ms`).
    pub fn ahead_ms(self, tick_ms: i64) -> i64 {
        match self {
            StepKind::Tick => tick_ms,
            StepKind::Commands => tick_ms.saturating_mul(2),
        }
    }
}

/// Inbound queue, filled by the server before a tick.
#[derive(Resource, Default, Debug)]
pub struct Inbox {
    /// Session commands, processed in order.
    pub commands: Vec<SimCommand>,
    /// World controls of the default world, applied before the clocks advance.
    pub world: Vec<WorldControl>,
    /// World controls of a named world (`(world id, control)`), applied after `world`;
    /// one for a world that is not served is dropped.
    pub worlds: Vec<(String, WorldControl)>,
    /// New content to swap in (already validated by the `content` crate).
    pub reload: Option<Arc<Content>>,
    /// Generated media that became ready (from the generation pipeline).
    pub media: Vec<crate::protocol::MediaReady>,
    /// How far the generation of pending media has come (from the generation pipeline).
    pub media_progress: Vec<crate::protocol::MediaProgress>,
}

/// Assets generated for media specs: (operation, prompt, params) -> asset. Nodes with an
/// equal spec present the asset instead of the spec.
#[derive(Resource, Default, Debug)]
pub(crate) struct MediaLibrary(pub std::collections::HashMap<(String, String, String), String>);

impl MediaLibrary {
    /// The asset for a spec, if generated.
    pub(crate) fn get(&self, operation: &str, prompt: &str, params: &str) -> Option<&String> {
        if self.0.is_empty() {
            return None;
        }
        self.0
            .get(&(operation.to_owned(), prompt.to_owned(), params.to_owned()))
    }
}

/// Outbound events, drained by the server after a tick.
#[derive(Resource, Default, Debug)]
pub struct Outbox {
    /// Events in emission order.
    pub events: Vec<SimEvent>,
    /// The final progression of each session that ended in the last tick (it is gone
    /// from the simulation after that tick), in end order: what its events leave the
    /// player with. Replaced by every tick's output; read it after the tick.
    pub ended: Vec<(SessionId, ViewProgression)>,
}

impl Outbox {
    /// Takes all events, keeping the buffer's capacity for the next tick.
    pub fn drain(&mut self) -> std::vec::Drain<'_, SimEvent> {
        self.events.drain(..)
    }
}

/// Session id -> entity, for the live sessions. Read its size with [`SessionIndex::len`].
#[derive(Resource, Default, Debug)]
pub struct SessionIndex(pub(crate) domain::narrative::content::FxHashMap<SessionId, Entity>);

impl SessionIndex {
    /// Live sessions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No live session.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a timer does when due. A closed set: every kind is handled by an exhaustive match
/// (each game's `MiniGame::on_timer`), so a new kind cannot be dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// A reflex round's random delay is over: open its input window.
    RoundOpens,
    /// A reflex round's window (plus grace) is over without an input: a miss.
    WindowCloses,
}

/// One world's deadlines, due in its world time.
type Deadlines = BinaryHeap<Reverse<(i64, u64, Entity, Timer)>>;

/// Deadline queues (mini-game round openings and timeouts), one per world, each due in
/// its own world's time (a paused world's timers wait). Only due entries are touched.
#[derive(Resource, Default, Debug)]
pub struct Timers {
    heaps: domain::narrative::content::FxHashMap<Entity, Deadlines>,
    next: u64,
}

impl Timers {
    /// Schedules a timer in `world` (its entity) and returns its token.
    pub(crate) fn schedule(
        &mut self,
        world: Entity,
        due_ms: i64,
        entity: Entity,
        timer: Timer,
    ) -> u64 {
        self.next += 1;
        self.heaps
            .entry(world)
            .or_default()
            .push(Reverse((due_ms, self.next, entity, timer)));
        self.next
    }

    /// Pops `world`'s next due timer.
    pub(crate) fn pop_due(&mut self, world: Entity, now_ms: i64) -> Option<(u64, Entity, Timer)> {
        let heap = self.heaps.get_mut(&world)?;
        match heap.peek() {
            Some(Reverse((due, _, _, _))) if *due <= now_ms => {
                heap.pop().map(|Reverse((_, t, e, k))| (t, e, k))
            }
            _ => None,
        }
    }

    /// Drops a world's timers (the world is no longer served).
    pub(crate) fn drop_world(&mut self, world: Entity) {
        self.heaps.remove(&world);
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.heaps.values().map(BinaryHeap::len).sum()
    }

    /// No pending timers.
    pub fn is_empty(&self) -> bool {
        self.heaps.values().all(BinaryHeap::is_empty)
    }
}

/// A unit of work for one session in this tick.
#[derive(Debug)]
pub(crate) enum Job {
    Command(crate::protocol::Command),
    Begin,
    Resumed {
        notes: Vec<String>,
        wait: domain::narrative::SavedWait,
    },
    Timer {
        token: u64,
        timer: Timer,
    },
}

/// Work routed by the input systems for the narrative systems.
#[derive(Resource, Default, Debug)]
pub(crate) struct Work(pub Vec<(Entity, SessionId, Job)>);

/// Per-tick staging between the system sets.
#[derive(Resource, Default, Debug)]
pub(crate) struct Staging {
    /// Narrative events in order.
    pub events: Vec<(SessionId, Event)>,
    /// State changes in order.
    pub journal: Vec<(SessionId, Change)>,
    /// Sessions to despawn after output.
    pub ended: Vec<(SessionId, Entity)>,
    /// Indexes into `events` of this tick's `state_delta` events (read by progression).
    pub deltas: Vec<usize>,
    /// Reused buffer for effect application.
    pub(crate) scratch: Vec<domain::narrative::Change>,
}
