//! Per-kind node validation: one module per node kind, dispatched by [`check`], the one
//! exhaustive match over [`NodeKind`] in validation. Each kind declares how it advances
//! ([`super::flow::Flow`]) and checks its own fields. The shared types ([`NodeCx`], `Flow`,
//! `On`) live in [`super::flow`]; this module only dispatches.

mod action;
mod call;
mod choice;
mod condition;
mod dialogue;
mod end;
mod media;
mod minigame;
mod return_;

use domain::narrative::NodeKind;

use super::Ctx;
use super::flow::NodeCx;

/// Checks a node: its flow, then its kind's own rules.
pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>) {
    match &n.node.kind {
        NodeKind::Media {
            asset,
            clip,
            generate,
            branch,
            variant,
            auto,
            media,
            select,
            pool,
            playback,
            skippable: _,
            loopable: _,
            hotspots,
        } => media::check(
            c,
            n,
            &media::MediaNode {
                asset: asset.as_deref(),
                clip: clip.as_deref(),
                generate: generate.as_ref(),
                branch: branch.as_deref(),
                variant: variant.as_deref(),
                auto: *auto,
                media,
                select: *select,
                pool,
                playback,
                hotspots,
            },
        ),
        NodeKind::Dialogue { lines, auto } => dialogue::check(c, n, lines, *auto),
        NodeKind::Choice { prompt: _ } => choice::check(c, n),
        NodeKind::Condition {} => condition::check(c, n),
        NodeKind::Action { effects } => action::check(c, n, effects),
        NodeKind::MiniGame(spec) => minigame::check(c, n, spec),
        NodeKind::Call { scene, args, bind } => call::check(c, n, scene, args, bind),
        NodeKind::Return { values, route: _ } => return_::check(c, n, values),
        NodeKind::End { outcome: _ } => end::check(c, n),
    }
}
