//! `dialogue`: shows its lines; offers its edges as choices unless `auto`.

use domain::narrative::Line;

use super::{Behaviour, Shown, offer_or_advance};
use crate::cx::{Cx, Next, Res, S};
use crate::resources::MediaLibrary;

pub(super) struct Dialogue<'k> {
    pub lines: &'k [Line],
    pub auto: bool,
}

impl<'k> Behaviour<'k> for Dialogue<'k> {
    fn shown(&self, _media: &MediaLibrary, _pick: u32) -> Shown {
        Shown {
            lines: self.lines.to_vec(),
            ..Shown::default()
        }
    }

    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        offer_or_advance(self.auto, s, cx)
    }
}
