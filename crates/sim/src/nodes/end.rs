//! `end`: ends the session with the node's outcome.

use domain::narrative::EndOutcome;

use super::Behaviour;
use crate::cx::{Cx, Next, Res, S, end};
use crate::protocol::EndReason;

pub(super) struct End {
    pub outcome: EndOutcome,
}

impl<'k> Behaviour<'k> for End {
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        end(s, cx, EndReason::End(self.outcome));
        Ok(Next::Stop)
    }
}
