//! `media`: shows an asset, or one generated from a spec.

use domain::narrative::scene::GenerationSpec;

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx, On};

pub(super) fn check(
    c: &mut Ctx<'_>,
    n: &NodeCx<'_>,
    asset: Option<&str>,
    generate: Option<&GenerationSpec>,
    auto: bool,
) {
    c.flow(
        n,
        Flow::Edges {
            auto,
            on: On::Forbidden,
        },
    );
    match (asset, generate) {
        (None, None) => c.at(Some(n.id()), "media node needs 'asset' or 'generate'"),
        (Some(_), Some(_)) => c.at(Some(n.id()), "media node has both 'asset' and 'generate'"),
        (Some(_), None) | (None, Some(_)) => {}
    }
}
