//! The event samples of the golden vectors: every `GameEvent` variant inside a
//! `ServerMessage::Event`, with every `Change` variant, options none and some, empty and
//! non-empty lists and the extremes of the JSON-safe integer range.

use protocol::v2::{
    Change, Choice, EventBody, GameEvent, Line, Media, Presentation, ServerMessage,
};

use super::samples::{Sample, s};

pub(crate) fn event(name: &str, seq: u64, at_ms: i64, event: GameEvent) -> (String, Sample) {
    (
        format!("server.event.{name}"),
        Sample::Server(ServerMessage::Event {
            seq,
            at_ms,
            event: EventBody::Known(event),
        }),
    )
}

pub(crate) fn event_samples() -> Vec<(String, Sample)> {
    vec![
        event(
            "session_started",
            0,
            0,
            GameEvent::SessionStarted {
                scene: s("prologue"),
                content_version: s("3f2a9c"),
            },
        ),
        event(
            "resumed",
            12,
            64_000,
            GameEvent::Resumed {
                scene: s("prologue"),
                node: s("crossroads"),
                notes: vec![],
            },
        ),
        event(
            "resumed.notes",
            13,
            64_000,
            GameEvent::Resumed {
                scene: s("prologue"),
                node: s("crossroads"),
                notes: vec![s("item 'torch' no longer exists; dropped")],
            },
        ),
        event(
            "node_entered",
            1,
            16,
            GameEvent::NodeEntered {
                scene: s("prologue"),
                node: s("crossroads"),
                kind: s("choice"),
                media: Some(Media {
                    url: s("/assets/prologue/crossroads.mp4"),
                    media_type: s("video"),
                }),
                media_pending: false,
                lines: vec![
                    Line {
                        id: s("l1"),
                        speaker: s("mara"),
                        text: s("Left or right?"),
                    },
                    Line {
                        id: s("l2"),
                        speaker: s("narrator"),
                        text: s("The wind rises."),
                    },
                ],
                prompt: Some(s("Which way?")),
                presentation: Presentation::default(),
            },
        ),
        event(
            "node_entered.media_pending",
            2,
            33,
            GameEvent::NodeEntered {
                scene: s("prologue"),
                node: s("well"),
                kind: s("scene"),
                media: None,
                media_pending: true,
                lines: vec![],
                prompt: None,
                presentation: Presentation::default(),
            },
        ),
        event(
            "choices_offered",
            3,
            33,
            GameEvent::ChoicesOffered {
                node: s("crossroads"),
                choices: vec![
                    Choice {
                        edge: s("e_left"),
                        label: Some(s("Left")),
                        available_at_ms: 0,
                    },
                    Choice {
                        edge: s("e_wait"),
                        label: None,
                        available_at_ms: 30_000,
                    },
                ],
            },
        ),
        event(
            "choices_offered.none",
            4,
            50,
            GameEvent::ChoicesOffered {
                node: s("well"),
                choices: vec![],
            },
        ),
        event(
            "state_delta",
            5,
            50,
            GameEvent::StateDelta {
                changes: vec![
                    Change::Var {
                        name: s("met_mara"),
                        value: s("true"),
                    },
                    Change::Stat {
                        stat: s("trust"),
                        entity: s("mara"),
                        axis: s("warmth"),
                        value: -3,
                    },
                    Change::Item {
                        item: s("lantern"),
                        count: 1,
                    },
                    Change::Quest {
                        quest: s("find_the_well"),
                        status: s("active"),
                    },
                    Change::Objective {
                        quest: s("find_the_well"),
                        objective: s("ask_around"),
                        progress: 1,
                        target: 3,
                    },
                    Change::Xp { xp: 250 },
                    Change::Level { level: 2 },
                    Change::Unlocked {
                        scene: s("chapter_two"),
                    },
                ],
            },
        ),
        event(
            "minigame_prompt",
            6,
            15_000,
            GameEvent::MiniGamePrompt {
                game: s("reflex"),
                round: 1,
                rounds: 3,
                nonce: 9_007_199_254_740_991,
                opens_at_ms: 15_000,
                closes_at_ms: 15_800,
            },
        ),
        event(
            "minigame_round.hit",
            7,
            15_250,
            GameEvent::MiniGameRound {
                round: 1,
                hit: true,
                reason: None,
            },
        ),
        event(
            "minigame_round.miss",
            8,
            16_800,
            GameEvent::MiniGameRound {
                round: 2,
                hit: false,
                reason: Some(s("too_early")),
            },
        ),
        event(
            "minigame_result",
            9,
            18_000,
            GameEvent::MiniGameResult {
                game: s("reflex"),
                success: false,
                score: -150,
                detail: s("1 of 3 hits"),
            },
        ),
        event(
            "quest_updated",
            10,
            18_000,
            GameEvent::QuestUpdated {
                quest: s("find_the_well"),
                status: s("completed"),
            },
        ),
        event(
            "objective_updated",
            11,
            18_000,
            GameEvent::ObjectiveUpdated {
                quest: s("find_the_well"),
                objective: s("ask_around"),
                progress: 3,
                target: 3,
                completed: true,
            },
        ),
        event(
            "level_up",
            14,
            18_016,
            GameEvent::LevelUp {
                level: 3,
                xp: 1_000,
            },
        ),
        event(
            "scene_unlocked",
            15,
            18_016,
            GameEvent::SceneUnlocked {
                scene: s("chapter_two"),
            },
        ),
        event(
            "session_ended",
            16,
            20_000,
            GameEvent::SessionEnded {
                reason: s("success"),
            },
        ),
        event(
            "error",
            17,
            20_000,
            GameEvent::Error {
                command: s("choose"),
                code: s("runtime"),
                message: s("effect failed: unknown item 'torch'"),
            },
        ),
        event(
            "media_ready",
            300,
            -9_007_199_254_740_991,
            GameEvent::MediaReady {
                scene: s("prologue"),
                node: s("well"),
                media: Media {
                    url: s("/api/v1/assets/0190b0a4-2222-7000-8000-00000000000b/file"),
                    media_type: s("image"),
                },
            },
        ),
    ]
}
