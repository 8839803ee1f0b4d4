//! A node in its scene ([`NodeCx`]), how a node advances, as each kind declares it
//! ([`Flow`]), and the checks that follow from it: outgoing edges, their conditions, effects
//! and `on` selectors, default edges and auto-advance. The per-kind modules in
//! [`super::nodes`] build on these; nothing here depends on them.

use domain::narrative::{Edge, Node, Scene, Type};

use super::{Ctx, is_ident};

/// A node in its scene, with its outgoing edges.
pub(super) struct NodeCx<'s> {
    pub node: &'s Node,
    pub edges: Vec<&'s Edge>,
    pub scene: &'s Scene,
}

impl NodeCx<'_> {
    /// The node's id.
    pub(super) fn id(&self) -> &str {
        &self.node.id
    }
}

/// How a node of some kind advances.
pub(super) enum Flow<'a> {
    /// Ends the session: no outgoing edges.
    End,
    /// Returns to the caller: no outgoing edges; the scene must be called.
    Return,
    /// Leaves along its edges.
    Edges {
        /// Advances by itself (no player choice): needs a default or unconditional edge.
        auto: bool,
        /// What an edge's `on` selects.
        on: On<'a>,
    },
}

/// What an outgoing edge's `on` selects.
pub(super) enum On<'a> {
    /// Not allowed.
    Forbidden,
    /// A mini-game outcome: `success` or `failure`.
    Outcome,
    /// A route the called scene returns with.
    Route {
        /// The callee.
        scene: &'a str,
    },
}

impl Ctx<'_> {
    /// Checks the node's outgoing edges against its kind's [`Flow`].
    pub(super) fn flow(&mut self, n: &NodeCx<'_>, flow: Flow<'_>) {
        let id = n.node.id.as_str();
        let kind = n.node.kind.name();
        let (terminal, auto, on) = match flow {
            Flow::End => (true, false, On::Forbidden),
            Flow::Return => {
                self.scene_returns = true;
                (true, false, On::Forbidden)
            }
            Flow::Edges { auto, on } => (false, auto, on),
        };
        if terminal && !n.edges.is_empty() {
            self.at(
                Some(id),
                format!("{kind} node must not have outgoing edges"),
            );
        }
        if !terminal && n.edges.is_empty() {
            self.at(
                Some(id),
                format!("dead end: {kind} node has no outgoing edges and is not an end node"),
            );
        }
        let mut defaults = 0;
        for e in &n.edges {
            if !is_ident(&e.id) {
                self.at(Some(id), format!("edge id '{}' is not an identifier", e.id));
            }
            if e.default {
                defaults += 1;
            }
            if let Some(cond) = &e.condition
                && let Some(t) = self.expr(
                    id,
                    &format!("edge '{}' condition", e.id),
                    cond,
                    &n.scene.params,
                )
                && t != Type::Bool
            {
                self.at(
                    Some(id),
                    format!(
                        "edge '{}' condition: '{}' is {t}, expected bool",
                        e.id, cond.src
                    ),
                );
            }
            self.effects(id, &format!("edge '{}'", e.id), &e.effects, &n.scene.params);
            if let Some(sel) = &e.on {
                self.on(id, &e.id, sel, &on);
            }
        }
        if defaults > 1 {
            self.at(Some(id), "more than one default edge");
        }
        if auto
            && !n.edges.is_empty()
            && !n
                .edges
                .iter()
                .any(|e| e.default || (e.condition.is_none() && e.on.is_none()))
        {
            self.at(Some(id), format!("{kind} node advances automatically but has no default or unconditional edge, so it can get stuck"));
        }
        let offers_choices = !terminal
            && !auto
            && match on {
                On::Forbidden => true,
                On::Outcome | On::Route { .. } => false,
            };
        if n.node.reveal_choices_ms.is_some() && !offers_choices {
            self.at(
                Some(id),
                format!("'reveal_choices_ms' on a node that offers no choices ({kind})"),
            );
        }
    }

    /// Checks an edge's `on` selector `sel`.
    fn on(&mut self, node: &str, edge: &str, sel: &str, on: &On<'_>) {
        match on {
            On::Outcome => {
                if sel != "success" && sel != "failure" {
                    self.at(Some(node), format!("edge '{edge}': mini-game outcome must be 'success' or 'failure', got '{sel}'"));
                }
            }
            On::Route { scene } => {
                let returns_with_route = self.scenes.get(*scene).map(|callee| {
                    callee
                        .nodes
                        .iter()
                        .any(|rn| rn.kind.return_route() == Some(sel))
                });
                if returns_with_route == Some(false) {
                    self.at(
                        Some(node),
                        format!("edge '{edge}': scene '{scene}' never returns with route '{sel}'"),
                    );
                }
            }
            On::Forbidden => self.at(
                Some(node),
                format!("edge '{edge}': 'on' is only allowed after minigame and call nodes"),
            ),
        }
    }
}
