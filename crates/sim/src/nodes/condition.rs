//! `condition`: branches on edge conditions (a passing non-default edge, a weighted draw
//! among several, else the default edge).

use super::Behaviour;
use crate::cx::{Cx, Next, Res, S};
use crate::edges;

pub(super) struct Condition;

impl<'k> Behaviour<'k> for Condition {
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        edges::follow(s, cx, None)?;
        Ok(Next::Moved)
    }
}
