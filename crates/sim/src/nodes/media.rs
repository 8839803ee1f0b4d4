//! `media`: shows an asset, or the asset generated from a spec once it is ready (the spec
//! until then); offers its edges as choices unless `auto`.

use domain::narrative::scene::GenerationSpec;

use super::{Behaviour, Shown, offer_or_advance};
use crate::cx::{Cx, Next, Res, S};
use crate::protocol::{self, Media as Shows};
use crate::resources::MediaLibrary;

pub(super) struct Media<'k> {
    pub asset: Option<&'k str>,
    pub generate: Option<&'k GenerationSpec>,
    pub auto: bool,
}

impl<'k> Behaviour<'k> for Media<'k> {
    fn shown(&self, library: &MediaLibrary) -> Shown {
        let media = match (self.asset, self.generate) {
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
        offer_or_advance(self.auto, s, cx)
    }

    fn generates(&self) -> Option<&'k GenerationSpec> {
        match (self.asset, self.generate) {
            (None, Some(g)) => Some(g),
            (Some(_), _) | (None, None) => None,
        }
    }
}
