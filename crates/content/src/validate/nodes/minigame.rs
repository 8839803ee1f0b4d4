//! `minigame`: a registered game (its parameters checked by its own rules, see
//! `domain::narrative::minigame`), and an edge for each outcome. [`game`] checks a spec
//! alone: a media node's step mini-game is checked with it too.

use std::collections::BTreeMap;

use domain::narrative::scene::MiniGameSpec;
use domain::narrative::state::SceneTypes;

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx, On};

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>, spec: &MiniGameSpec) {
    c.flow(
        n,
        Flow::Edges {
            auto: false,
            on: On::Outcome,
        },
    );
    let (node, edges) = (n.id(), &n.edges);
    game(c, node, "", spec);
    let has_default = edges.iter().any(|e| e.default || e.on.is_none());
    for outcome in ["success", "failure"] {
        if !has_default && !edges.iter().any(|e| e.on.as_deref() == Some(outcome)) {
            c.at(
                Some(node),
                format!("mini-game has no edge for outcome '{outcome}'"),
            );
        }
    }
}

/// A mini-game's spec, at `node` (a minigame node's, or a media node's step with
/// `prefix` such as `"step 1: "` before each reason): a game of the registry
/// (`Checks::minigames`), its parameters checked by the game's own rules.
pub(super) fn game(c: &mut Ctx<'_>, node: &str, prefix: &str, spec: &MiniGameSpec) {
    let Some(game) = c.games.iter().find(|g| g.id() == spec.game).cloned() else {
        let known: Vec<&str> = c.games.iter().map(|g| g.id()).collect();
        c.at(
            Some(node),
            format!(
                "{prefix}unknown mini-game '{}' (known: {})",
                spec.game,
                known.join(", ")
            ),
        );
        return;
    };
    let reasons = game.check(
        spec,
        &SceneTypes {
            world: c.world,
            scenes: &c.scenes,
            params: &BTreeMap::new(),
        },
    );
    for reason in reasons {
        c.at(Some(node), format!("{prefix}{reason}"));
    }
}
