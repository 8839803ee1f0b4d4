//! The samples added by revision 2 of version 2 (generation progress of pending scene
//! media): `GameEvent::MediaProgress`, queued and running. Appended after the revision-1
//! samples.

use protocol::v2::GameEvent;

use super::event_samples::event;
use super::samples::{Sample, s};

pub fn samples() -> Vec<(String, Sample)> {
    vec![
        event(
            "media_progress.queued",
            22,
            22_000,
            GameEvent::MediaProgress {
                scene: s("gallery"),
                node: s("arrive"),
                progress: 0,
                queue_position: Some(3),
                estimated_start_unix_ms: Some(1_765_112_345_678),
            },
        ),
        event(
            "media_progress.running",
            23,
            23_500,
            GameEvent::MediaProgress {
                scene: s("gallery"),
                node: s("arrive"),
                progress: 42,
                queue_position: None,
                estimated_start_unix_ms: None,
            },
        ),
    ]
}
