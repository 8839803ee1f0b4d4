//! A media node's media features at run time: which of its several media an entry shows
//! ([`entered`]: in order per visit, seeded random, or from a tagged pool), how it is
//! presented ([`presentation`]: playback mode, flags, hotspots, group) and the progression
//! steps a player moves through with `continue` ([`proceed`]). A step that names a
//! mini-game starts it from the registry when it begins ([`begin`]); the session plays it
//! in `Phase::MiniGame` like a minigame node's, and once it is over ([`game_over`]) the
//! playback moves to the next step as `continue` does, following no edge.

use domain::narrative::media::{MediaItem, MediaSelect, PlaybackSpec, ten_thousandths};
use domain::narrative::{MiniGameSpec, Node, NodeKind, Scene};

use crate::components::{Phase, Playing};
use crate::cx::{Cx, Next, Res, S, parsed, with_ctx, wrong_state};
use crate::protocol::{Event, Hotspot, Playback, PlaybackStep, Presentation};
use crate::{minigame, nodes};

/// On entering `node`: picks the media it shows this time and starts its steps. A
/// weighted pick evaluates the media's conditions (an error in one is the session's).
pub(crate) fn entered(s: S<'_, '_, '_>, cx: &Cx<'_>, node: &Node) -> Res<()> {
    *s.playing = Playing::default();
    let NodeKind::Media {
        media,
        select,
        pool,
        ..
    } = &node.kind
    else {
        return Ok(());
    };
    if *select == MediaSelect::Weighted {
        s.playing.media = weighted(s, cx, media)?;
        return Ok(());
    }
    if media.len() < 2 {
        return Ok(());
    }
    let len = media.len() as u64;
    let pick = match select {
        MediaSelect::Ordered => {
            // The visit just counted: the first visit shows the first media.
            let visit = s.visits.0.node(&s.pos.scene, &s.pos.node).max(1);
            (u64::from(visit) - 1) % len
        }
        MediaSelect::Random => s.rng.0.range(0, len as i64 - 1) as u64,
        MediaSelect::Weighted => 0,
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
    Ok(())
}

/// The weighted draw (seeded) among the media whose condition holds; the first when
/// none does or every weight is 0.
fn weighted(s: S<'_, '_, '_>, cx: &Cx<'_>, media: &[MediaItem]) -> Res<u32> {
    let mut weights = Vec::with_capacity(media.len());
    for (i, m) in media.iter().enumerate() {
        let holds = match &m.condition {
            None => true,
            Some(c) => {
                let expr = parsed(c)?;
                with_ctx(s, cx.content, cx.now, |ctx| ctx.test(expr))
                    .map_err(|e| format!("media {i} condition: {e}"))?
            }
        };
        weights.push(if holds { m.weight.unwrap_or(1) } else { 0 });
    }
    Ok(s.rng.0.weighted(&weights).unwrap_or(0) as u32)
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
/// finished media node: it offers its choices, or advances when `auto`. Refused while a
/// step's mini-game runs (the game moves the playback on once it is over).
pub(crate) fn proceed(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
    if *s.phase != Phase::Playing {
        cx.reject("continue", wrong_state("continue", *s.phase));
        return Ok(Next::Stop);
    }
    next_step(s, cx)
}

/// The session's current node (a media node while its steps play).
fn current<'c>(s: S<'_, '_, '_>, cx: &Cx<'c>) -> Res<&'c Node> {
    let content = cx.content;
    content
        .node(&s.pos.scene, &s.pos.node)
        .ok_or_else(|| format!("scene '{}' has no node '{}'", s.pos.scene, s.pos.node))
}

/// The mini-game the step `step` of `node` runs, if it names one.
fn step_game(node: &Node, step: u32) -> Option<&MiniGameSpec> {
    node.kind
        .playback_steps()
        .get(step as usize)
        .and_then(|st| st.minigame.as_ref())
}

/// The step the playback stands at begins (on entering the node, or moved to): the
/// session waits for `continue`, or plays the step's mini-game. A game resolved at once
/// (a skill check) moves the playback on at once.
pub(crate) fn begin(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
    let node = current(s, cx)?;
    *s.phase = Phase::Playing;
    match step_game(node, s.playing.step) {
        Some(spec) => minigame::start(s, cx, spec),
        None => Ok(Next::Stop),
    }
}

/// A step's mini-game is over (whatever its outcome): the playback moves to the next
/// step as `continue` would.
pub(crate) fn game_over(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
    *s.phase = Phase::Playing;
    next_step(s, cx)
}

/// Moves to the next step (`playback_step`) and begins it; after the last step the node
/// finishes.
fn next_step(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
    let node = current(s, cx)?;
    let total = node.kind.playback_steps().len() as u32;
    s.playing.step = (s.playing.step + 1).min(total);
    cx.emit(Event::PlaybackStep {
        node: s.pos.node.clone(),
        step: s.playing.step,
    });
    if s.playing.step < total {
        return begin(s, cx);
    }
    nodes::finished(s, cx, node)
}
