//! `choice`: offers the edges whose conditions hold; nothing of its own to check.

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx, On};

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>) {
    c.flow(
        n,
        Flow::Edges {
            auto: false,
            on: On::Forbidden,
        },
    );
}
