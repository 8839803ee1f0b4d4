//! Effects (on action nodes and edges), checked against the world and the scene.

use std::collections::BTreeMap;

use domain::narrative::effect::{Effect, ValueSrc};
use domain::narrative::expr::{self, Type};

use super::Ctx;

impl Ctx<'_> {
    /// Checks each effect of `owner` (`action`, `edge 'e'`) on `node`.
    pub(super) fn effects(
        &mut self,
        node: &str,
        owner: &str,
        effects: &[Effect],
        params: &BTreeMap<String, Type>,
    ) {
        for (i, eff) in effects.iter().enumerate() {
            let what = format!("{owner} effect #{}", i + 1);
            self.effect(node, &what, eff, params);
        }
    }

    /// Checks one effect; `what` names it in problems.
    fn effect(&mut self, node: &str, what: &str, eff: &Effect, params: &BTreeMap<String, Type>) {
        let w = self.world;
        match eff {
            Effect::Set { var, value } => self.set(node, what, var, value, params),
            Effect::Inc { var, .. } | Effect::Dec { var, .. } => {
                self.var_of(node, what, var, Type::Int, "inc/dec needs an int variable")
            }
            Effect::Push { var, value } => self.push(node, what, var, value, params),
            Effect::Flag { var, .. } => {
                self.var_of(node, what, var, Type::Bool, "flag needs a bool variable")
            }
            Effect::Stat {
                stat, entity, axis, ..
            } => {
                let p = expr::Path::Stat {
                    stat: stat.clone(),
                    entity: entity.clone(),
                    axis: axis.clone(),
                };
                self.path(node, what, &p, params);
            }
            Effect::Rel { npc, axis, .. } => {
                let p = expr::Path::Rel {
                    npc: npc.clone(),
                    axis: axis.clone(),
                };
                self.path(node, what, &p, params);
            }
            Effect::Give { item, .. } | Effect::Take { item, .. } => {
                if !w.items.contains_key(item) {
                    self.at(Some(node), format!("{what}: undefined item '{item}'"));
                }
            }
            Effect::Quest { quest, .. } => {
                if !w.quests.contains_key(quest) {
                    self.at(Some(node), format!("{what}: undefined quest '{quest}'"));
                }
            }
            Effect::Objective {
                quest, objective, ..
            } => {
                let p = expr::Path::Objective {
                    quest: quest.clone(),
                    objective: objective.clone(),
                };
                self.path(node, what, &p, params);
            }
            Effect::Xp { .. } => {}
            Effect::Unlock { scene } => {
                if !self.scenes.contains_key(scene) {
                    self.at(Some(node), format!("{what}: undefined scene '{scene}'"));
                }
            }
        }
    }

    /// `set`: the value's type is the variable's.
    fn set(
        &mut self,
        node: &str,
        what: &str,
        var: &str,
        value: &ValueSrc,
        params: &BTreeMap<String, Type>,
    ) {
        let vt = self.var(node, what, var);
        let t = self.value_src(node, what, value, params);
        if let (Some(vt), Some(t)) = (vt, t)
            && vt != t
        {
            self.at(
                Some(node),
                format!("{what}: cannot set {vt} variable '{var}' to a {t}"),
            );
        }
    }

    /// `push`: a list variable, and an element of its element type.
    fn push(
        &mut self,
        node: &str,
        what: &str,
        var: &str,
        value: &ValueSrc,
        params: &BTreeMap<String, Type>,
    ) {
        let vt = self.var(node, what, var);
        let t = self.value_src(node, what, value, params);
        match (vt, t) {
            (Some(Type::List(elem)), Some(t)) if *elem != t => {
                self.at(
                    Some(node),
                    format!("{what}: cannot push a {t} onto list<{elem}> variable '{var}'"),
                );
            }
            (Some(vt), _) if !matches!(vt, Type::List(_)) => {
                self.at(
                    Some(node),
                    format!("{what}: push needs a list variable, '{var}' is {vt}"),
                );
            }
            _ => {}
        }
    }

    /// A variable that must be of type `ty` (`needs` says so in the problem).
    fn var_of(&mut self, node: &str, what: &str, var: &str, ty: Type, needs: &str) {
        if let Some(t) = self.var(node, what, var)
            && t != ty
        {
            self.at(Some(node), format!("{what}: {needs}, '{var}' is {t}"));
        }
    }
}
