//! `media`: shows an asset, or one generated from a spec, or one of several media picked
//! per entry; its playback (a loop segment or progression steps) and its hotspots.

use std::collections::BTreeSet;

use domain::narrative::media::{HotspotSpec, MediaItem, MediaSelect, PlaybackSpec};
use domain::narrative::scene::GenerationSpec;

use super::super::flow::{Flow, NodeCx, On};
use super::super::{Ctx, is_ident};

/// A media node's fields.
pub(super) struct MediaNode<'k> {
    pub asset: Option<&'k str>,
    pub generate: Option<&'k GenerationSpec>,
    pub auto: bool,
    pub media: &'k [MediaItem],
    pub select: MediaSelect,
    pub pool: &'k [String],
    pub playback: &'k PlaybackSpec,
    pub hotspots: &'k [HotspotSpec],
}

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>, m: &MediaNode<'_>) {
    c.flow(
        n,
        Flow::Edges {
            auto: m.auto,
            on: On::Forbidden,
        },
    );
    sources(c, n, m);
    selection(c, n, m);
    playback(c, n, m.playback);
    hotspots(c, n, m);
}

/// One form: `asset`/`generate`, or a `media` list whose items have one each.
fn sources(c: &mut Ctx<'_>, n: &NodeCx<'_>, m: &MediaNode<'_>) {
    let single = m.asset.is_some() || m.generate.is_some();
    if single && !m.media.is_empty() {
        c.at(
            Some(n.id()),
            "media node has both 'asset'/'generate' and a 'media' list",
        );
        return;
    }
    if m.media.is_empty() {
        match (m.asset, m.generate) {
            (None, None) => c.at(
                Some(n.id()),
                "media node needs 'asset', 'generate' or a 'media' list",
            ),
            (Some(_), Some(_)) => c.at(Some(n.id()), "media node has both 'asset' and 'generate'"),
            (Some(_), None) | (None, Some(_)) => {}
        }
    }
    for (i, item) in m.media.iter().enumerate() {
        match (&item.asset, &item.generate) {
            (None, None) => c.at(
                Some(n.id()),
                format!("media {i} needs 'asset' or 'generate'"),
            ),
            (Some(_), Some(_)) => c.at(
                Some(n.id()),
                format!("media {i} has both 'asset' and 'generate'"),
            ),
            (Some(_), None) | (None, Some(_)) => {}
        }
    }
}

/// `select` and `pool` fit the media list.
fn selection(c: &mut Ctx<'_>, n: &NodeCx<'_>, m: &MediaNode<'_>) {
    match m.select {
        MediaSelect::Ordered | MediaSelect::Random => {
            if !m.pool.is_empty() {
                c.at(Some(n.id()), "'pool' is only used with select = \"pool\"");
            }
        }
        MediaSelect::Pool => {
            if m.pool.is_empty() {
                c.at(Some(n.id()), "select = \"pool\" needs 'pool' tags");
            } else if !m
                .media
                .iter()
                .any(|item| m.pool.iter().all(|t| item.tags.contains(t)))
            {
                c.at(
                    Some(n.id()),
                    format!("no media carries every pool tag {:?}", m.pool),
                );
            }
        }
    }
    let several = m.media.len() > 1;
    if !several && m.select != MediaSelect::Ordered {
        c.at(Some(n.id()), "'select' needs a 'media' list of two or more");
    }
}

/// A loop's segment and each step's segment run forwards; a step's mini-game is checked
/// as a minigame node's spec is (its game in the registry, its parameters by its rules).
fn playback(c: &mut Ctx<'_>, n: &NodeCx<'_>, p: &PlaybackSpec) {
    match p {
        PlaybackSpec::Normal => {}
        PlaybackSpec::Loop { start_ms, end_ms } => {
            if start_ms >= end_ms {
                c.at(
                    Some(n.id()),
                    format!("loop segment [{start_ms}, {end_ms}] ms is empty or reversed"),
                );
            }
        }
        PlaybackSpec::Steps { steps } => {
            if steps.is_empty() {
                c.at(Some(n.id()), "steps playback has no steps");
            }
            for (i, s) in steps.iter().enumerate() {
                if s.start_ms >= s.end_ms {
                    c.at(
                        Some(n.id()),
                        format!(
                            "step {i}: segment [{}, {}] ms is empty or reversed",
                            s.start_ms, s.end_ms
                        ),
                    );
                }
                if let Some(spec) = &s.minigame {
                    super::minigame::game(c, n.id(), &format!("step {i}: "), spec);
                }
            }
        }
    }
}

/// Unique ids, an edge leaving this node, a rectangle inside the video.
fn hotspots(c: &mut Ctx<'_>, n: &NodeCx<'_>, m: &MediaNode<'_>) {
    if m.auto && !m.hotspots.is_empty() {
        c.at(
            Some(n.id()),
            "hotspots on a node that advances automatically (auto = true) are never offered",
        );
    }
    let mut ids = BTreeSet::new();
    for h in m.hotspots {
        let at = format!("hotspot '{}'", h.id);
        if !is_ident(&h.id) {
            c.at(Some(n.id()), format!("{at}: id is not an identifier"));
        }
        if !ids.insert(h.id.as_str()) {
            c.at(Some(n.id()), format!("duplicate hotspot id '{}'", h.id));
        }
        if !n.edges.iter().any(|e| e.id == h.edge) {
            let why = match n.scene.edges.iter().find(|e| e.id == h.edge) {
                Some(e) => format!("leaves node '{}', not this one", e.from),
                None => "does not exist".to_owned(),
            };
            c.at(Some(n.id()), format!("{at}: edge '{}' {why}", h.edge));
        }
        let coords = [("x", h.x), ("y", h.y), ("w", h.w), ("h", h.h)];
        for (name, v) in coords {
            if !(0.0..=1.0).contains(&v) {
                c.at(
                    Some(n.id()),
                    format!("{at}: {name} = {v} is outside [0, 1]"),
                );
            }
        }
        if h.w <= 0.0 || h.h <= 0.0 {
            c.at(Some(n.id()), format!("{at}: the rectangle is empty"));
        }
        // A tolerance for decimal fractions that add up to 1 (0.7 + 0.3).
        if h.x + h.w > 1.0 + 1e-9 || h.y + h.h > 1.0 + 1e-9 {
            c.at(
                Some(n.id()),
                format!(
                    "{at}: the rectangle reaches past the video (x + w and y + h must be at most 1)"
                ),
            );
        }
    }
}
