//! Effects: state changes attached to action nodes and edges.

use serde::{Deserialize, Serialize};

use super::expr::ExprText;
use super::state::QuestStatus;

/// A value in an effect: a TOML literal, or a string holding an expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ValueSrc {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// An expression (string literals are written quoted: `"'hello'"`).
    Expr(ExprText),
}

/// An effect, written as `{ op = "...", ... }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Effect {
    /// `var = value`.
    Set {
        /// Variable.
        var: String,
        /// New value.
        value: ValueSrc,
    },
    /// `var += by` (int variables).
    Inc {
        /// Variable.
        var: String,
        /// Amount (default 1).
        #[serde(default = "one")]
        by: i64,
    },
    /// `var -= by` (int variables).
    Dec {
        /// Variable.
        var: String,
        /// Amount (default 1).
        #[serde(default = "one")]
        by: i64,
    },
    /// Appends to a list variable.
    Push {
        /// Variable.
        var: String,
        /// Element.
        value: ValueSrc,
    },
    /// Sets a bool variable (default `true`).
    Flag {
        /// Variable.
        var: String,
        /// Value.
        #[serde(default = "yes")]
        value: bool,
    },
    /// Adds to a stat axis, clamped to its definition.
    Stat {
        /// Stat id.
        stat: String,
        /// Entity (default `player`).
        #[serde(default = "player")]
        entity: String,
        /// Axis (default `value`).
        #[serde(default = "value_axis")]
        axis: String,
        /// Delta.
        delta: i64,
    },
    /// Adds to a relationship axis (the world's `relationship_stat`), clamped.
    Rel {
        /// NPC entity.
        npc: String,
        /// Axis (affinity, trust, chemistry, tension, ...).
        axis: String,
        /// Delta.
        delta: i64,
    },
    /// Gives items (capped by the item's `max`).
    Give {
        /// Item id.
        item: String,
        /// Count (default 1).
        #[serde(default = "one_u")]
        count: u32,
    },
    /// Takes items (never below zero).
    Take {
        /// Item id.
        item: String,
        /// Count (default 1).
        #[serde(default = "one_u")]
        count: u32,
    },
    /// Sets a quest status.
    Quest {
        /// Quest id.
        quest: String,
        /// New status.
        status: QuestStatus,
    },
    /// Advances an objective (activates an inactive quest; completes the quest when all
    /// required objectives are done).
    Objective {
        /// Quest id.
        quest: String,
        /// Objective id.
        objective: String,
        /// Progress to add (default 1).
        #[serde(default = "one_u")]
        progress: u32,
    },
    /// Grants XP (level-ups follow the XP curve).
    Xp {
        /// Amount.
        amount: i64,
    },
    /// Unlocks a scene.
    Unlock {
        /// Scene id.
        scene: String,
    },
}

fn one() -> i64 {
    1
}
fn one_u() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn player() -> String {
    "player".into()
}
fn value_axis() -> String {
    "value".into()
}
