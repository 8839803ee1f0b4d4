//! `choice`: shows its prompt and offers the edges whose conditions hold.

use super::{Behaviour, Shown};
use crate::choices;
use crate::cx::{Cx, Next, Res, S};
use crate::resources::MediaLibrary;

pub(super) struct Choice<'k> {
    pub prompt: Option<&'k str>,
}

impl<'k> Behaviour<'k> for Choice<'k> {
    fn shown(&self, _media: &MediaLibrary, _pick: u32) -> Shown {
        Shown {
            prompt: self.prompt.map(str::to_owned),
            ..Shown::default()
        }
    }

    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        choices::offer(s, cx)?;
        Ok(Next::Stop)
    }
}
