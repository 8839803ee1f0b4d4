//! `end`: ends the session; no outgoing edges.

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx};

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>) {
    c.flow(n, Flow::End);
}
