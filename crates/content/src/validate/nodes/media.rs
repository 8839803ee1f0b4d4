//! `media`: shows an asset, or one generated from a spec, or one of several media picked
//! per entry; its playback (a loop segment or progression steps) and its hotspots.

use std::collections::BTreeSet;

use domain::narrative::expr::Type;
use domain::narrative::media::{HotspotSpec, MediaItem, MediaSelect, PlaybackSpec, VARIANTS};
use domain::narrative::scene::GenerationSpec;

use super::super::flow::{Flow, NodeCx, On};
use super::super::{Ctx, is_ident};

/// A media node's fields.
pub(super) struct MediaNode<'k> {
    pub asset: Option<&'k str>,
    pub clip: Option<&'k str>,
    pub generate: Option<&'k GenerationSpec>,
    pub branch: Option<&'k str>,
    pub variant: Option<&'k str>,
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

/// One form: `asset`, `clip` or `generate`, or a `media` list whose items have one of
/// them each, or a `branch` (which the loader turns into a weighted `media` list from the
/// asset library); a `variant` names a known rendition of library media.
fn sources(c: &mut Ctx<'_>, n: &NodeCx<'_>, m: &MediaNode<'_>) {
    let given: Vec<&str> = [
        ("asset", m.asset.is_some()),
        ("clip", m.clip.is_some()),
        ("generate", m.generate.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    // A branch's media list comes from the asset library (`crate::library::resolve`
    // reports a branch it could not load).
    if m.branch.is_some() {
        if !given.is_empty() {
            c.at(
                Some(n.id()),
                format!("media node has both 'branch' and '{}'", given.join("', '")),
            );
        }
    } else if !given.is_empty() && !m.media.is_empty() {
        c.at(
            Some(n.id()),
            format!(
                "media node has both '{}' and a 'media' list",
                given.join("', '")
            ),
        );
        return;
    } else if m.media.is_empty() {
        match given.len() {
            0 => c.at(
                Some(n.id()),
                "media node needs 'asset', 'clip', 'generate', 'branch' or a 'media' list",
            ),
            1 => {}
            _ => c.at(
                Some(n.id()),
                format!("media node has both '{}'", given.join("' and '")),
            ),
        }
    }
    variant(
        c,
        n,
        "",
        m.variant,
        m.asset,
        m.clip,
        m.generate.is_some() || m.branch.is_some(),
    );
    for (i, item) in m.media.iter().enumerate() {
        let set = [
            item.asset.is_some(),
            item.clip.is_some(),
            item.generate.is_some(),
        ];
        match set.iter().filter(|s| **s).count() {
            0 => c.at(
                Some(n.id()),
                format!("media {i} needs 'asset', 'clip' or 'generate'"),
            ),
            1 => {}
            _ => c.at(
                Some(n.id()),
                format!("media {i} has more than one of 'asset', 'clip' and 'generate'"),
            ),
        }
        let library = item.generate.is_some() || m.branch.is_some();
        variant(
            c,
            n,
            &format!("media {i}: "),
            item.variant.as_deref().or(m.variant),
            item.asset.as_deref(),
            item.clip.as_deref(),
            library,
        );
    }
}

/// A variant is a known rendition, of media the library holds (a library asset's id, a
/// clip, generated media): a scene's own file or a URL has no renditions.
fn variant(
    c: &mut Ctx<'_>,
    n: &NodeCx<'_>,
    at: &str,
    variant: Option<&str>,
    asset: Option<&str>,
    clip: Option<&str>,
    library: bool,
) {
    let Some(v) = variant else { return };
    if !VARIANTS.contains(&v) {
        c.at(
            Some(n.id()),
            format!("{at}variant '{v}' is none of {}", VARIANTS.join(", ")),
        );
        return;
    }
    let library_asset = asset.is_some_and(crate::assets::uuid_like);
    if asset.is_some() && !library_asset && clip.is_none() && !library {
        c.at(
            Some(n.id()),
            format!("{at}variant '{v}' needs media of the asset library (a library asset's id, a clip or generated media), not a scene file or URL"),
        );
    }
}

/// `select` and `pool` fit the media list.
fn selection(c: &mut Ctx<'_>, n: &NodeCx<'_>, m: &MediaNode<'_>) {
    match m.select {
        MediaSelect::Ordered | MediaSelect::Random | MediaSelect::Weighted => {
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
    if m.select == MediaSelect::Weighted {
        if m.media.is_empty() {
            c.at(Some(n.id()), "select = \"weighted\" needs a 'media' list");
        } else if m.media.iter().all(|i| i.weight == Some(0)) {
            c.at(Some(n.id()), "select = \"weighted\": every weight is 0");
        }
        for (i, item) in m.media.iter().enumerate() {
            if let Some(cond) = &item.condition
                && let Some(t) = c.expr(
                    n.id(),
                    &format!("media {i} condition"),
                    cond,
                    &n.scene.params,
                )
                && t != Type::Bool
            {
                c.at(
                    Some(n.id()),
                    format!("media {i} condition: '{}' is {t}, expected bool", cond.src),
                );
            }
        }
    } else {
        if !several && m.select != MediaSelect::Ordered {
            c.at(Some(n.id()), "'select' needs a 'media' list of two or more");
        }
        if m.media
            .iter()
            .any(|i| i.weight.is_some() || i.condition.is_some())
        {
            c.at(
                Some(n.id()),
                "a media 'weight' or 'condition' is only used with select = \"weighted\"",
            );
        }
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
