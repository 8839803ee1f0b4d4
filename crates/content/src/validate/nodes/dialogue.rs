//! `dialogue`: lines with unique ids.

use std::collections::BTreeSet;

use domain::narrative::Line;

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx, On};

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>, lines: &[Line], auto: bool) {
    c.flow(
        n,
        Flow::Edges {
            auto,
            on: On::Forbidden,
        },
    );
    if lines.is_empty() {
        c.at(Some(n.id()), "dialogue node has no lines");
    }
    let mut ids = BTreeSet::new();
    for l in lines {
        if !ids.insert(&l.id) {
            c.at(Some(n.id()), format!("duplicate line id '{}'", l.id));
        }
    }
}
