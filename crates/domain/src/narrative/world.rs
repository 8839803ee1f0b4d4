//! The world config (`scenes/world.toml`): variables, stats, XP curve, items, quests,
//! unlockable scenes, and the worlds served (each with its own clock and controls).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::expr::{Type, Value};

/// Progression and state definitions shared by all scenes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorldConfig {
    /// Scene started when a session does not name one.
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub start_scene: String,
    /// Entities that carry stats (e.g. `player`, NPC ids).
    #[serde(default)]
    pub entities: Vec<String>,
    /// Declared variables (flags are `bool` variables).
    #[serde(default)]
    pub variables: BTreeMap<String, VarDef>,
    /// Stat definitions.
    #[serde(default)]
    pub stats: BTreeMap<String, StatDef>,
    /// The stat used by `rel.NPC.AXIS` and `rel` effects.
    #[serde(default = "default_rel")]
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub relationship_stat: String,
    /// XP curve.
    #[serde(default)]
    pub xp: XpCurve,
    /// Items.
    #[serde(default)]
    pub items: BTreeMap<String, ItemDef>,
    /// Quests.
    #[serde(default)]
    pub quests: BTreeMap<String, QuestDef>,
    /// Scenes that start locked and must be unlocked by an `unlock` effect.
    #[serde(default)]
    pub locked_scenes: Vec<String>,
    /// The worlds served, by id (`[worlds.<id>]`). The default world ([`DEFAULT_WORLD`])
    /// is always served, declared or not; a scene names its world with `world = "id"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub worlds: BTreeMap<String, WorldDef>,
}

/// The id of the world every scene belongs to unless it names another.
pub const DEFAULT_WORLD: &str = "default";

/// Smallest and largest time scale a world may run at (world ms per real ms).
pub const TIME_SCALE_RANGE: (f64, f64) = (0.001, 1000.0);

/// One world: its own clock (scale, turn-based, paused at start) and its start scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorldDef {
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Scene started when a session in this world names none (a scene of this world).
    /// The default world falls back to the top-level `start_scene`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub start_scene: Option<String>,
    /// World ms per real ms (1.0: real time), from 0.001 to 1000.
    #[serde(default = "unit_scale")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.001, max = 1000.0)))]
    pub time_scale: f64,
    /// Turn-based: world time moves only on a tick with a command (or a step).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub turn_based: bool,
    /// Starts paused (an admin resumes it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

impl Default for WorldDef {
    fn default() -> Self {
        Self {
            title: None,
            start_scene: None,
            time_scale: 1.0,
            turn_based: false,
            paused: false,
        }
    }
}

fn unit_scale() -> f64 {
    1.0
}

/// A time scale as the clock keeps it (permille), or why it is out of range. The one
/// rule for the world file and the admin operations.
pub fn scale_permille(scale: f64) -> Result<u32, String> {
    let (lo, hi) = TIME_SCALE_RANGE;
    if !scale.is_finite() || scale < lo || scale > hi {
        return Err(format!("time_scale {scale} is outside {lo}..={hi}"));
    }
    // In range, so the product fits a u32 (at most 1,000,000).
    Ok((scale * 1000.0).round() as u32)
}

/// The world a scene belongs to.
pub fn scene_world(scene: &super::Scene) -> &str {
    scene.world.as_deref().unwrap_or(DEFAULT_WORLD)
}

impl WorldConfig {
    /// Every served world's id: the default world first, then the declared ones by id.
    pub fn world_ids(&self) -> Vec<&str> {
        let mut ids = vec![DEFAULT_WORLD];
        ids.extend(
            self.worlds
                .keys()
                .map(String::as_str)
                .filter(|id| *id != DEFAULT_WORLD),
        );
        ids
    }

    /// Whether `id` is a served world.
    pub fn has_world(&self, id: &str) -> bool {
        id == DEFAULT_WORLD || self.worlds.contains_key(id)
    }

    /// A served world's definition (the default world's when it is not declared).
    pub fn world_def(&self, id: &str) -> Option<WorldDef> {
        match self.worlds.get(id) {
            Some(def) => Some(def.clone()),
            None if id == DEFAULT_WORLD => Some(WorldDef::default()),
            None => None,
        }
    }

    /// A world's start scene: its own, or for the default world the top-level one.
    pub fn world_start_scene(&self, id: &str) -> Option<&str> {
        match self.worlds.get(id).and_then(|w| w.start_scene.as_deref()) {
            Some(s) => Some(s),
            None if id == DEFAULT_WORLD => Some(&self.start_scene),
            None => None,
        }
    }
}

fn default_rel() -> String {
    "relationship".into()
}

/// A declared variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VarDef {
    /// Type.
    #[serde(rename = "type")]
    pub ty: Type,
    /// Initial value (zero value of the type when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

impl VarDef {
    /// The initial value.
    pub fn initial(&self) -> Value {
        self.default
            .clone()
            .unwrap_or_else(|| Value::zero(&self.ty))
    }
}

/// A stat: named axes per entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StatDef {
    /// Entities carrying this stat (empty: all world entities).
    #[serde(default)]
    pub entities: Vec<String>,
    /// Axes.
    pub axes: BTreeMap<String, AxisDef>,
}

impl StatDef {
    /// Whether `entity` carries this stat.
    pub fn has_entity(&self, world: &WorldConfig, entity: &str) -> bool {
        if self.entities.is_empty() {
            world.entities.iter().any(|e| e == entity)
        } else {
            self.entities.iter().any(|e| e == entity)
        }
    }
}

/// One stat axis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AxisDef {
    /// Minimum (deltas are clamped).
    pub min: i64,
    /// Maximum (deltas are clamped).
    pub max: i64,
    /// Initial value.
    #[serde(default)]
    pub default: i64,
    /// Named tiers, each starting at `min` (the highest tier whose min is reached applies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// Increasing thresholds for levels 2, 3, ... of this axis (`level.STAT.ENTITY.AXIS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<i64>,
}

impl AxisDef {
    /// Tier name for a value (empty string below the first tier).
    pub fn tier(&self, value: i64) -> &str {
        self.tiers
            .iter()
            .filter(|t| t.min <= value)
            .max_by_key(|t| t.min)
            .map_or("", |t| t.name.as_str())
    }
    /// Level for a value: 1 plus the number of `levels` thresholds reached.
    pub fn level(&self, value: i64) -> u32 {
        1 + self.levels.iter().filter(|t| value >= **t).count() as u32
    }
    /// Clamps a value into `min..=max`.
    pub fn clamp(&self, v: i64) -> i64 {
        v.clamp(self.min, self.max.max(self.min))
    }
}

/// A named tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Tier name.
    pub name: String,
    /// Lower bound (inclusive).
    pub min: i64,
}

/// XP curve: level 1 at 0 XP, level `n + 2` when `xp >= thresholds[n]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct XpCurve {
    /// Increasing XP thresholds for levels 2, 3, ...
    #[serde(default)]
    pub thresholds: Vec<i64>,
}

impl XpCurve {
    /// Level for an XP total.
    pub fn level(&self, xp: i64) -> u32 {
        1 + self.thresholds.iter().filter(|t| xp >= **t).count() as u32
    }
}

/// An item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ItemDef {
    /// Display name.
    pub name: String,
    /// Maximum stack (unbounded when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// A quest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct QuestDef {
    /// Title.
    pub title: String,
    /// Objectives.
    #[serde(default)]
    pub objectives: Vec<ObjectiveDef>,
}

/// A quest objective.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ObjectiveDef {
    /// Objective id.
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub id: String,
    /// Description.
    pub description: String,
    /// Progress needed (default 1).
    #[serde(default = "one")]
    pub target: u32,
    /// Optional objectives do not block quest completion.
    #[serde(default)]
    pub optional: bool,
}

fn one() -> u32 {
    1
}
