//! `minigame`: a registered game (its parameters checked by its own rules, see
//! `domain::narrative::minigame`), and an edge for each outcome.

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
    let Some(game) = c.games.iter().find(|g| g.id() == spec.game).cloned() else {
        let known: Vec<&str> = c.games.iter().map(|g| g.id()).collect();
        c.at(
            Some(node),
            format!(
                "unknown mini-game '{}' (known: {})",
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
        c.at(Some(node), reason);
    }
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
