//! The world config's own rules: start scene, variables, stats, XP, quests, locked scenes.

use std::collections::BTreeSet;

use super::{Ctx, is_ident};

/// Checks the world config (problems are reported against the world file).
pub(super) fn check(c: &mut Ctx<'_>) {
    let w = c.world;
    if !c.scenes.contains_key(&w.start_scene) {
        c.at(
            None,
            format!("start_scene '{}' is not a defined scene", w.start_scene),
        );
    }
    for (name, def) in &w.variables {
        if !is_ident(name) {
            c.at(None, format!("variable name '{name}' is not an identifier"));
        }
        if let Some(v) = &def.default
            && !v.fits(&def.ty)
        {
            c.at(
                None,
                format!("variable '{name}': default {v} is not a {}", def.ty),
            );
        }
    }
    for (sid, stat) in &w.stats {
        for e in &stat.entities {
            if !w.entities.contains(e) {
                c.at(
                    None,
                    format!("stat '{sid}': entity '{e}' is not listed in entities"),
                );
            }
        }
        for (aid, a) in &stat.axes {
            if a.levels.windows(2).any(|p| p[0] >= p[1]) {
                c.at(
                    None,
                    format!("stat '{sid}' axis '{aid}': levels must be strictly increasing"),
                );
            }
            if a.min > a.max {
                c.at(
                    None,
                    format!("stat '{sid}' axis '{aid}': min {} > max {}", a.min, a.max),
                );
            } else if a.default < a.min || a.default > a.max {
                c.at(
                    None,
                    format!(
                        "stat '{sid}' axis '{aid}': default {} outside {}..={}",
                        a.default, a.min, a.max
                    ),
                );
            }
        }
    }
    if w.xp.thresholds.windows(2).any(|p| p[0] >= p[1]) {
        c.at(None, "xp thresholds must be strictly increasing");
    }
    for (qid, q) in &w.quests {
        let mut seen = BTreeSet::new();
        for o in &q.objectives {
            if !seen.insert(&o.id) {
                c.at(
                    None,
                    format!("quest '{qid}': duplicate objective '{}'", o.id),
                );
            }
        }
    }
    for s in &w.locked_scenes {
        if !c.scenes.contains_key(s) {
            c.at(None, format!("locked scene '{s}' is not a defined scene"));
        }
    }
}
