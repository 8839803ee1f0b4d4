//! The world config's own rules: start scene, variables, stats, XP, quests, locked scenes,
//! the worlds served (id, time scale, start scene); and a scene's place in a world
//! ([`check_scene`]: its world is served, the scenes it calls are in the same world).

use std::collections::BTreeSet;

use domain::narrative::Scene;
use domain::narrative::world::{DEFAULT_WORLD, scale_permille, scene_world};

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
    check_worlds(c);
}

/// The `[worlds.<id>]` tables: ids, time scales and start scenes (each a defined,
/// startable scene of its own world).
fn check_worlds(c: &mut Ctx<'_>) {
    let w = c.world;
    for (id, def) in &w.worlds {
        if !is_ident(id) {
            c.at(None, format!("world '{id}': the id is not an identifier"));
        }
        if let Err(e) = scale_permille(def.time_scale) {
            c.at(None, format!("world '{id}': {e}"));
        }
        if id != DEFAULT_WORLD && def.start_scene.is_none() {
            c.at(None, format!("world '{id}': start_scene is required"));
        }
    }
    for id in w.world_ids() {
        let Some(start) = w.world_start_scene(id) else {
            continue;
        };
        match c.scenes.get(start) {
            // The top-level start scene is reported above.
            None if id == DEFAULT_WORLD && start == w.start_scene => {}
            None => c.at(
                None,
                format!("world '{id}': start_scene '{start}' is not a defined scene"),
            ),
            Some(scene) if scene_world(scene) != id => c.at(
                None,
                format!(
                    "world '{id}': start_scene '{start}' belongs to world '{}'",
                    scene_world(scene)
                ),
            ),
            Some(_) => {}
        }
    }
}

/// A scene's world: a served one; a scene it calls belongs to the same world (a session
/// keeps one world, the one of the scene it started in).
pub(super) fn check_scene(c: &mut Ctx<'_>, scene: &Scene) {
    let world = scene_world(scene);
    if !c.world.has_world(world) {
        c.at(
            None,
            format!("world '{world}' is not declared in world.toml ([worlds.{world}])"),
        );
        return;
    }
    for node in &scene.nodes {
        let Some(callee) = node.kind.callee() else {
            continue;
        };
        let Some(other) = c.scenes.get(callee).map(scene_world) else {
            continue; // a missing callee is reported by the graph checks
        };
        if other != world {
            let reason = format!(
                "calls scene '{callee}' of world '{other}' from world '{world}' (a session stays in one world)"
            );
            c.at(Some(&node.id), reason);
        }
    }
}
