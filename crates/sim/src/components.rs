//! The ECS components: one session is one entity carrying the session components; each
//! served world is an entity carrying [`SimWorld`] (its id) and its [`WorldClock`]. All crate-private: other crates read sessions
//! through [`crate::Sessions`] (saves, liveness, unload) and [`crate::inspect`] (the tick
//! inspector). The module path is part of the inspector's component names
//! (`sim::components::Position`): keep the types here.

use std::collections::BTreeMap;

use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use serde::{Deserialize, Serialize};

use domain::narrative::{Frame, Progress, Rng, Value, Vars, Visits};

use crate::protocol::SessionId;

/// Session identity and its event sequence counter.
#[derive(Component, Debug, Serialize)]
pub(crate) struct Session {
    /// Id.
    pub id: SessionId,
    /// Next event sequence number.
    pub next_seq: u64,
}

/// Current position: the top call frame.
#[derive(Component, Debug, Clone, Serialize)]
pub(crate) struct Position {
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
pub(crate) struct CallStack(pub Vec<Frame>);

/// Variables.
#[derive(Component, Debug, Default, Serialize)]
pub(crate) struct Variables(pub Vars);

/// Visit counts.
#[derive(Component, Debug, Default, Serialize)]
pub(crate) struct VisitCounts(pub Visits);

/// An offered choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Offered {
    /// Edge id.
    pub edge: String,
    /// Reveal time.
    pub reveal_at_ms: i64,
}

/// Choices offered at the current node.
#[derive(Component, Debug, Default, Serialize)]
pub(crate) struct PendingChoices(pub Vec<Offered>);

/// Stats, inventory, quests, XP, unlocks.
#[derive(Component, Debug, Default, Serialize)]
pub(crate) struct Progression(pub Progress);

/// The session PRNG.
#[derive(Component, Debug, Default, Serialize)]
pub(crate) struct SessionRng(pub Rng);

/// Edge cooldowns: `scene/edge` -> world time when usable again.
#[derive(Component, Debug, Default, Serialize)]
pub(crate) struct Cooldowns(pub BTreeMap<String, i64>);

/// A round's phase (the reflex game's, and any registered game's that plays rounds).
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

/// A running mini-game played in rounds (what a save keeps of it: round and hits).
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
pub(crate) struct ActiveMiniGame(pub Option<MiniGameRun>);

/// What the session waits for.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub(crate) enum Phase {
    /// Just spawned.
    #[default]
    Starting,
    /// Waiting for a choice.
    Choosing,
    /// Inside a mini-game.
    MiniGame,
    /// A `steps` playback waits for the player's `continue`.
    Playing,
    /// Ended (despawned at the end of the tick).
    Ended,
}

/// All session components, mutable.
#[derive(QueryData)]
#[query_data(mutable)]
pub(crate) struct SessionQuery {
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
    /// The current node's media pick and step.
    pub playing: &'static mut Playing,
}

/// The current node's media state: the index of the media picked on entry (into the
/// node's `media` list) and the step a `steps` playback stands at.
#[derive(Component, Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Playing {
    /// Media index.
    pub media: u32,
    /// Step (the number of steps once all have played).
    pub step: u32,
}

/// World time and time controls, as the world entity carries them (read a copy with
/// [`crate::Sessions::clock`] or [`crate::clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Clock {
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
    /// A single step asked for (by [`crate::WorldControl::Step`]): the next tick
    /// advances this world's time even while paused or turn-based.
    pub step_pending: bool,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            now_ms: 0,
            tick: 0,
            scale_permille: 1000,
            paused: false,
            turn_based: false,
            step_pending: false,
        }
    }
}

/// A world's clock component, on its world entity (serialised as its [`Clock`]).
#[derive(Component, Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct WorldClock(pub Clock);

impl WorldClock {
    /// Moves world time on by one tick of `tick_ms` at the clock's scale.
    pub(crate) fn advance_one_tick(&mut self, tick_ms: i64) {
        let dt = tick_ms.saturating_mul(i64::from(self.0.scale_permille)) / 1000;
        self.0.now_ms = self.0.now_ms.saturating_add(dt);
    }
}

impl std::ops::Deref for WorldClock {
    type Target = Clock;
    fn deref(&self) -> &Clock {
        &self.0
    }
}

impl std::ops::DerefMut for WorldClock {
    fn deref_mut(&mut self) -> &mut Clock {
        &mut self.0
    }
}

/// Marks a world entity: the world's id and title (`[worlds.<id>]`).
#[derive(Component, Debug, Default, Serialize)]
pub(crate) struct SimWorld {
    /// World id.
    pub id: String,
    /// Title.
    pub title: Option<String>,
}
