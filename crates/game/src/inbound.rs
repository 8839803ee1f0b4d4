//! What the async side sends the tick ([`Inbound`]) and the answer to a command
//! ([`CommandOutcome`]), released once its effect is committed.

use std::time::Instant;

use domain::narrative::SessionSave;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The answer to a command, released after its effect is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Applied; its events end at `through_seq` (none when it produced no event).
    Accepted { through_seq: Option<u64> },
    /// Refused (nothing changed).
    Rejected { code: String, message: String },
}

/// The tick's answer to a snapshot request, released with the batch of its tick (so
/// every event below `next_seq` is committed and published when it arrives).
#[derive(Debug)]
pub(crate) enum SnapshotReply {
    /// The session runs: its view after the tick, and the seq of its next event.
    Live {
        next_seq: u64,
        view: Box<sim::SessionView>,
    },
    /// The session is not running in the tick (ended, or unloaded).
    NotRunning,
}

/// Inbound messages to the tick.
pub(crate) enum Inbound {
    Start {
        session: Uuid,
        scene: Option<String>,
        seed: u64,
        next_seq: u64,
    },
    Resume {
        session: Uuid,
        save: Box<SessionSave>,
        next_seq: u64,
    },
    Command {
        session: Uuid,
        command: sim::Command,
        reply: oneshot::Sender<CommandOutcome>,
        /// When the command was received (the tick answers the longest-waiting first).
        received: Instant,
    },
    /// The session's state as of the end of the next tick (a join's snapshot).
    Snapshot {
        session: Uuid,
        reply: oneshot::Sender<SnapshotReply>,
    },
    /// Save the session and unload it from the tick (it is idle and detached).
    Unload { session: Uuid },
    /// Generated scene media is ready (world input).
    MediaReady(sim::MediaReady),
    /// How far pending scene media has come (world input).
    MediaProgress(sim::MediaProgress),
}
