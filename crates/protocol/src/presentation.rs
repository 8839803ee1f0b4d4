//! How a node's media is played (revision 1 of protocol version 2): the playback mode
//! (normal, a looped segment, progression steps), the `skippable` and `loopable` flags,
//! the hotspots over the video and the node's group. Sent in
//! [`crate::v2::GameEvent::NodeEntered`] and in the join [`crate::v2::Snapshot`].

use serde::{Deserialize, Serialize};

/// How the current node's media plays and what can be clicked over it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presentation {
    /// The playback mode.
    pub playback: Playback,
    /// The player may skip the media (jump to its end, where the choices are).
    pub skippable: bool,
    /// The player may replay the media from its start.
    pub loopable: bool,
    /// Clickable regions over the video, each choosing an edge.
    pub hotspots: Vec<Hotspot>,
    /// The display name of the node's group (its label, else its id), if it is in one.
    pub group: Option<String>,
}

/// A playback mode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Playback {
    /// Tag 0. Play the media once, from start to end.
    #[default]
    Normal,
    /// Tag 1. Play, then loop the segment `[start_ms, end_ms]` of the media.
    Loop {
        /// Segment start (ms into the media).
        start_ms: u32,
        /// Segment end (ms into the media).
        end_ms: u32,
    },
    /// Tag 2. Progression steps: play step `current`'s segment, then wait for
    /// `GameCommand::Continue`; `current` equal to the number of steps means every step
    /// has played (the node then behaves as a finished media node).
    Steps {
        /// The steps, in order.
        steps: Vec<PlaybackStep>,
        /// The step playing now (0-based).
        current: u32,
    },
}

/// One progression step: a segment of the media, optionally with a mini-game.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackStep {
    /// Label.
    pub label: Option<String>,
    /// Segment start (ms into the media).
    pub start_ms: u32,
    /// Segment end (ms into the media).
    pub end_ms: u32,
    /// The mini-game played in this step (its rounds come as mini-game events).
    pub minigame: Option<String>,
}

/// A clickable rectangle over the video: choosing it is `GameCommand::Choose` with its
/// edge. Coordinates are in ten-thousandths of the video's width and height (0..=10000),
/// from its top-left corner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hotspot {
    /// Hotspot id (unique in the node).
    pub id: String,
    /// The edge it chooses (also in `ChoicesOffered` when offered).
    pub edge: String,
    /// Label (a tooltip or an accessible name).
    pub label: Option<String>,
    /// Left edge.
    pub x: u16,
    /// Top edge.
    pub y: u16,
    /// Width.
    pub w: u16,
    /// Height.
    pub h: u16,
}
