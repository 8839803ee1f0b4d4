//! Per-session narrative state, expression environments and effect application.
//!
//! State is stored sparsely: only values that were changed are kept; everything else reads
//! its default from the [`WorldConfig`]. An idle session that has done little costs little.
//! [`refs`] resolves state references in expressions (values and types).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::effect::{Effect, ValueSrc};
use super::expr::{self, Env, EvalError, Expr, Path, Type, TypeEnv, Value};
pub use super::quest::QuestStatus;
use super::rng::Rng;
use super::scene::Scene;
use super::world::{AxisDef, WorldConfig};

mod refs;

pub use refs::SceneTypes;

/// Variable values that differ from their declared defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Vars(pub BTreeMap<String, Value>);

/// Visit counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visits {
    /// Scene entries by scene id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scenes: BTreeMap<String, u32>,
    /// Node entries by scene id, then node id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, BTreeMap<String, u32>>,
}

impl Visits {
    /// Records a node entry (and the scene entry when `scene_entry`).
    pub fn enter(&mut self, scene: &str, node: &str, scene_entry: bool) {
        if scene_entry {
            match self.scenes.get_mut(scene) {
                Some(n) => *n += 1,
                None => {
                    self.scenes.insert(scene.to_string(), 1);
                }
            }
        }
        let nodes = match self.nodes.get_mut(scene) {
            Some(m) => m,
            None => self.nodes.entry(scene.to_string()).or_default(),
        };
        match nodes.get_mut(node) {
            Some(n) => *n += 1,
            None => {
                nodes.insert(node.to_string(), 1);
            }
        }
    }

    /// Entries of a node.
    pub fn node(&self, scene: &str, node: &str) -> u32 {
        self.nodes
            .get(scene)
            .and_then(|m| m.get(node))
            .copied()
            .unwrap_or(0)
    }
}

/// A quest's runtime state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestState {
    /// Status.
    pub status: QuestStatus,
    /// Objective progress by objective id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objectives: BTreeMap<String, u32>,
}

/// Stats, inventory, quests, XP and unlocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Stat axis values by `stat.entity.axis` (changed ones only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, i64>,
    /// Item counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<String, u32>,
    /// Quests touched so far.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quests: BTreeMap<String, QuestState>,
    /// XP.
    pub xp: i64,
    /// Level.
    pub level: u32,
    /// Scenes unlocked by effects.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unlocked: BTreeSet<String>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            stats: BTreeMap::new(),
            items: BTreeMap::new(),
            quests: BTreeMap::new(),
            xp: 0,
            level: 1,
            unlocked: BTreeSet::new(),
        }
    }
}

/// One recorded state change (the journal the sim turns into delta/quest/level events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// Variable set.
    Var {
        /// Name.
        name: String,
        /// New value.
        value: Value,
    },
    /// Stat axis changed.
    Stat {
        /// Stat.
        stat: String,
        /// Entity.
        entity: String,
        /// Axis.
        axis: String,
        /// New value.
        value: i64,
    },
    /// Item count changed.
    Item {
        /// Item.
        item: String,
        /// New count.
        count: u32,
    },
    /// Quest status changed.
    Quest {
        /// Quest.
        quest: String,
        /// New status.
        status: QuestStatus,
    },
    /// Objective progress changed.
    Objective {
        /// Quest.
        quest: String,
        /// Objective.
        objective: String,
        /// Progress.
        progress: u32,
        /// Target.
        target: u32,
    },
    /// XP changed.
    Xp {
        /// New total.
        xp: i64,
    },
    /// Level changed.
    Level {
        /// New level.
        level: u32,
    },
    /// Scene unlocked.
    Unlocked {
        /// Scene.
        scene: String,
    },
}

/// Why an effect could not be applied (content is validated, so these are rare).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EffectError {
    /// An expression failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A reference to something not defined by the world config.
    #[error("{0}")]
    Undefined(String),
}

/// Evaluation and effect context for one session at one point in time.
pub struct Ctx<'a> {
    /// World definitions.
    pub world: &'a WorldConfig,
    /// Arguments of the current call frame.
    pub args: &'a BTreeMap<String, Value>,
    /// Variables.
    pub vars: &'a mut Vars,
    /// Visit counts.
    pub visits: &'a Visits,
    /// Progression.
    pub progress: &'a mut Progress,
    /// World time (ms).
    pub time_ms: i64,
    /// Session PRNG.
    pub rng: &'a mut Rng,
}

/// Reads a variable (declared default when unset).
pub fn var_value(world: &WorldConfig, vars: &Vars, name: &str) -> Option<Value> {
    vars.0
        .get(name)
        .cloned()
        .or_else(|| world.variables.get(name).map(|d| d.initial()))
}

fn axis<'w>(
    world: &'w WorldConfig,
    stat: &str,
    entity: &str,
    axis: &str,
) -> Result<&'w AxisDef, String> {
    let def = world
        .stats
        .get(stat)
        .ok_or_else(|| format!("undefined stat '{stat}'"))?;
    if !def.has_entity(world, entity) {
        return Err(format!("stat '{stat}' has no entity '{entity}'"));
    }
    def.axes
        .get(axis)
        .ok_or_else(|| format!("stat '{stat}' has no axis '{axis}'"))
}

/// Calls `f` with the `stat.entity.axis` key, built on the stack when it fits (no allocation).
fn with_stat_key<R>(stat: &str, entity: &str, ax: &str, f: impl FnOnce(&str) -> R) -> R {
    let len = stat.len() + entity.len() + ax.len() + 2;
    let mut buf = [0u8; 128];
    if len <= buf.len() {
        let mut at = 0;
        for (i, part) in [stat, entity, ax].iter().enumerate() {
            if i > 0 {
                buf[at] = b'.';
                at += 1;
            }
            buf[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        if let Ok(key) = std::str::from_utf8(&buf[..at]) {
            return f(key);
        }
    }
    f(&format!("{stat}.{entity}.{ax}"))
}

/// Reads a stat axis (its default when unset).
pub fn stat_value(
    world: &WorldConfig,
    progress: &Progress,
    stat: &str,
    entity: &str,
    ax: &str,
) -> Result<i64, String> {
    let def = axis(world, stat, entity, ax)?;
    Ok(with_stat_key(stat, entity, ax, |k| progress.stats.get(k).copied()).unwrap_or(def.default))
}

impl Ctx<'_> {
    /// Evaluates an expression in this context.
    pub fn eval(&mut self, e: &Expr) -> Result<Value, EvalError> {
        expr::eval(e, self)
    }

    /// Evaluates a condition (must yield a bool).
    pub fn test(&mut self, e: &Expr) -> Result<bool, EvalError> {
        match self.eval(e)? {
            Value::Bool(b) => Ok(b),
            v => Err(EvalError::Type(format!(
                "condition '{e}' yielded {v}, expected bool"
            ))),
        }
    }

    fn value_src(&mut self, v: &ValueSrc) -> Result<Value, EffectError> {
        Ok(match v {
            ValueSrc::Bool(b) => Value::Bool(*b),
            ValueSrc::Int(i) => Value::Int(*i),
            ValueSrc::Expr(t) => match &t.parsed {
                Ok(e) => self.eval(e)?,
                Err(err) => {
                    return Err(EffectError::Undefined(format!(
                        "invalid expression '{}': {err}",
                        t.src
                    )));
                }
            },
        })
    }

    fn set_var(
        &mut self,
        name: &str,
        value: Value,
        out: &mut Vec<Change>,
    ) -> Result<(), EffectError> {
        let def = self
            .world
            .variables
            .get(name)
            .ok_or_else(|| EffectError::Undefined(format!("undefined variable '{name}'")))?;
        if !value.fits(&def.ty) {
            return Err(EffectError::Eval(EvalError::Type(format!(
                "variable '{name}' is {}, cannot store {value}",
                def.ty
            ))));
        }
        if def.initial() == value {
            self.vars.0.remove(name);
        } else if let Some(slot) = self.vars.0.get_mut(name) {
            slot.clone_from(&value);
        } else {
            self.vars.0.insert(name.to_string(), value.clone());
        }
        out.push(Change::Var {
            name: name.to_string(),
            value,
        });
        Ok(())
    }

    fn int_var(&self, name: &str) -> Result<i64, EffectError> {
        match var_value(self.world, self.vars, name) {
            Some(Value::Int(i)) => Ok(i),
            Some(v) => Err(EffectError::Eval(EvalError::Type(format!(
                "variable '{name}' holds {v}, not an int"
            )))),
            None => Err(EffectError::Undefined(format!(
                "undefined variable '{name}'"
            ))),
        }
    }

    fn add_stat(
        &mut self,
        stat: &str,
        entity: &str,
        ax: &str,
        delta: i64,
        out: &mut Vec<Change>,
    ) -> Result<(), EffectError> {
        let def = axis(self.world, stat, entity, ax).map_err(EffectError::Undefined)?;
        let stats = &mut self.progress.stats;
        let (cur, new) = with_stat_key(stat, entity, ax, |key| {
            let cur = stats.get(key).copied().unwrap_or(def.default);
            let new = def.clamp(cur.saturating_add(delta));
            if new == def.default {
                stats.remove(key);
            } else if let Some(slot) = stats.get_mut(key) {
                *slot = new;
            } else {
                stats.insert(key.to_string(), new);
            }
            (cur, new)
        });
        if new != cur {
            out.push(Change::Stat {
                stat: stat.into(),
                entity: entity.into(),
                axis: ax.into(),
                value: new,
            });
        }
        Ok(())
    }

    fn set_items(&mut self, item: &str, count: u32, out: &mut Vec<Change>) {
        let cur = self.progress.items.get(item).copied().unwrap_or(0);
        if count == 0 {
            self.progress.items.remove(item);
        } else {
            self.progress.items.insert(item.to_string(), count);
        }
        if cur != count {
            out.push(Change::Item {
                item: item.to_string(),
                count,
            });
        }
    }

    fn set_quest(&mut self, quest: &str, status: QuestStatus, out: &mut Vec<Change>) {
        let q = self.progress.quests.entry(quest.to_string()).or_default();
        if q.status != status {
            q.status = status;
            out.push(Change::Quest {
                quest: quest.to_string(),
                status,
            });
        }
    }

    /// Applies one effect, appending the resulting changes to `out`.
    pub fn apply(&mut self, effect: &Effect, out: &mut Vec<Change>) -> Result<(), EffectError> {
        match effect {
            Effect::Set { var, value } => {
                let v = self.value_src(value)?;
                self.set_var(var, v, out)
            }
            Effect::Inc { var, by } | Effect::Dec { var, by } => {
                let cur = self.int_var(var)?;
                let new = if matches!(effect, Effect::Inc { .. }) {
                    cur.checked_add(*by)
                } else {
                    cur.checked_sub(*by)
                };
                let new = new.ok_or_else(|| EvalError::Overflow(format!("var.{var}")))?;
                self.set_var(var, Value::Int(new), out)
            }
            Effect::Push { var, value } => self.push(var, value, out),
            Effect::Flag { var, value } => self.set_var(var, Value::Bool(*value), out),
            Effect::Stat {
                stat,
                entity,
                axis,
                delta,
            } => self.add_stat(stat, entity, axis, *delta, out),
            Effect::Rel { npc, axis, delta } => {
                let stat = self.world.relationship_stat.clone();
                self.add_stat(&stat, npc, axis, *delta, out)
            }
            Effect::Give { item, count } => self.add_items(item, *count, true, out),
            Effect::Take { item, count } => self.add_items(item, *count, false, out),
            Effect::Quest { quest, status } => {
                if !self.world.quests.contains_key(quest) {
                    return Err(EffectError::Undefined(format!("undefined quest '{quest}'")));
                }
                self.set_quest(quest, *status, out);
                Ok(())
            }
            Effect::Objective {
                quest,
                objective,
                progress,
            } => self.advance_objective(quest, objective, *progress, out),
            Effect::Xp { amount } => {
                let new = self.progress.xp.saturating_add(*amount).max(0);
                if new != self.progress.xp {
                    self.progress.xp = new;
                    out.push(Change::Xp { xp: new });
                    let level = self.world.xp.level(new);
                    if level != self.progress.level {
                        self.progress.level = level;
                        out.push(Change::Level { level });
                    }
                }
                Ok(())
            }
            Effect::Unlock { scene } => {
                if self.progress.unlocked.insert(scene.clone()) {
                    out.push(Change::Unlocked {
                        scene: scene.clone(),
                    });
                }
                Ok(())
            }
        }
    }

    /// `push`: appends to a list variable.
    fn push(
        &mut self,
        var: &str,
        value: &ValueSrc,
        out: &mut Vec<Change>,
    ) -> Result<(), EffectError> {
        let v = self.value_src(value)?;
        match var_value(self.world, self.vars, var) {
            Some(Value::List(mut items)) => {
                items.push(v);
                self.set_var(var, Value::List(items), out)
            }
            Some(other) => Err(EffectError::Eval(EvalError::Type(format!(
                "variable '{var}' holds {other}, not a list"
            )))),
            None => Err(EffectError::Undefined(format!(
                "undefined variable '{var}'"
            ))),
        }
    }

    /// `give` (capped by the item's `max`) or `take` (never below zero).
    fn add_items(
        &mut self,
        item: &str,
        count: u32,
        give: bool,
        out: &mut Vec<Change>,
    ) -> Result<(), EffectError> {
        let def = self
            .world
            .items
            .get(item)
            .ok_or_else(|| EffectError::Undefined(format!("undefined item '{item}'")))?;
        let cur = self.progress.items.get(item).copied().unwrap_or(0);
        let new = if give {
            let n = cur.saturating_add(count);
            def.max.map_or(n, |m| n.min(m))
        } else {
            cur.saturating_sub(count)
        };
        self.set_items(item, new, out);
        Ok(())
    }

    /// `objective`: advances it, activating the quest first and completing it when every
    /// required objective is done.
    fn advance_objective(
        &mut self,
        quest: &str,
        objective: &str,
        progress: u32,
        out: &mut Vec<Change>,
    ) -> Result<(), EffectError> {
        let def = self
            .world
            .quests
            .get(quest)
            .ok_or_else(|| EffectError::Undefined(format!("undefined quest '{quest}'")))?;
        let odef = def
            .objectives
            .iter()
            .find(|o| o.id == *objective)
            .ok_or_else(|| {
                EffectError::Undefined(format!("quest '{quest}' has no objective '{objective}'"))
            })?;
        let status = self
            .progress
            .quests
            .get(quest)
            .map(|q| q.status)
            .unwrap_or_default();
        // Progress activates a quest not started yet (exhaustive: a new status
        // decides here).
        let activates = match status {
            QuestStatus::Inactive | QuestStatus::Hidden => true,
            QuestStatus::Active | QuestStatus::Completed | QuestStatus::Failed => false,
        };
        if activates {
            self.set_quest(quest, QuestStatus::Active, out);
        }
        let q = self.progress.quests.entry(quest.to_string()).or_default();
        let cur = q.objectives.get(objective).copied().unwrap_or(0);
        let new = cur.saturating_add(progress).min(odef.target);
        if new != cur {
            q.objectives.insert(objective.to_string(), new);
            out.push(Change::Objective {
                quest: quest.to_string(),
                objective: objective.to_string(),
                progress: new,
                target: odef.target,
            });
        }
        let done = def
            .objectives
            .iter()
            .filter(|o| !o.optional)
            .all(|o| q.objectives.get(&o.id).copied().unwrap_or(0) >= o.target);
        if done && q.status == QuestStatus::Active {
            self.set_quest(quest, QuestStatus::Completed, out);
        }
        Ok(())
    }
}
