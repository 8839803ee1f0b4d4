//! A scene's graph: ids, entry, edges, reachability, and the scene-level call/return rules;
//! then each node ([`super::nodes`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use domain::narrative::{Edge, Node, Scene};

use super::flow::NodeCx;
use super::{Ctx, is_ident};
use super::{groups, nodes};

/// Checks one scene; `is_called` says whether some call node calls it.
pub(super) fn check_scene(c: &mut Ctx<'_>, s: &Scene, is_called: bool) {
    if !is_ident(&s.id) {
        c.at(
            None,
            format!(
                "scene id '{}' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                s.id
            ),
        );
    }
    let nodes = node_index(c, s);
    if !nodes.contains_key(s.entry.as_str()) {
        c.at(None, format!("entry node '{}' does not exist", s.entry));
    }
    let out = outgoing(c, s, &nodes);
    reachability(c, s, &nodes, &out);
    groups::check(c, s, &nodes);

    c.scene_returns = false;
    for n in &s.nodes {
        let edges: Vec<&Edge> = out.get(n.id.as_str()).cloned().unwrap_or_default();
        nodes::check(
            c,
            &NodeCx {
                node: n,
                edges,
                scene: s,
            },
        );
    }
    let has_return = c.scene_returns;
    if is_called && !has_return {
        c.at(None, "scene is called but has no return node");
    }
    if !is_called && (has_return || !s.params.is_empty()) {
        c.at(None, "scene has return nodes or params but is never called");
    }
}

/// Nodes by id; reports bad and duplicate ids.
fn node_index<'s>(c: &mut Ctx<'_>, s: &'s Scene) -> BTreeMap<&'s str, &'s Node> {
    let mut nodes: BTreeMap<&str, &Node> = BTreeMap::new();
    for n in &s.nodes {
        if !is_ident(&n.id) {
            c.at(
                Some(&n.id),
                "node id is not an identifier ([A-Za-z_][A-Za-z0-9_]*)",
            );
        }
        if nodes.insert(&n.id, n).is_some() {
            c.at(Some(&n.id), "duplicate node id");
        }
    }
    nodes
}

/// Outgoing edges by source node; reports duplicate edge ids and dangling ends.
fn outgoing<'s>(
    c: &mut Ctx<'_>,
    s: &'s Scene,
    nodes: &BTreeMap<&str, &Node>,
) -> BTreeMap<&'s str, Vec<&'s Edge>> {
    let mut edge_ids = BTreeSet::new();
    let mut out: BTreeMap<&str, Vec<&Edge>> = BTreeMap::new();
    for e in &s.edges {
        if !edge_ids.insert(e.id.as_str()) {
            c.at(Some(&e.from), format!("duplicate edge id '{}'", e.id));
        }
        if !nodes.contains_key(e.from.as_str()) {
            c.at(
                Some(&e.from),
                format!("edge '{}' starts at missing node '{}'", e.id, e.from),
            );
            continue;
        }
        if !nodes.contains_key(e.to.as_str()) {
            c.at(
                Some(&e.from),
                format!("edge '{}' points to missing node '{}'", e.id, e.to),
            );
        }
        out.entry(e.from.as_str()).or_default().push(e);
    }
    out
}

/// Reports every node not reachable from the entry.
fn reachability(
    c: &mut Ctx<'_>,
    s: &Scene,
    nodes: &BTreeMap<&str, &Node>,
    out: &BTreeMap<&str, Vec<&Edge>>,
) {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue = VecDeque::new();
    if nodes.contains_key(s.entry.as_str()) {
        queue.push_back(s.entry.as_str());
        seen.insert(s.entry.as_str());
    }
    while let Some(n) = queue.pop_front() {
        for e in out.get(n).into_iter().flatten() {
            if nodes.contains_key(e.to.as_str()) && seen.insert(e.to.as_str()) {
                queue.push_back(e.to.as_str());
            }
        }
    }
    for n in &s.nodes {
        if !seen.contains(n.id.as_str()) {
            c.at(
                Some(&n.id),
                format!("unreachable from entry node '{}'", s.entry),
            );
        }
    }
}
