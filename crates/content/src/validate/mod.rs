//! Semantic validation of a world config and its scenes.
//!
//! - [`world`]: the world config's own rules,
//! - [`graph`]: a scene's graph (ids, edges, reachability, calls and returns),
//! - [`flow`]: a node in its scene and how it advances (outgoing edges, `on`, defaults,
//!   auto-advance),
//! - [`groups`]: a scene's node groups,
//! - [`nodes`]: one module per node kind, dispatched by one exhaustive match,
//! - [`exprs`] and [`effects`]: expressions, references and effects in their scene.

mod effects;
mod exprs;
mod flow;
mod graph;
mod groups;
mod nodes;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use domain::narrative::ident::is_ident;
use domain::narrative::minigame::{MiniGameRules, builtin_rules};
use domain::narrative::{Scene, WorldConfig};

use crate::{Problem, SceneFile};

/// The validation state: the problems found so far and where the checks are.
struct Ctx<'a> {
    out: Vec<Problem>,
    world: &'a WorldConfig,
    scenes: BTreeMap<String, Scene>,
    file: String,
    scene: Option<String>,
    /// Whether the scene being checked has a `return` node.
    scene_returns: bool,
    /// The mini-games scenes may name (the simulation's registry).
    games: &'a [Arc<dyn MiniGameRules>],
}

impl Ctx<'_> {
    fn at(&mut self, node: Option<&str>, reason: impl Into<String>) {
        self.out.push(Problem {
            file: self.file.clone(),
            scene: self.scene.clone(),
            node: node.map(str::to_string),
            reason: reason.into(),
        });
    }
}

/// Validates a world config and its scenes against the built-in mini-games; returns
/// every problem found.
pub fn validate(world_file: &str, world: &WorldConfig, files: &[SceneFile]) -> Vec<Problem> {
    validate_with(world_file, world, files, &builtin_rules())
}

/// [`validate`] with the mini-games of a registry (`sim::MiniGames::rules`).
pub fn validate_with(
    world_file: &str,
    world: &WorldConfig,
    files: &[SceneFile],
    games: &[Arc<dyn MiniGameRules>],
) -> Vec<Problem> {
    let mut c = Ctx {
        out: Vec::new(),
        world,
        scenes: BTreeMap::new(),
        file: String::new(),
        scene: None,
        scene_returns: false,
        games,
    };
    let mut scene_file: BTreeMap<String, String> = BTreeMap::new();
    for f in files {
        let id = f.scene.id.clone();
        if let Some(prev) = scene_file.get(&id) {
            c.file = f.file.clone();
            c.at(
                None,
                format!("duplicate scene id '{id}' (also defined in {prev})"),
            );
            continue;
        }
        scene_file.insert(id.clone(), f.file.clone());
        c.scenes.insert(id, f.scene.clone());
    }
    c.file = world_file.to_string();
    world::check(&mut c);

    // Which scenes are called (for return checks).
    let called: BTreeSet<String> = c
        .scenes
        .values()
        .flat_map(|s| s.nodes.iter().filter_map(|n| n.kind.callee()))
        .map(str::to_string)
        .collect();

    let scenes: Vec<Scene> = c.scenes.values().cloned().collect();
    for s in &scenes {
        c.file = scene_file.get(&s.id).cloned().unwrap_or_default();
        c.scene = Some(s.id.clone());
        graph::check_scene(&mut c, s, called.contains(&s.id));
        world::check_scene(&mut c, s);
    }
    c.out
}
