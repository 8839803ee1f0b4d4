//! `action`: applies effects, then advances by itself.

use domain::narrative::Effect;

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx, On};

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>, effects: &[Effect]) {
    c.flow(
        n,
        Flow::Edges {
            auto: true,
            on: On::Forbidden,
        },
    );
    c.effects(n.id(), "action", effects, &n.scene.params);
}
