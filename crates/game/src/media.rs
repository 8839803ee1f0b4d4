//! Scene media wiring: the tick asks for media a session was shown as a generation spec
//! ([`MediaWanted`]); the server's media task answers with [`GameHandle::media_ready`].

use tokio::sync::mpsc;

use crate::{GameError, GameHandle, Inbound};

/// Scene media a session was shown as a generation spec: the simulation has no asset for
/// it yet. Sent once per node entry; the receiver (the server's media task) deduplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaWanted {
    /// Scene of the node.
    pub scene: String,
    /// Node.
    pub node: String,
    /// Spec: operation.
    pub operation: String,
    /// Spec: prompt.
    pub prompt: String,
    /// Spec: parameters (canonical JSON text).
    pub params: String,
}

/// Pending media requests beyond which new ones are dropped (the next entry asks again).
pub(crate) const MEDIA_QUEUE: usize = 256;

impl GameHandle {
    /// The stream of [`MediaWanted`] requests; `None` after the first call.
    pub fn take_media_requests(&self) -> Option<mpsc::Receiver<MediaWanted>> {
        self.shared
            .media_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Hands generated scene media to the simulation: sessions standing in a node with
    /// that spec get a `media_ready` event, later entries show the asset.
    pub fn media_ready(&self, ready: sim::MediaReady) -> Result<(), GameError> {
        self.send(Inbound::MediaReady(ready))
    }

    /// How far the generation of a spec has come: sessions standing in a node with that
    /// spec, its media still pending, get a `media_progress` event. The caller throttles
    /// (each is a durable, sequenced event of every such session).
    pub fn media_progress(&self, progress: sim::MediaProgress) -> Result<(), GameError> {
        self.send(Inbound::MediaProgress(progress))
    }
}
