//! `minigame`: starts the node's mini-game (see [`crate::minigame`]). A reflex game waits
//! for its rounds; a skill check resolves at once and takes the edge of its outcome.

use domain::narrative::MiniGameSpec;

use super::Behaviour;
use crate::cx::{Cx, Next, Res, S};
use crate::{edges, minigame};

pub(super) struct MiniGame<'k> {
    pub spec: &'k MiniGameSpec,
}

impl<'k> Behaviour<'k> for MiniGame<'k> {
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        match self.spec.game.as_str() {
            minigame::REFLEX => {
                minigame::start_reflex(s, cx, self.spec);
                Ok(Next::Stop)
            }
            minigame::SKILL_CHECK => {
                let outcome = minigame::skill_check(s, cx, self.spec)?;
                edges::follow(s, cx, Some(outcome.as_str()))?;
                Ok(Next::Moved)
            }
            other => Err(format!("unknown mini-game '{other}'")),
        }
    }

    fn resume_minigame(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>, round: u32, hits: u32) -> Res<()> {
        if self.spec.game != minigame::REFLEX {
            return Err(format!("cannot resume mini-game '{}'", self.spec.game));
        }
        minigame::resume_reflex(s, cx, self.spec, round, hits);
        Ok(())
    }
}
