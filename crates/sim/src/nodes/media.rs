//! `media`: shows an asset, or the asset generated from a spec once it is ready (the spec
//! until then), or the one of its several media picked on entry ([`crate::playback`]);
//! plays its progression steps, if any (the session waits in `Phase::Playing` for
//! `continue`, or plays a step's mini-game); then offers its edges as choices unless
//! `auto`.

use domain::narrative::media::{MediaItem, StepSpec};
use domain::narrative::scene::GenerationSpec;

use super::{Behaviour, Shown, offer_or_advance};
use crate::cx::{Cx, Next, Res, S};
use crate::protocol::{self, Media as Shows};
use crate::resources::MediaLibrary;
use crate::{minigame, playback};

pub(super) struct Media<'k> {
    /// The asset, or the clip (a clip's id is its asset's).
    pub asset: Option<&'k str>,
    /// The rendition to play (`360p`, `720p`, `poster`), where the media has one.
    pub variant: Option<&'k str>,
    pub generate: Option<&'k GenerationSpec>,
    pub auto: bool,
    pub media: &'k [MediaItem],
    /// The progression steps (none unless the playback is `steps`).
    pub steps: &'k [StepSpec],
}

impl<'k> Behaviour<'k> for Media<'k> {
    fn shown(&self, library: &MediaLibrary, pick: u32) -> Shown {
        let (asset, generate, variant) = match self.media.get(pick as usize).or(self.media.first())
        {
            Some(item) => (
                item.asset.as_deref().or(item.clip.as_deref()),
                item.generate.as_ref(),
                item.variant.as_deref().or(self.variant),
            ),
            None => (self.asset, self.generate, self.variant),
        };
        let variant = variant.map(str::to_owned);
        let media = match (asset, generate) {
            (Some(asset), _) => Some(Shows::Asset {
                asset: asset.to_owned(),
                variant,
            }),
            (None, Some(g)) => Some(
                match library.get(&g.operation, &g.prompt, &protocol::spec_params(g)) {
                    Some(asset) => Shows::Asset {
                        asset: asset.clone(),
                        variant,
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
        if (s.playing.step as usize) < self.steps.len() {
            s.choices.0.clear();
            return playback::begin(s, cx);
        }
        offer_or_advance(self.auto, s, cx)
    }

    /// A save made inside the mini-game of the step the playback stands at.
    fn resume_minigame(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>, round: u32, hits: u32) -> Res<()> {
        let step = s.playing.step;
        let spec = self
            .steps
            .get(step as usize)
            .and_then(|st| st.minigame.as_ref())
            .ok_or_else(|| format!("step {step} of the saved node runs no mini-game"))?;
        minigame::resume(s, cx, spec, round, hits)
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
