//! Effects: state changes attached to action nodes and edges.

use serde::{Deserialize, Serialize};

use super::expr::ExprText;
use super::quest::QuestStatus;

/// A value in an effect: a TOML literal, or a string holding an expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub enum Effect {
    /// `var = value`.
    Set {
        /// Variable.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        var: String,
        /// New value.
        value: ValueSrc,
    },
    /// `var += by` (int variables).
    Inc {
        /// Variable.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        var: String,
        /// Amount (default 1).
        #[serde(default = "one")]
        by: i64,
    },
    /// `var -= by` (int variables).
    Dec {
        /// Variable.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        var: String,
        /// Amount (default 1).
        #[serde(default = "one")]
        by: i64,
    },
    /// Appends to a list variable.
    Push {
        /// Variable.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        var: String,
        /// Element.
        value: ValueSrc,
    },
    /// Sets a bool variable (default `true`).
    Flag {
        /// Variable.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        var: String,
        /// Value.
        #[serde(default = "yes")]
        value: bool,
    },
    /// Adds to a stat axis, clamped to its definition.
    Stat {
        /// Stat id.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        stat: String,
        /// Entity (default `player`).
        #[serde(default = "player")]
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        entity: String,
        /// Axis (default `value`).
        #[serde(default = "value_axis")]
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        axis: String,
        /// Delta.
        delta: i64,
    },
    /// Adds to a relationship axis (the world's `relationship_stat`), clamped.
    Rel {
        /// NPC entity.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        npc: String,
        /// Axis (affinity, trust, chemistry, tension, ...).
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        axis: String,
        /// Delta.
        delta: i64,
    },
    /// Gives items (capped by the item's `max`).
    Give {
        /// Item id.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        item: String,
        /// Count (default 1).
        #[serde(default = "one_u")]
        count: u32,
    },
    /// Takes items (never below zero).
    Take {
        /// Item id.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        item: String,
        /// Count (default 1).
        #[serde(default = "one_u")]
        count: u32,
    },
    /// Sets a quest status.
    Quest {
        /// Quest id.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        quest: String,
        /// New status.
        status: QuestStatus,
    },
    /// Advances an objective (activates an inactive quest; completes the quest when all
    /// required objectives are done).
    Objective {
        /// Quest id.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        quest: String,
        /// Objective id.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
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
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
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
