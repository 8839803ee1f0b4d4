//! The sending side of the cross-node link ([`crate::cluster`]): the messages a node
//! publishes and the queue they wait in. Its own module so that [`crate::shared`]
//! (which sends) and `cluster` (which publishes) do not import each other.

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::events::GenerationEvent;

/// What a node publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Message {
    Wake,
    Event {
        event: Box<GenerationEvent>,
    },
    Cancel {
        job_id: Uuid,
    },
    /// A provider's webhook said this submission changed: whoever polls it, polls now.
    Poll {
        remote_id: String,
    },
}

/// The sending side, installed in [`crate::shared::Shared`] once Redis is configured.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Message>,
    wake: Notify,
}

impl Outbox {
    pub(crate) fn new(tx: mpsc::Sender<Message>) -> Self {
        Outbox {
            tx,
            wake: Notify::new(),
        }
    }

    /// Queues a message; false when the queue is full (the message is dropped).
    pub(crate) fn send(&self, msg: Message) -> bool {
        self.tx.try_send(msg).is_ok()
    }

    /// Asks for one `wake` message (many calls before it goes out make one).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when a `wake` message was asked for.
    pub(crate) async fn wake_requested(&self) {
        self.wake.notified().await
    }
}
