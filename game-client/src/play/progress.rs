//! [`Progress`]: the player's progression (stats, items, variables, quests, XP,
//! unlocked scenes) as seen through the session's events, and its stats view.

use std::collections::BTreeMap;

use protocol::v2::{Change, ProgressionView};

/// Progression as seen through the session's events: shown by `s` / `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// `stat.entity.axis` → value.
    pub stats: BTreeMap<String, i64>,
    /// Item → count.
    pub items: BTreeMap<String, u32>,
    /// Variable → value (as text).
    pub vars: BTreeMap<String, String>,
    /// Quest → status.
    pub quests: BTreeMap<String, String>,
    /// (quest, objective) → (progress, target, completed).
    pub objectives: BTreeMap<(String, String), (u32, u32, bool)>,
    /// XP total.
    pub xp: i64,
    /// Level, once one was reported.
    pub level: Option<u32>,
    /// Unlocked scenes.
    pub unlocked: Vec<String>,
}

impl Progress {
    /// The progression a join's snapshot carries.
    pub(super) fn from_view(v: &ProgressionView) -> Progress {
        Progress {
            stats: v
                .stats
                .iter()
                .map(|s| (format!("{}.{}.{}", s.stat, s.entity, s.axis), s.value))
                .collect(),
            items: v.items.iter().map(|i| (i.item.clone(), i.count)).collect(),
            vars: v
                .vars
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect(),
            quests: v
                .quests
                .iter()
                .map(|q| (q.quest.clone(), q.status.clone()))
                .collect(),
            objectives: v
                .quests
                .iter()
                .flat_map(|q| {
                    q.objectives.iter().map(|o| {
                        (
                            (q.quest.clone(), o.objective.clone()),
                            (o.progress, o.target, o.completed),
                        )
                    })
                })
                .collect(),
            xp: v.xp,
            // A session that has not started reports level 0: none yet.
            level: (v.level > 0).then_some(v.level),
            unlocked: v.unlocked.clone(),
        }
    }

    pub(super) fn apply(&mut self, change: &Change) {
        match change {
            Change::Var { name, value } => {
                self.vars.insert(name.clone(), value.clone());
            }
            Change::Stat {
                stat,
                entity,
                axis,
                value,
            } => {
                self.stats.insert(format!("{stat}.{entity}.{axis}"), *value);
            }
            Change::Item { item, count } => {
                if *count == 0 {
                    self.items.remove(item);
                } else {
                    self.items.insert(item.clone(), *count);
                }
            }
            Change::Quest { quest, status } => {
                self.quests.insert(quest.clone(), status.clone());
            }
            Change::Objective {
                quest,
                objective,
                progress,
                target,
            } => {
                self.objectives.insert(
                    (quest.clone(), objective.clone()),
                    (*progress, *target, progress >= target),
                );
            }
            Change::Xp { xp } => self.xp = *xp,
            Change::Level { level } => self.level = Some(*level),
            Change::Unlocked { scene } => self.unlock(scene),
        }
    }

    pub(super) fn unlock(&mut self, scene: &str) {
        if !self.unlocked.iter().any(|s| s == scene) {
            self.unlocked.push(scene.to_owned());
        }
    }

    /// The stats view (`s` / `stats`).
    pub fn render(&self) -> Vec<String> {
        let mut out = vec!["── stats ──".to_owned()];
        let level = self.level.map_or("-".to_owned(), |l| l.to_string());
        out.push(format!("level {level} · xp {}", self.xp));
        for (k, v) in &self.stats {
            out.push(format!("  {k} = {v}"));
        }
        if !self.items.is_empty() {
            let items: Vec<String> = self
                .items
                .iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect();
            out.push(format!("items: {}", items.join(", ")));
        }
        for (quest, status) in &self.quests {
            out.push(format!("quest {quest}: {status}"));
            for ((q, objective), (progress, target, done)) in &self.objectives {
                if q == quest {
                    let mark = if *done { " ✓" } else { "" };
                    out.push(format!("  {objective} {progress}/{target}{mark}"));
                }
            }
        }
        if !self.vars.is_empty() {
            let vars: Vec<String> = self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push(format!("variables: {}", vars.join(", ")));
        }
        if !self.unlocked.is_empty() {
            out.push(format!("unlocked scenes: {}", self.unlocked.join(", ")));
        }
        out
    }
}
