//! Scene graphs: nodes and edges, as written in `scenes/*.toml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::effect::Effect;
use super::expr::{ExprText, Type};
use super::media::{Group, HotspotSpec, MediaItem, MediaSelect, PlaybackSpec};

/// A scene: a directed graph of nodes entered at `entry`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Stable scene id.
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub id: String,
    /// Human title.
    pub title: String,
    /// Entry node id.
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub entry: String,
    /// The world the scene belongs to (default: the default world). A session lives in
    /// its scene's world and follows that world's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub world: Option<String>,
    /// Parameters accepted when called (`arg.NAME` inside the scene).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Type>,
    /// Values returned to the caller by `return` nodes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub returns: BTreeMap<String, Type>,
    /// Nodes.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Edges.
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Node groups (a node is in at most one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
}

/// A node: a stable id plus a kind-specific payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Node {
    /// Stable node id (unique within the scene).
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub id: String,
    /// The kind and its data.
    #[serde(flatten)]
    pub kind: NodeKind,
    /// Default `reveal_ms` of the node's edges (for an edge that sets none): its choices
    /// appear this long after the node is entered (media, dialogue and choice nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reveal_choices_ms: Option<u64>,
}

/// Node kinds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeKind {
    /// Shows a media asset (or one generated from a spec); offers its edges as choices
    /// unless `auto`.
    Media {
        /// A ready asset reference (`assets/…`, or a library asset's id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asset: Option<String>,
        /// A clip of the asset library (its id), played as its own file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clip: Option<String>,
        /// A generation spec the pipeline turns into an asset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generate: Option<GenerationSpec>,
        /// A branch point of the asset library (its id): on each entry one of its
        /// variants is drawn by weight among those whose condition holds and its video
        /// plays (the loader turns it into a weighted `media` list).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        /// A rendition to play instead of the file itself (`360p`, `720p`, `poster`),
        /// for library assets, clips and generated media.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        variant: Option<String>,
        /// Advance immediately along the default/only edge.
        #[serde(default)]
        auto: bool,
        /// Several media, one shown per entry as `select` picks it (instead of
        /// `asset`/`generate`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        media: Vec<MediaItem>,
        /// How `media` is picked: `ordered` (per visit), `random` or `pool`.
        #[serde(default, skip_serializing_if = "MediaSelect::is_default")]
        select: MediaSelect,
        /// `select = "pool"`: the tags a candidate must carry (all of them).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pool: Vec<String>,
        /// Playback mode (default `normal`).
        #[serde(default, skip_serializing_if = "PlaybackSpec::is_default")]
        playback: PlaybackSpec,
        /// The player may skip the media.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        skippable: bool,
        /// The player may replay the media.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        loopable: bool,
        /// Clickable regions over the video, each choosing an edge of this node.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        hotspots: Vec<HotspotSpec>,
    },
    /// Dialogue lines; offers its edges as choices unless `auto`.
    Dialogue {
        /// Lines in order.
        #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
        lines: Vec<Line>,
        /// Advance immediately along the default/only edge.
        #[serde(default)]
        auto: bool,
    },
    /// Offers the edges whose conditions hold as choices.
    Choice {
        /// Optional prompt text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
    },
    /// Branches on edge conditions: a passing non-default edge (weighted draw among
    /// several), else the default edge.
    Condition {},
    /// Applies effects then advances.
    Action {
        /// Effects applied on entry.
        #[serde(default)]
        effects: Vec<Effect>,
    },
    /// A server-resolved mini-game; outgoing edges select the outcome with `on`.
    #[serde(rename = "minigame")]
    MiniGame(MiniGameSpec),
    /// Calls another scene; on return, the edge whose `on` matches the return `route`
    /// (or the default/only edge) is taken.
    Call {
        /// Callee scene id.
        #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
        scene: String,
        /// Parameter bindings: callee param -> expression in the caller.
        #[serde(default)]
        args: BTreeMap<String, ExprText>,
        /// Return bindings: callee return name -> caller variable.
        #[serde(default)]
        bind: BTreeMap<String, String>,
    },
    /// Returns from a called scene.
    Return {
        /// Returned values: return name -> expression.
        #[serde(default)]
        values: BTreeMap<String, ExprText>,
        /// Route label matched against the caller's edges `on`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// Ends the session.
    End {
        /// Outcome.
        outcome: EndOutcome,
    },
}

impl NodeKind {
    /// Short kind name as used in files and events.
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Media { .. } => "media",
            NodeKind::Dialogue { .. } => "dialogue",
            NodeKind::Choice { .. } => "choice",
            NodeKind::Condition {} => "condition",
            NodeKind::Action { .. } => "action",
            NodeKind::MiniGame(_) => "minigame",
            NodeKind::Call { .. } => "call",
            NodeKind::Return { .. } => "return",
            NodeKind::End { .. } => "end",
        }
    }

    /// The scene a `call` node calls; `None` for every other kind.
    pub fn callee(&self) -> Option<&str> {
        match self {
            NodeKind::Call { scene, .. } => Some(scene),
            NodeKind::Media { .. }
            | NodeKind::Dialogue { .. }
            | NodeKind::Choice { .. }
            | NodeKind::Condition {}
            | NodeKind::Action { .. }
            | NodeKind::MiniGame(_)
            | NodeKind::Return { .. }
            | NodeKind::End { .. } => None,
        }
    }

    /// The route a `return` node returns with; `None` for other kinds and unrouted returns.
    pub fn return_route(&self) -> Option<&str> {
        match self {
            NodeKind::Return { route, .. } => route.as_deref(),
            NodeKind::Media { .. }
            | NodeKind::Dialogue { .. }
            | NodeKind::Choice { .. }
            | NodeKind::Condition {}
            | NodeKind::Action { .. }
            | NodeKind::MiniGame(_)
            | NodeKind::Call { .. }
            | NodeKind::End { .. } => None,
        }
    }

    /// The generation spec of a `media` node that has one.
    pub fn generation(&self) -> Option<&GenerationSpec> {
        match self {
            NodeKind::Media { generate, .. } => generate.as_ref(),
            NodeKind::Dialogue { .. }
            | NodeKind::Choice { .. }
            | NodeKind::Condition {}
            | NodeKind::Action { .. }
            | NodeKind::MiniGame(_)
            | NodeKind::Call { .. }
            | NodeKind::Return { .. }
            | NodeKind::End { .. } => None,
        }
    }
}

impl NodeKind {
    /// Every asset path a media node names (its `asset`, or its `media` list's); empty
    /// for every other kind.
    pub fn assets(&self) -> Vec<&str> {
        match self {
            NodeKind::Media {
                asset,
                media,
                generate,
                ..
            } => asset
                .as_deref()
                .into_iter()
                .chain(media.iter().filter_map(|m| m.asset.as_deref()))
                .chain(generate.iter().filter_map(|g| g.fallback.as_deref()))
                .chain(
                    media
                        .iter()
                        .filter_map(|m| m.generate.as_ref()?.fallback.as_deref()),
                )
                .collect(),
            NodeKind::Dialogue { .. }
            | NodeKind::Choice { .. }
            | NodeKind::Condition {}
            | NodeKind::Action { .. }
            | NodeKind::MiniGame(_)
            | NodeKind::Call { .. }
            | NodeKind::Return { .. }
            | NodeKind::End { .. } => Vec::new(),
        }
    }

    /// The progression steps of a media node playing steps; empty otherwise.
    pub fn playback_steps(&self) -> &[super::media::StepSpec] {
        match self {
            NodeKind::Media { playback, .. } => playback.steps(),
            NodeKind::Dialogue { .. }
            | NodeKind::Choice { .. }
            | NodeKind::Condition {}
            | NodeKind::Action { .. }
            | NodeKind::MiniGame(_)
            | NodeKind::Call { .. }
            | NodeKind::Return { .. }
            | NodeKind::End { .. } => &[],
        }
    }

    /// Every generation spec a media node names (its `generate`, or its `media`
    /// list's); empty for every other kind.
    pub fn generations(&self) -> Vec<&GenerationSpec> {
        match self {
            NodeKind::Media {
                generate, media, ..
            } => generate
                .iter()
                .chain(media.iter().filter_map(|m| m.generate.as_ref()))
                .collect(),
            NodeKind::Dialogue { .. }
            | NodeKind::Choice { .. }
            | NodeKind::Condition {}
            | NodeKind::Action { .. }
            | NodeKind::MiniGame(_)
            | NodeKind::Call { .. }
            | NodeKind::Return { .. }
            | NodeKind::End { .. } => Vec::new(),
        }
    }
}

/// A media generation request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GenerationSpec {
    /// Operation, e.g. `text_to_video`, `image_to_video`.
    #[cfg_attr(feature = "schema", schemars(extend("examples" = ["text_to_video", "image_to_video"])))]
    pub operation: String,
    /// Prompt text.
    pub prompt: String,
    /// Free-form parameters for the provider.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Media shown instead when the generation is refused (over a credit budget, no
    /// provider account) or fails: a file under `assets/`, as a media node's `asset`.
    /// Without it the players keep waiting for the media, and the operator's log says
    /// why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One dialogue line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Stable line id (for localisation and voice assets).
    pub id: String,
    /// Speaker entity id.
    pub speaker: String,
    /// Text.
    pub text: String,
}

/// How a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndOutcome {
    /// Success.
    Success,
    /// Failure.
    Failure,
    /// Neutral.
    Neutral,
}

/// Mini-game node data. `game` is a string so that validation can report unknown games.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MiniGameSpec {
    /// A registered mini-game's id (built in: `reflex`, `skill_check`).
    #[cfg_attr(feature = "schema", schemars(schema_with = "super::schema::mini_game"))]
    pub game: String,
    /// reflex: number of rounds (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1), extend("default" = REFLEX_DEFAULT_ROUNDS)))]
    pub rounds: Option<u32>,
    /// reflex: reaction window in ms (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1), extend("default" = REFLEX_DEFAULT_WINDOW_MS)))]
    pub window_ms: Option<u64>,
    /// reflex: rounds to hit for success (default: all rounds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub need: Option<u32>,
    /// skill_check: stat id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// skill_check: entity (default `player`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("default" = "player")))]
    pub entity: Option<String>,
    /// skill_check: axis (default `value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("default" = "value")))]
    pub axis: Option<String>,
    /// skill_check: die faces (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1), extend("default" = 20)))]
    pub die: Option<u32>,
    /// skill_check: difficulty to meet or beat with `stat + roll`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<i64>,
}

/// Known built-in mini-games.
pub const MINI_GAMES: &[&str] = &["reflex", "skill_check"];
/// reflex default rounds.
pub const REFLEX_DEFAULT_ROUNDS: u32 = 3;
/// reflex default window.
pub const REFLEX_DEFAULT_WINDOW_MS: u64 = 1000;

/// An edge between two nodes of the same scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// Stable edge id (unique within the scene).
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub id: String,
    /// Source node id.
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub from: String,
    /// Target node id.
    #[cfg_attr(feature = "schema", schemars(pattern(super::ident::IDENT)))]
    pub to: String,
    /// Choice label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Condition (bool expression); the edge is only offered/taken when it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ExprText>,
    /// Effects applied when the edge is taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    /// Weight for random auto-advance among several passing edges (default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
    /// Fallback edge.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// Delay after node entry before the choice may be taken.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reveal_ms: u64,
    /// After being taken, the edge cannot be taken again for this long.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cooldown_ms: u64,
    /// Outcome selector: `success`/`failure` after a mini-game, a return `route` after a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
}

fn one() -> u32 {
    1
}
fn is_one(w: &u32) -> bool {
    *w == 1
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}
