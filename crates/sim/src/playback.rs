//! A media node's media features at run time: which of its several media an entry shows
//! ([`entered`]: in order per visit, seeded random, or from a tagged pool), how it is
//! presented ([`presentation`]: playback mode, flags, hotspots, group) and the progression
//! steps a player moves through with `continue` ([`proceed`]).

use domain::narrative::media::{MediaSelect, PlaybackSpec, ten_thousandths};
use domain::narrative::{Node, NodeKind, Scene};

use crate::components::{Phase, Playing};
use crate::cx::{Cx, Next, Res, S, wrong_state};
use crate::nodes;
use crate::protocol::{Event, Hotspot, Playback, PlaybackStep, Presentation};

/// On entering `node`: picks the media it shows this time and starts its steps.
pub(crate) fn entered(s: S<'_, '_, '_>, node: &Node) {
    *s.playing = Playing::default();
    let NodeKind::Media {
        media,
        select,
        pool,
        ..
    } = &node.kind
    else {
        return;
    };
    if media.len() < 2 {
        return;
    }
    let len = media.len() as u64;
    let pick = match select {
        MediaSelect::Ordered => {
            // The visit just counted: the first visit shows the first media.
            let visit = s.visits.0.node(&s.pos.scene, &s.pos.node).max(1);
            (u64::from(visit) - 1) % len
        }
        MediaSelect::Random => s.rng.0.range(0, len as i64 - 1) as u64,
        MediaSelect::Pool => {
            let candidates: Vec<usize> = media
                .iter()
                .enumerate()
                .filter(|(_, m)| pool.iter().all(|t| m.tags.contains(t)))
                .map(|(i, _)| i)
                .collect();
            match candidates.len() {
                0 => 0,
                n => candidates[s.rng.0.range(0, n as i64 - 1) as usize] as u64,
            }
        }
    };
    s.playing.media = pick as u32;
}

/// How `node` of `scene` is presented with `playing`; `None` when it is the default
/// presentation (normal playback, no flags, hotspots or group).
pub(crate) fn presentation(
    scene: Option<&Scene>,
    node: &Node,
    playing: Playing,
) -> Option<Box<Presentation>> {
    let group = scene.and_then(|s| {
        s.groups
            .iter()
            .find(|g| g.nodes.contains(&node.id))
            .map(|g| g.label.clone().unwrap_or_else(|| g.id.clone()))
    });
    let mut p = Presentation {
        group,
        ..Presentation::default()
    };
    if let NodeKind::Media {
        playback,
        skippable,
        loopable,
        hotspots,
        ..
    } = &node.kind
    {
        p.skippable = *skippable;
        p.loopable = *loopable;
        p.playback = match playback {
            PlaybackSpec::Normal => Playback::Normal,
            PlaybackSpec::Loop { start_ms, end_ms } => Playback::Loop {
                start_ms: *start_ms,
                end_ms: *end_ms,
            },
            PlaybackSpec::Steps { steps } => Playback::Steps {
                steps: steps
                    .iter()
                    .map(|st| PlaybackStep {
                        label: st.label.clone(),
                        start_ms: st.start_ms,
                        end_ms: st.end_ms,
                        minigame: st.minigame.as_ref().map(|m| m.game.clone()),
                    })
                    .collect(),
                current: playing.step,
            },
        };
        p.hotspots = hotspots
            .iter()
            .map(|h| Hotspot {
                id: h.id.clone(),
                edge: h.edge.clone(),
                label: h.label.clone().or_else(|| {
                    scene
                        .and_then(|s| s.edges.iter().find(|e| e.id == h.edge))
                        .and_then(|e| e.label.clone())
                }),
                x: ten_thousandths(h.x),
                y: ten_thousandths(h.y),
                w: ten_thousandths(h.w),
                h: ten_thousandths(h.h),
            })
            .collect();
    }
    (p != Presentation::default()).then(|| Box::new(p))
}

/// `continue`: moves the steps playback on. After the last step the node behaves as a
/// finished media node: it offers its choices, or advances when `auto`.
pub(crate) fn proceed(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
    if *s.phase != Phase::Playing {
        cx.reject("continue", wrong_state("continue", *s.phase));
        return Ok(Next::Stop);
    }
    let content = cx.content;
    let node = content
        .node(&s.pos.scene, &s.pos.node)
        .ok_or_else(|| format!("scene '{}' has no node '{}'", s.pos.scene, s.pos.node))?;
    let total = node.kind.playback_steps().len() as u32;
    s.playing.step = (s.playing.step + 1).min(total);
    cx.emit(Event::PlaybackStep {
        node: s.pos.node.clone(),
        step: s.playing.step,
    });
    if s.playing.step < total {
        return Ok(Next::Stop);
    }
    nodes::finished(s, cx, node)
}
