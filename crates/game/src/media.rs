//! Scene media wiring: the tick asks for media a session was shown as a generation spec
//! ([`MediaWanted`]); the server's media task answers with [`GameHandle::media_ready`].
//! It also tells that task where sessions stand ([`Whereabouts`]), so media can be
//! generated ahead of the players who approach it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use uuid::Uuid;

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

/// Where sessions moved since the last report, the latest per session: the `(scene,
/// node)` a session entered, or `None` for a session done with (ended, or unloaded from
/// the tick). Sent at most once per tick; while the receiver lags, moves accumulate
/// (one entry per session) and go with a later tick, so none is lost.
pub type Whereabouts = HashMap<Uuid, Option<(String, String)>>;

/// Whereabouts reports waiting for the receiver.
pub(crate) const WHEREABOUTS_QUEUE: usize = 8;

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

    /// The stream of [`Whereabouts`]; `None` after the first call. The tick records
    /// moves only once it was taken.
    pub fn take_whereabouts(&self) -> Option<mpsc::Receiver<Whereabouts>> {
        let rx = self
            .shared
            .whereabouts_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if rx.is_some() {
            self.shared.whereabouts_taken.store(true, Ordering::Release);
        }
        rx
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
