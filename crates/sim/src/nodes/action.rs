//! `action`: applies its effects, then takes the automatic edge.

use domain::narrative::Effect;

use super::Behaviour;
use crate::cx::{Cx, Next, Res, S};
use crate::edges;

pub(super) struct Action<'k> {
    pub effects: &'k [Effect],
}

impl<'k> Behaviour<'k> for Action<'k> {
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        let r = edges::apply_effects(s, cx, self.effects);
        r.map_err(|err| format!("action node '{}': {err}", s.pos.node))?;
        edges::follow(s, cx, None)?;
        Ok(Next::Moved)
    }
}
