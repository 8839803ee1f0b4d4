//! A media node's media features, as written in `scenes/*.toml`: several media chosen
//! per entry ([`MediaItem`], [`MediaSelect`]), the playback mode ([`PlaybackSpec`],
//! [`StepSpec`]), hotspots over the video ([`HotspotSpec`]); and the scene's node groups
//! ([`Group`]). The simulation runs them; the content crate validates them.

use serde::{Deserialize, Serialize};

use super::scene::{GenerationSpec, MiniGameSpec};

/// One of a node's several media: a ready asset, a clip of the asset library or a
/// generation spec, with tags for pool selection and a weight and condition for a
/// weighted selection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MediaItem {
    /// A ready asset reference (`assets/…`, or a library asset's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// A clip of the asset library (its id), played as its own file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<String>,
    /// A generation spec the pipeline turns into an asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<GenerationSpec>,
    /// A rendition of a library asset, clip or generated media to play instead of the
    /// file itself: `360p`, `720p` or `poster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Tags, matched by the node's `pool` when `select = "pool"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `select = "weighted"`: relative weight in the draw (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// `select = "weighted"`: drawn only while this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<super::expr::ExprText>,
}

/// The variant (rendition) names a media node may prefer.
pub const VARIANTS: &[&str] = &["360p", "720p", "poster"];

/// How a node with several media picks the one it shows on each entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MediaSelect {
    /// In order, one per visit (the first visit shows the first), wrapping around.
    #[default]
    Ordered,
    /// At random, drawn from the session's seeded generator.
    Random,
    /// At random among the media carrying every tag the node's `pool` names.
    Pool,
    /// Drawn by `weight` (seeded) among the media whose `condition` holds (a branch
    /// point of the asset library is played this way).
    Weighted,
}

impl MediaSelect {
    /// True for the default (`ordered`), which a file may leave out.
    pub fn is_default(&self) -> bool {
        *self == MediaSelect::Ordered
    }
}

/// How a media node's media plays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlaybackSpec {
    /// Play once.
    #[default]
    Normal,
    /// Play, then loop the segment `[start_ms, end_ms]`.
    Loop {
        /// Segment start (ms into the media).
        start_ms: u32,
        /// Segment end (ms into the media), after `start_ms`.
        end_ms: u32,
    },
    /// Progression steps: each step's segment plays, then the player continues (a step
    /// with a mini-game moves on by itself once its game is over); after the last step
    /// the node offers its choices (or advances when `auto`).
    Steps {
        /// The steps, in order (at least one).
        #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
        steps: Vec<StepSpec>,
    },
}

impl PlaybackSpec {
    /// True for the default (`normal`), which a file may leave out.
    pub fn is_default(&self) -> bool {
        *self == PlaybackSpec::Normal
    }

    /// The steps of a `steps` playback (empty for the other modes).
    pub fn steps(&self) -> &[StepSpec] {
        match self {
            PlaybackSpec::Steps { steps } => steps,
            PlaybackSpec::Normal | PlaybackSpec::Loop { .. } => &[],
        }
    }
}

/// One progression step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Label shown for the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Segment start (ms into the media).
    pub start_ms: u32,
    /// Segment end (ms into the media), after `start_ms`.
    pub end_ms: u32,
    /// A mini-game the server runs when this step begins, with a minigame node's
    /// parameters (`minigame = { game = "reflex", rounds = 2 }`). Its outcome follows no
    /// edge: once it is over the playback moves on to the next step, as `continue` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minigame: Option<MiniGameSpec>,
}

/// A clickable rectangle over the node's video, choosing an edge leaving the node.
/// Coordinates are fractions (0.0-1.0) of the video's width and height from its top-left
/// corner; the rectangle lies within the video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HotspotSpec {
    /// Hotspot id (unique in the node).
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub id: String,
    /// The edge it chooses (an edge leaving this node).
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub edge: String,
    /// Label (tooltip); the edge's label when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Left edge (0.0-1.0).
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub x: f64,
    /// Top edge (0.0-1.0).
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub y: f64,
    /// Width (0.0-1.0, `x + w <= 1`).
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub w: f64,
    /// Height (0.0-1.0, `y + h <= 1`).
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub h: f64,
}

/// Ten-thousandths of a fraction in `[0, 1]` (the wire's unit), rounded.
pub fn ten_thousandths(f: f64) -> u16 {
    // In range after validation; clamped so a bad value can never wrap.
    (f.clamp(0.0, 1.0) * 10_000.0).round() as u16
}

/// A named group of nodes of one scene (a chapter, a room): a player shows the group of
/// the node it stands at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Group id (unique in the scene).
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub id: String,
    /// Display name (default: the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Node ids of this scene; a node is in at most one group.
    pub nodes: Vec<String>,
}
