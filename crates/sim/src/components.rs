//! ECS components (one session = one entity) and resources.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use serde::{Deserialize, Serialize};

use domain::narrative::state::Change;
use domain::narrative::{Content, Frame, Progress, Rng, Value, Vars, Visits};

use crate::protocol::{Event, SessionId, SimCommand, SimEvent, WorldControl};

/// Session identity and its event sequence counter.
#[derive(Component, Debug, Serialize)]
pub struct Session {
    /// Id.
    pub id: SessionId,
    /// Next event sequence number.
    pub next_seq: u64,
}

/// Current position: the top call frame.
#[derive(Component, Debug, Clone, Serialize)]
pub struct Position {
    /// Scene.
    pub scene: String,
    /// Node.
    pub node: String,
    /// World time the node was entered.
    pub entered_at_ms: i64,
    /// Arguments of the current call frame.
    pub args: BTreeMap<String, Value>,
}

/// Callers' frames (bottom first); each frame's node is its call node.
#[derive(Component, Debug, Default, Serialize)]
pub struct CallStack(pub Vec<Frame>);

/// Variables.
#[derive(Component, Debug, Default, Serialize)]
pub struct Variables(pub Vars);

/// Visit counts.
#[derive(Component, Debug, Default, Serialize)]
pub struct VisitCounts(pub Visits);

/// An offered choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offered {
    /// Edge id.
    pub edge: String,
    /// Reveal time.
    pub reveal_at_ms: i64,
}

/// Choices offered at the current node.
#[derive(Component, Debug, Default, Serialize)]
pub struct PendingChoices(pub Vec<Offered>);

/// Stats, inventory, quests, XP, unlocks.
#[derive(Component, Debug, Default, Serialize)]
pub struct Progression(pub Progress);

/// The session PRNG.
#[derive(Component, Debug, Default, Serialize)]
pub struct SessionRng(pub Rng);

/// Edge cooldowns: `scene/edge` -> world time when usable again.
#[derive(Component, Debug, Default, Serialize)]
pub struct Cooldowns(pub BTreeMap<String, i64>);

/// Reflex round phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoundPhase {
    /// Waiting for the (randomly delayed) round start.
    Waiting,
    /// Open for input.
    Open {
        /// Nonce.
        nonce: u64,
        /// Window start.
        opens_at_ms: i64,
        /// Window end.
        closes_at_ms: i64,
    },
}

/// A running reflex mini-game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MiniGameRun {
    /// Game id.
    pub game: String,
    /// Current round (1-based).
    pub round: u32,
    /// Rounds.
    pub rounds: u32,
    /// Hits so far.
    pub hits: u32,
    /// Hits needed.
    pub need: u32,
    /// Window.
    pub window_ms: u64,
    /// Phase.
    pub phase: RoundPhase,
    /// Token of the pending timer.
    pub timer: u64,
}

/// The running mini-game, if any.
#[derive(Component, Debug, Default, Serialize)]
pub struct ActiveMiniGame(pub Option<MiniGameRun>);

/// What the session waits for.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Phase {
    /// Just spawned.
    #[default]
    Starting,
    /// Waiting for a choice.
    Choosing,
    /// Inside a mini-game.
    MiniGame,
    /// Ended (despawned at the end of the tick).
    Ended,
}

/// All session components, mutable.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct SessionQuery {
    /// Identity.
    pub session: &'static mut Session,
    /// Position.
    pub pos: &'static mut Position,
    /// Call stack.
    pub stack: &'static mut CallStack,
    /// Variables.
    pub vars: &'static mut Variables,
    /// Visits.
    pub visits: &'static mut VisitCounts,
    /// Offered choices.
    pub choices: &'static mut PendingChoices,
    /// Progression.
    pub progress: &'static mut Progression,
    /// PRNG.
    pub rng: &'static mut SessionRng,
    /// Cooldowns.
    pub cooldowns: &'static mut Cooldowns,
    /// Mini-game.
    pub minigame: &'static mut ActiveMiniGame,
    /// Phase.
    pub phase: &'static mut Phase,
}

/// World clock and time controls, on the world entity.
#[derive(Component, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldClock {
    /// World time (ms).
    pub now_ms: i64,
    /// Ticks run.
    pub tick: u64,
    /// Time scale in permille.
    pub scale_permille: u32,
    /// Paused.
    pub paused: bool,
    /// Turn-based mode.
    pub turn_based: bool,
}

impl Default for WorldClock {
    fn default() -> Self {
        Self {
            now_ms: 0,
            tick: 0,
            scale_permille: 1000,
            paused: false,
            turn_based: false,
        }
    }
}

/// Marks the world entity.
#[derive(Component, Debug, Default, Serialize)]
pub struct SimWorld;

/// The loaded content. Replace it through [`Inbox::reload`] so live sessions are checked.
#[derive(Resource, Clone, Debug)]
pub struct SimContent(pub Arc<Content>);

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

/// Inbound queue, filled by the server before a tick.
#[derive(Resource, Default, Debug)]
pub struct Inbox {
    /// Session commands, processed in order.
    pub commands: Vec<SimCommand>,
    /// World controls, applied before the clock advances.
    pub world: Vec<WorldControl>,
    /// New content to swap in (already validated by the `content` crate).
    pub reload: Option<Arc<Content>>,
    /// Generated media that became ready (from the generation pipeline).
    pub media: Vec<crate::protocol::MediaReady>,
}

/// Assets generated for media specs: (operation, prompt, params) -> asset. Nodes with an
/// equal spec present the asset instead of the spec.
#[derive(Resource, Default, Debug)]
pub struct MediaLibrary(pub std::collections::HashMap<(String, String, String), String>);

impl MediaLibrary {
    /// The asset for a spec, if generated.
    pub fn get(&self, operation: &str, prompt: &str, params: &str) -> Option<&String> {
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
}

impl Outbox {
    /// Takes all events, keeping the buffer's capacity for the next tick.
    pub fn drain(&mut self) -> std::vec::Drain<'_, SimEvent> {
        self.events.drain(..)
    }
}

/// Session id -> entity.
#[derive(Resource, Default, Debug)]
pub struct SessionIndex(pub domain::narrative::content::FxHashMap<SessionId, Entity>);

/// Deadline queue (mini-game round openings and timeouts). Only due entries are touched.
#[derive(Resource, Default, Debug)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(i64, u64, Entity)>>,
    next: u64,
}

impl Timers {
    /// Schedules a timer and returns its token.
    pub fn schedule(&mut self, due_ms: i64, entity: Entity) -> u64 {
        self.next += 1;
        self.heap.push(Reverse((due_ms, self.next, entity)));
        self.next
    }

    /// Pops the next due timer.
    pub fn pop_due(&mut self, now_ms: i64) -> Option<(u64, Entity)> {
        match self.heap.peek() {
            Some(Reverse((due, _, _))) if *due <= now_ms => {
                self.heap.pop().map(|Reverse((_, t, e))| (t, e))
            }
            _ => None,
        }
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// No pending timers.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
    Timer(u64),
}

/// Work routed by the input systems for the narrative systems.
#[derive(Resource, Default, Debug)]
pub(crate) struct Work(pub Vec<(Entity, SessionId, Job)>);

/// Per-tick staging between the system sets.
#[derive(Resource, Default, Debug)]
pub struct Staging {
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
