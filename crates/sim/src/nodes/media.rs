//! `media`: shows an asset, or the asset generated from a spec once it is ready (the spec
//! until then), or the one of its several media picked on entry ([`crate::playback`]);
//! plays its progression steps, if any (the session waits in `Phase::Playing` for
//! `continue`); then offers its edges as choices unless `auto`.

use domain::narrative::media::MediaItem;
use domain::narrative::scene::GenerationSpec;

use super::{Behaviour, Shown, offer_or_advance};
use crate::components::Phase;
use crate::cx::{Cx, Next, Res, S};
use crate::protocol::{self, Media as Shows};
use crate::resources::MediaLibrary;

pub(super) struct Media<'k> {
    pub asset: Option<&'k str>,
    pub generate: Option<&'k GenerationSpec>,
    pub auto: bool,
    pub media: &'k [MediaItem],
    /// Number of progression steps (0 unless the playback is `steps`).
    pub steps: usize,
}

impl<'k> Behaviour<'k> for Media<'k> {
    fn shown(&self, library: &MediaLibrary, pick: u32) -> Shown {
        let (asset, generate) = match self.media.get(pick as usize).or(self.media.first()) {
            Some(item) => (item.asset.as_deref(), item.generate.as_ref()),
            None => (self.asset, self.generate),
        };
        let media = match (asset, generate) {
            (Some(asset), _) => Some(Shows::Asset {
                asset: asset.to_owned(),
            }),
            (None, Some(g)) => Some(
                match library.get(&g.operation, &g.prompt, &protocol::spec_params(g)) {
                    Some(asset) => Shows::Asset {
                        asset: asset.clone(),
                    },
                    None => Shows::from_spec(g),
                },
            ),
            (None, None) => None,
        };
        Shown {
            media: media.map(Box::new),
            ..Shown::default()
        }
    }

    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        if (s.playing.step as usize) < self.steps {
            s.choices.0.clear();
            *s.phase = Phase::Playing;
            return Ok(Next::Stop);
        }
        offer_or_advance(self.auto, s, cx)
    }

    /// The single form's spec (a session standing at the node is pushed its asset when
    /// ready); a node with several media gets its generated media on its next entry.
    fn generates(&self) -> Option<&'k GenerationSpec> {
        match (self.asset, self.generate) {
            (None, Some(g)) => Some(g),
            (Some(_), _) | (None, None) => None,
        }
    }
}
