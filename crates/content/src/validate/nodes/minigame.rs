//! `minigame`: a known game with sane parameters, and an edge for each outcome.

use std::collections::BTreeMap;

use domain::narrative::expr;
use domain::narrative::scene::{MINI_GAMES, MiniGameSpec, REFLEX_DEFAULT_ROUNDS};

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
    match spec.game.as_str() {
        "reflex" => {
            let rounds = spec.rounds.unwrap_or(REFLEX_DEFAULT_ROUNDS);
            if rounds == 0 {
                c.at(Some(node), "reflex: rounds must be at least 1");
            }
            if spec.window_ms == Some(0) {
                c.at(Some(node), "reflex: window_ms must be positive");
            }
            if let Some(need) = spec.need
                && (need == 0 || need > rounds)
            {
                c.at(Some(node), format!("reflex: need must be in 1..={rounds}"));
            }
        }
        "skill_check" => {
            let entity = spec.entity.clone().unwrap_or_else(|| "player".into());
            let axis = spec.axis.clone().unwrap_or_else(|| "value".into());
            match &spec.stat {
                Some(stat) => {
                    let p = expr::Path::Stat {
                        stat: stat.clone(),
                        entity,
                        axis,
                    };
                    c.path(node, "skill_check", &p, &BTreeMap::new());
                }
                None => c.at(Some(node), "skill_check: missing 'stat'"),
            }
            if spec.difficulty.is_none() {
                c.at(Some(node), "skill_check: missing 'difficulty'");
            }
            if spec.die == Some(0) {
                c.at(Some(node), "skill_check: die must have at least 1 face");
            }
        }
        other => {
            c.at(
                Some(node),
                format!(
                    "unknown mini-game '{other}' (known: {})",
                    MINI_GAMES.join(", ")
                ),
            );
            return;
        }
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
