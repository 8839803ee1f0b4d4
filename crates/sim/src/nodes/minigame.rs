//! `minigame`: starts the node's game from the registry (see [`crate::minigame`]). A
//! game that waits (reflex rounds) keeps the session in it; one resolved at once (a
//! skill check) takes the edge of its outcome.

use domain::narrative::MiniGameSpec;

use super::Behaviour;
use crate::cx::{Cx, Next, Res, S};
use crate::minigame;

pub(super) struct MiniGame<'k> {
    pub spec: &'k MiniGameSpec,
}

impl<'k> Behaviour<'k> for MiniGame<'k> {
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        minigame::start(s, cx, self.spec)
    }

    fn resume_minigame(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>, round: u32, hits: u32) -> Res<()> {
        minigame::resume(s, cx, self.spec, round, hits)
    }
}
