//! Which generation specs lie within a few steps of a node: what pre-generation asks
//! for ahead of a player.
//!
//! A *step* is a move the player makes: leaving a node that waits for the player (a
//! choice, a media or dialogue node that is not `auto`, a mini-game) costs one step;
//! leaving a node that advances by itself (condition, action, call, return, an `auto`
//! media or dialogue node) costs none. The reach is the scene graph's, not one player's:
//! edge conditions are not evaluated (a conditioned edge counts as open), a `call` leads
//! to the callee's entry, and a `return` to the continuation of every node that calls the
//! scene. It may therefore include a node a particular player cannot take; media made for
//! it then counts as wasted in the metrics.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use domain::narrative::Content;
use domain::narrative::scene::NodeKind;

/// A spec as the simulation names it: operation, prompt, canonical parameters.
pub(crate) type Key = (String, String, String);

/// A generation spec within reach of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Near {
    pub(crate) key: Key,
    /// Steps from the node (0: the node itself).
    pub(crate) steps: u32,
    /// Where the spec is (the nearest node that names it).
    pub(crate) scene: String,
    pub(crate) node: String,
}

/// The specs within reach of each node, computed on first use and kept until the
/// content changes.
pub(crate) struct Reach {
    max_steps: u32,
    version: String,
    /// Scene → the `call` nodes that call it (their scene, their id).
    callers: HashMap<String, Vec<(String, String)>>,
    cache: HashMap<(String, String), Arc<[Near]>>,
}

impl Reach {
    pub(crate) fn new(max_steps: u32) -> Reach {
        Reach {
            max_steps,
            version: String::new(),
            callers: HashMap::new(),
            cache: HashMap::new(),
        }
    }

    /// The specs within `max_steps` of `scene`/`node`, nearest first (empty for an
    /// unknown node).
    pub(crate) fn near(&mut self, content: &Content, scene: &str, node: &str) -> Arc<[Near]> {
        if content.version != self.version || self.version.is_empty() {
            self.version = content.version.clone();
            self.cache.clear();
            self.callers = callers(content);
        }
        let key = (scene.to_owned(), node.to_owned());
        if let Some(hit) = self.cache.get(&key) {
            return Arc::clone(hit);
        }
        let found: Arc<[Near]> = search(content, &self.callers, scene, node, self.max_steps).into();
        self.cache.insert(key, Arc::clone(&found));
        found
    }
}

fn callers(content: &Content) -> HashMap<String, Vec<(String, String)>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (id, scene) in &content.scenes {
        for n in &scene.nodes {
            if let Some(callee) = n.kind.callee() {
                out.entry(callee.to_owned())
                    .or_default()
                    .push((id.clone(), n.id.clone()));
            }
        }
    }
    out
}

/// Whether leaving the node needs the player.
fn waits_for_player(kind: &NodeKind) -> bool {
    match kind {
        NodeKind::Media { auto, .. } | NodeKind::Dialogue { auto, .. } => !auto,
        NodeKind::Choice { .. } | NodeKind::MiniGame(_) => true,
        NodeKind::Condition {}
        | NodeKind::Action { .. }
        | NodeKind::Call { .. }
        | NodeKind::Return { .. }
        | NodeKind::End { .. } => false,
    }
}

/// A breadth-first search where moves that need no player cost nothing (0-1 BFS).
fn search(
    content: &Content,
    callers: &HashMap<String, Vec<(String, String)>>,
    scene: &str,
    node: &str,
    max: u32,
) -> Vec<Near> {
    let mut best: HashMap<(&str, &str), u32> = HashMap::new();
    let mut queue: VecDeque<(&str, &str, u32)> = VecDeque::new();
    let (Some(s), Some(_)) = (content.scene(scene), content.node(scene, node)) else {
        return Vec::new();
    };
    queue.push_back((s.id.as_str(), node, 0));
    best.insert((s.id.as_str(), node), 0);
    let mut found: Vec<Near> = Vec::new();
    let mut seen: HashSet<Key> = HashSet::new();
    let mut done: HashSet<(&str, &str)> = HashSet::new();
    while let Some((sc, id, d)) = queue.pop_front() {
        if !done.insert((sc, id)) {
            continue;
        }
        let Some(n) = content.node(sc, id) else {
            continue;
        };
        for g in n.kind.generations() {
            let key = (
                g.operation.clone(),
                g.prompt.clone(),
                sim::protocol::spec_params(g),
            );
            if seen.insert(key.clone()) {
                found.push(Near {
                    key,
                    steps: d,
                    scene: sc.to_owned(),
                    node: id.to_owned(),
                });
            }
        }
        let cost = u32::from(waits_for_player(&n.kind));
        let nd = d + cost;
        if nd > max {
            continue;
        }
        let mut next: Vec<(&str, &str)> = Vec::new();
        match &n.kind {
            NodeKind::Call { scene: callee, .. } => {
                if let Some(c) = content.scene(callee) {
                    next.push((c.id.as_str(), c.entry.as_str()));
                }
            }
            NodeKind::Return { .. } => {
                for (ps, pn) in callers.get(sc).into_iter().flatten() {
                    next.extend(
                        content
                            .out_edges(ps, pn)
                            .map(|e| (ps.as_str(), e.to.as_str())),
                    );
                }
            }
            _ => next.extend(content.out_edges(sc, id).map(|e| (sc, e.to.as_str()))),
        }
        for (ns, nn) in next {
            let better = best.get(&(ns, nn)).is_none_or(|b| nd < *b);
            if better {
                best.insert((ns, nn), nd);
                if cost == 0 {
                    queue.push_front((ns, nn, nd));
                } else {
                    queue.push_back((ns, nn, nd));
                }
            }
        }
    }
    found.sort_by_key(|n| n.steps);
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn demo() -> Content {
        content::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenes")).unwrap()
    }

    fn steps_to(
        reach: &mut Reach,
        c: &Content,
        scene: &str,
        node: &str,
        target: &str,
    ) -> Option<u32> {
        reach
            .near(c, scene, node)
            .iter()
            .find(|n| n.node == target)
            .map(|n| n.steps)
    }

    #[test]
    fn steps_count_the_player_s_moves_across_calls_and_returns() {
        let c = demo();
        let mut r = Reach::new(10);
        // The gallery's first node is its own spec.
        assert_eq!(steps_to(&mut r, &c, "gallery", "arrive", "arrive"), Some(0));
        // The epilogue's dawn: from the vault door, crack (1 step), the return to the
        // gallery, the escape, the call into the epilogue (no steps), the toast (1).
        assert_eq!(steps_to(&mut r, &c, "vault", "door", "dawn"), Some(2));
        assert_eq!(steps_to(&mut r, &c, "epilogue", "toast", "dawn"), Some(1));
        // From the plan: sneak (1), the reflex game (1), then as from the door.
        assert_eq!(steps_to(&mut r, &c, "gallery", "plan", "dawn"), Some(4));
        // The end is a dead end.
        assert!(r.near(&c, "gallery", "busted").is_empty());
        // Unknown nodes have nothing near.
        assert!(r.near(&c, "gallery", "nowhere").is_empty());
    }

    #[test]
    fn the_limit_bounds_the_search() {
        let c = demo();
        let mut r = Reach::new(2);
        assert_eq!(steps_to(&mut r, &c, "vault", "door", "dawn"), Some(2));
        assert_eq!(steps_to(&mut r, &c, "gallery", "plan", "dawn"), None);
        let mut none = Reach::new(0);
        assert_eq!(steps_to(&mut none, &c, "vault", "door", "dawn"), None);
        assert_eq!(
            steps_to(&mut none, &c, "gallery", "arrive", "arrive"),
            Some(0)
        );
    }
}
