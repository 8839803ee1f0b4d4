//! The samples added by revision 1 of version 2 (scene media features): every
//! `Playback` variant, a `Presentation` with hotspots and a group, `GameCommand::Continue`,
//! `GameEvent::PlaybackStep`, and a snapshot carrying a presentation. Appended after
//! the revision-0 samples.

use protocol::v2::{
    GameCommand, GameEvent, Hotspot, Playback, PlaybackStep, Presentation, ServerMessage,
};
use uuid::Uuid;

use super::event_samples::event;
use super::samples::{Sample, command, full_snapshot, s, server};

fn hotspots() -> Vec<Hotspot> {
    vec![
        Hotspot {
            id: s("keypad"),
            edge: s("try_crack"),
            label: Some(s("The keypad")),
            x: 6_200,
            y: 3_500,
            w: 1_200,
            h: 2_000,
        },
        Hotspot {
            id: s("corridor"),
            edge: s("back_off"),
            label: None,
            x: 0,
            y: 0,
            w: 10_000,
            h: 10_000,
        },
    ]
}

fn steps() -> Playback {
    Playback::Steps {
        steps: vec![
            PlaybackStep {
                label: Some(s("The guard turns")),
                start_ms: 0,
                end_ms: 1_500,
                minigame: None,
            },
            PlaybackStep {
                label: None,
                start_ms: 1_500,
                end_ms: 4_000,
                minigame: Some(s("reflex")),
            },
        ],
        current: 1,
    }
}

fn node_entered(presentation: Presentation) -> GameEvent {
    GameEvent::NodeEntered {
        scene: s("vault"),
        node: s("door"),
        kind: s("media"),
        media: None,
        media_pending: false,
        lines: vec![],
        prompt: None,
        presentation,
    }
}

pub(crate) fn samples() -> Vec<(String, Sample)> {
    vec![
        command("continue", 4, GameCommand::Continue),
        event(
            "node_entered.hotspots",
            18,
            20_016,
            node_entered(Presentation {
                playback: Playback::Loop {
                    start_ms: 1_000,
                    end_ms: 3_000,
                },
                skippable: true,
                loopable: false,
                hotspots: hotspots(),
                group: Some(s("The vault")),
            }),
        ),
        event(
            "node_entered.steps",
            19,
            20_032,
            node_entered(Presentation {
                playback: steps(),
                skippable: false,
                loopable: true,
                hotspots: vec![],
                group: None,
            }),
        ),
        event(
            "playback_step",
            20,
            21_000,
            GameEvent::PlaybackStep {
                node: s("door"),
                step: 2,
            },
        ),
        server(
            "session_joined.presentation",
            ServerMessage::SessionJoined {
                session_id: Uuid::from_u128(0x0190_b0a4_9c3e_7d21_8f00_1234_5678_9abd),
                scene: Some(s("vault")),
                next_seq: 21,
                ended: false,
                snapshot: protocol::v2::Snapshot {
                    presentation: Some(Presentation {
                        playback: steps(),
                        skippable: true,
                        loopable: true,
                        hotspots: hotspots(),
                        group: Some(s("heist")),
                    }),
                    ..full_snapshot()
                },
            },
        ),
    ]
}
