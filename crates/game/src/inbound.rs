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
    /// Save the session and unload it from the tick (it is idle and detached).
    Unload { session: Uuid },
    /// Generated scene media is ready (world input).
    MediaReady(sim::MediaReady),
}
