//! `condition`: branches by itself on its edges' conditions.

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx, On};

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>) {
    c.flow(
        n,
        Flow::Edges {
            auto: true,
            on: On::Forbidden,
        },
    );
}
