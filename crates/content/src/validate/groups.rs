//! A scene's node groups: identifier ids, unique; each names at least one node of the
//! scene, and a node is in at most one group.

use std::collections::{BTreeMap, BTreeSet};

use domain::narrative::{Node, Scene};

use super::{Ctx, is_ident};

pub(super) fn check(c: &mut Ctx<'_>, s: &Scene, nodes: &BTreeMap<&str, &Node>) {
    let mut ids = BTreeSet::new();
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for g in &s.groups {
        if !is_ident(&g.id) {
            c.at(None, format!("group id '{}' is not an identifier", g.id));
        }
        if !ids.insert(g.id.as_str()) {
            c.at(None, format!("duplicate group id '{}'", g.id));
        }
        if g.nodes.is_empty() {
            c.at(None, format!("group '{}' has no nodes", g.id));
        }
        for n in &g.nodes {
            if !nodes.contains_key(n.as_str()) {
                c.at(None, format!("group '{}' names missing node '{n}'", g.id));
            } else if let Some(prev) = owner.insert(n, &g.id) {
                c.at(
                    Some(n),
                    format!("node is in groups '{prev}' and '{}'", g.id),
                );
            }
        }
    }
}
