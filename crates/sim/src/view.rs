//! A live session's state as a client renders it ([`SessionView`]): where it stands and
//! what that node shows, the choices offered, the open reflex round and the player's
//! progression. Read through [`crate::Sessions::view`] after a tick, so it reflects
//! exactly the events emitted up to then (the game sends it as the snapshot of a join).
//! The data only: `present.rs` builds it from a session's components.

use domain::narrative::{Line, QuestStatus, Value};

use crate::protocol::{Choice, Media, Presentation};

/// A live session as a client renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// The node the session stands at, as its `NodeEntered` presented it (with media
    /// generated since then); `None` while the session is starting.
    pub position: Option<ViewPosition>,
    /// The choices offered now, as `ChoicesOffered` gave them (empty when none).
    pub choices: Vec<Choice>,
    /// The open reflex round, as its `MiniGamePrompt` announced it.
    pub minigame: Option<OpenRound>,
    /// The player's progression.
    pub progression: ViewProgression,
}

/// The current node and what it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewPosition {
    /// Scene.
    pub scene: String,
    /// Node.
    pub node: String,
    /// Node kind name.
    pub kind: &'static str,
    /// Media shown (an asset, or the spec still being generated).
    pub media: Option<Media>,
    /// Dialogue lines.
    pub lines: Vec<Line>,
    /// Choice prompt.
    pub prompt: Option<String>,
    /// How the media plays and its hotspots, as `NodeEntered` presented it (with the
    /// current step).
    pub presentation: Presentation,
}

/// An open reflex round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRound {
    /// Game.
    pub game: String,
    /// Round (1-based).
    pub round: u32,
    /// Rounds in total.
    pub rounds: u32,
    /// Nonce to echo.
    pub nonce: u64,
    /// Window start (world ms).
    pub opens_at_ms: i64,
    /// Window end (world ms).
    pub closes_at_ms: i64,
}

/// A player's progression as a client shows it; each list sorted by its key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewProgression {
    /// Stat axis values that differ from their default: `(stat, entity, axis, value)`.
    pub stats: Vec<(String, String, String, i64)>,
    /// Items held (count above zero).
    pub items: Vec<(String, u32)>,
    /// Quests shown in a quest log (neither inactive nor hidden), with their objectives.
    pub quests: Vec<ViewQuest>,
    /// Every declared world variable with its current value (its initial value when
    /// never set, or set back to it).
    pub vars: Vec<(String, Value)>,
    /// XP total.
    pub xp: i64,
    /// Level.
    pub level: u32,
    /// Scenes unlocked by effects.
    pub unlocked: Vec<String>,
}

/// A quest in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewQuest {
    /// Quest id.
    pub quest: String,
    /// Status.
    pub status: QuestStatus,
    /// `(objective, progress, target)` in the quest's order.
    pub objectives: Vec<(String, u32, u32)>,
}
