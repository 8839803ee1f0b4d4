//! State references in expressions: their values in a session ([`Env`] for [`Ctx`]) and
//! their types in a scene ([`SceneTypes`], for load-time checking).

use std::collections::BTreeMap;

use super::*;

impl Env for Ctx<'_> {
    fn lookup(&self, path: &Path) -> Result<Value, EvalError> {
        let w = self.world;
        let p = &*self.progress;
        let lk = EvalError::Lookup;
        Ok(match path {
            Path::Var(n) => {
                var_value(w, self.vars, n).ok_or_else(|| lk(format!("undefined variable '{n}'")))?
            }
            Path::Arg(n) => self
                .args
                .get(n)
                .cloned()
                .ok_or_else(|| lk(format!("undefined argument '{n}'")))?,
            Path::Stat {
                stat,
                entity,
                axis: a,
            } => Value::Int(stat_value(w, p, stat, entity, a).map_err(lk)?),
            Path::Tier {
                stat,
                entity,
                axis: a,
            } => {
                let v = stat_value(w, p, stat, entity, a).map_err(lk)?;
                let def = axis(w, stat, entity, a).map_err(lk)?;
                Value::Str(def.tier(v).to_string())
            }
            Path::StatLevel {
                stat,
                entity,
                axis: a,
            } => {
                let v = stat_value(w, p, stat, entity, a).map_err(lk)?;
                let def = axis(w, stat, entity, a).map_err(lk)?;
                Value::Int(i64::from(def.level(v)))
            }
            Path::Rel { npc, axis: a } => {
                Value::Int(stat_value(w, p, &w.relationship_stat, npc, a).map_err(lk)?)
            }
            Path::Item(i) => Value::Int(i64::from(p.items.get(i).copied().unwrap_or(0))),
            Path::Inventory => Value::List(
                p.items
                    .iter()
                    .filter(|(_, c)| **c > 0)
                    .map(|(k, _)| Value::Str(k.clone()))
                    .collect(),
            ),
            Path::Quest(q) => Value::Str(
                p.quests
                    .get(q)
                    .map(|s| s.status)
                    .unwrap_or_default()
                    .as_str()
                    .to_string(),
            ),
            Path::Objective { quest, objective } => Value::Int(i64::from(
                p.quests
                    .get(quest)
                    .and_then(|q| q.objectives.get(objective))
                    .copied()
                    .unwrap_or(0),
            )),
            Path::SceneVisits(s) => {
                Value::Int(i64::from(self.visits.scenes.get(s).copied().unwrap_or(0)))
            }
            Path::NodeVisits { scene, node } => {
                Value::Int(i64::from(self.visits.node(scene, node)))
            }
            Path::Unlocked(s) => {
                Value::Bool(!w.locked_scenes.contains(s) || p.unlocked.contains(s))
            }
            Path::Time => Value::Int(self.time_ms),
            Path::Xp => Value::Int(p.xp),
            Path::Level => Value::Int(i64::from(p.level)),
        })
    }

    fn random(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.range(lo, hi)
    }
}

/// Static typing environment for expressions in one scene.
pub struct SceneTypes<'a> {
    /// World definitions.
    pub world: &'a WorldConfig,
    /// All scenes (for visit and unlock references).
    pub scenes: &'a BTreeMap<String, Scene>,
    /// Parameters of the scene being checked.
    pub params: &'a BTreeMap<String, Type>,
}

impl TypeEnv for SceneTypes<'_> {
    fn path_type(&self, path: &Path) -> Result<Type, String> {
        let w = self.world;
        let scene = |s: &str| {
            self.scenes
                .get(s)
                .map(|_| ())
                .ok_or_else(|| format!("undefined scene '{s}'"))
        };
        match path {
            Path::Var(n) => w
                .variables
                .get(n)
                .map(|d| d.ty.clone())
                .ok_or_else(|| format!("undefined variable '{n}'")),
            Path::Arg(n) => self
                .params
                .get(n)
                .cloned()
                .ok_or_else(|| format!("undefined parameter '{n}'")),
            Path::Stat {
                stat,
                entity,
                axis: a,
            } => axis(w, stat, entity, a).map(|_| Type::Int),
            Path::Tier {
                stat,
                entity,
                axis: a,
            } => axis(w, stat, entity, a).map(|_| Type::Str),
            Path::StatLevel {
                stat,
                entity,
                axis: a,
            } => axis(w, stat, entity, a).map(|_| Type::Int),
            Path::Rel { npc, axis: a } => axis(w, &w.relationship_stat, npc, a).map(|_| Type::Int),
            Path::Item(i) => w
                .items
                .get(i)
                .map(|_| Type::Int)
                .ok_or_else(|| format!("undefined item '{i}'")),
            Path::Inventory => Ok(Type::List(Box::new(Type::Str))),
            Path::Quest(q) => w
                .quests
                .get(q)
                .map(|_| Type::Str)
                .ok_or_else(|| format!("undefined quest '{q}'")),
            Path::Objective { quest, objective } => {
                let q = w
                    .quests
                    .get(quest)
                    .ok_or_else(|| format!("undefined quest '{quest}'"))?;
                q.objectives
                    .iter()
                    .find(|o| o.id == *objective)
                    .map(|_| Type::Int)
                    .ok_or_else(|| format!("quest '{quest}' has no objective '{objective}'"))
            }
            Path::SceneVisits(s) => scene(s).map(|_| Type::Int),
            Path::NodeVisits { scene: s, node } => {
                let sc = self
                    .scenes
                    .get(s)
                    .ok_or_else(|| format!("undefined scene '{s}'"))?;
                if sc.nodes.iter().any(|n| n.id == *node) {
                    Ok(Type::Int)
                } else {
                    Err(format!("scene '{s}' has no node '{node}'"))
                }
            }
            Path::Unlocked(s) => scene(s).map(|_| Type::Bool),
            Path::Time | Path::Xp | Path::Level => Ok(Type::Int),
        }
    }
}
