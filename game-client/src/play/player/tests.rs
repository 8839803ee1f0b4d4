//! Tests of the [`Player`] state machine: events and input lines in, text and
//! commands out.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::play::render::MENU_FOOTER;
use protocol::v2::Line;

fn event(seq: u64, event: GameEvent) -> ServerMessage {
    ServerMessage::Event {
        seq,
        at_ms: 0,
        event: event.into(),
    }
}

fn node(scene: &str, node: &str, lines: &[(&str, &str)]) -> GameEvent {
    GameEvent::NodeEntered {
        scene: scene.into(),
        node: node.into(),
        kind: "dialogue".into(),
        media: None,
        media_pending: false,
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (speaker, text))| Line {
                id: format!("l{i}"),
                speaker: (*speaker).into(),
                text: (*text).into(),
            })
            .collect(),
        prompt: None,
        presentation: Default::default(),
    }
}

fn offer(choices: &[(&str, &str, i64)]) -> GameEvent {
    GameEvent::ChoicesOffered {
        node: "n".into(),
        choices: choices
            .iter()
            .map(|(edge, label, at)| Choice {
                edge: (*edge).into(),
                label: Some((*label).into()),
                available_at_ms: *at,
            })
            .collect(),
    }
}

fn joined(next_seq: u64) -> Joined {
    Joined {
        session_id: Uuid::nil(),
        scene: None,
        next_seq,
        ended: false,
        snapshot: Default::default(),
    }
}

fn scenes() -> Vec<SceneSummary> {
    vec![SceneSummary {
        id: "gallery".into(),
        title: "The Midnight Gallery".into(),
        locked: false,
        start: true,
    }]
}

fn player() -> Player {
    let mut p = Player::new("http://h:1/", &scenes());
    p.attach(&joined(0), false);
    p
}

#[test]
fn lines_media_and_numbered_choices() {
    let mut p = player();
    let id = Uuid::now_v7();
    let s = p.on_message(
        event(
            0,
            GameEvent::NodeEntered {
                scene: "gallery".into(),
                node: "arrive".into(),
                kind: "media".into(),
                media: Some(Media {
                    url: format!("/api/v1/assets/{id}/file"),
                    media_type: "video".into(),
                }),
                media_pending: false,
                lines: vec![],
                prompt: Some("Where to?".into()),
                presentation: Default::default(),
            },
        ),
        Some(0),
    );
    assert_eq!(
        s.text,
        vec![
            "== The Midnight Gallery ==".to_owned(),
            format!("[media] http://h:1/api/v1/assets/{id}/file"),
            "Where to?".to_owned(),
        ]
    );
    let s = p.on_message(event(1, node("gallery", "talk", &[("mara", "Hi.")])), None);
    assert_eq!(s.text, vec!["mara: Hi."]);
    let s = p.on_message(
        event(2, offer(&[("a", "Go", 0), ("b", "Stay", 0)])),
        Some(0),
    );
    assert_eq!(
        s.text,
        vec!["choices:", "  1) Go", "  2) Stay", MENU_FOOTER]
    );
    let s = p.on_input("2", 5);
    assert_eq!(s.text, vec!["> Stay"]);
    assert_eq!(
        s.command,
        Some((1, GameCommand::Choose { edge: "b".into() }))
    );
    // One choice at a time.
    assert!(p.on_input("1", 5).command.is_none());
    p.on_message(
        ServerMessage::Ack {
            request_id: 1,
            through_seq: None,
        },
        None,
    );
    assert!(p.on_input("1", 5).command.is_some());
    assert_eq!(p.on_input("7", 5).command, None);
}

#[test]
fn generated_media_then_ready() {
    let mut p = player();
    let s = p.on_message(
        event(
            0,
            GameEvent::NodeEntered {
                scene: "gallery".into(),
                node: "arrive".into(),
                kind: "media".into(),
                media: None,
                media_pending: true,
                lines: vec![],
                prompt: None,
                presentation: Default::default(),
            },
        ),
        None,
    );
    assert!(s.text.contains(&"[media] generating…".to_owned()));
    let id = Uuid::now_v7();
    let s = p.on_message(
        event(
            1,
            GameEvent::MediaReady {
                scene: "gallery".into(),
                node: "arrive".into(),
                media: Media {
                    url: format!("/api/v1/assets/{id}/file"),
                    media_type: "video".into(),
                },
            },
        ),
        None,
    );
    assert_eq!(
        s.text,
        vec![format!("[media ready] http://h:1/api/v1/assets/{id}/file")]
    );
}

#[test]
fn choices_appear_when_revealed_with_stable_numbers() {
    let mut p = player();
    p.on_message(event(0, node("gallery", "plan", &[])), Some(1000));
    let s = p.on_message(
        event(
            1,
            offer(&[
                ("late", "Later", 3000),
                ("now", "Now", 1000),
                ("mid", "Mid", 2000),
            ]),
        ),
        Some(1000),
    );
    assert_eq!(s.text, vec!["choices:", "  1) Now", MENU_FOOTER]);
    assert_eq!(p.next_reveal(), Some(2000));
    assert!(p.on_time(1500).text.is_empty());
    // A hidden choice cannot be taken by guessing its number.
    assert!(p.on_input("2", 1500).command.is_none());
    let s = p.on_time(2000);
    assert_eq!(
        s.text,
        vec!["choices:", "  1) Now", "  2) Mid", MENU_FOOTER]
    );
    let s = p.on_time(3500);
    assert_eq!(
        s.text,
        vec![
            "choices:",
            "  1) Now",
            "  2) Mid",
            "  3) Later",
            MENU_FOOTER
        ]
    );
    assert_eq!(p.next_reveal(), None);
    assert_eq!(
        p.on_input("3", 3500).command,
        Some((
            1,
            GameCommand::Choose {
                edge: "late".into()
            }
        ))
    );
    // A new menu ends the wait for the last answer; while a choice is in flight, no
    // menu is printed (it could be answered after it is gone).
    let s = p.on_message(
        event(2, offer(&[("x", "X", 0), ("y", "Y", 9000)])),
        Some(4000),
    );
    assert_eq!(s.text, vec!["choices:", "  1) X", MENU_FOOTER]);
    assert_eq!(p.next_reveal(), Some(9000));
    assert_eq!(p.on_input("1", 4000).text, vec!["> X"]);
    assert_eq!(p.next_reveal(), None);
    assert!(p.on_time(9500).text.is_empty());
}

#[test]
fn unknown_clock_shows_every_choice() {
    let mut p = player();
    let s = p.on_message(event(0, offer(&[("a", "A", 99_999)])), None);
    assert_eq!(s.text, vec!["choices:", "  1) A", MENU_FOOTER]);
}

#[test]
fn reflex_enter_sends_the_stamped_input_once() {
    let mut p = player();
    let s = p.on_message(
        event(
            0,
            GameEvent::MiniGamePrompt {
                game: "reflex".into(),
                round: 2,
                rounds: 3,
                nonce: 77,
                opens_at_ms: 500,
                closes_at_ms: 1500,
            },
        ),
        Some(500),
    );
    assert_eq!(s.text, vec![format!("[reflex 2/3] {REFLEX_PROMPT}")]);
    let s = p.on_input("", 640);
    assert_eq!(
        s.command,
        Some((
            1,
            GameCommand::MiniGameInput {
                round: 2,
                nonce: 77,
                client_time_ms: 640
            }
        ))
    );
    // A second Enter is not another press.
    assert!(p.on_input("", 700).command.is_none());
    let s = p.on_message(
        event(
            1,
            GameEvent::MiniGameRound {
                round: 2,
                hit: true,
                reason: None,
            },
        ),
        None,
    );
    assert_eq!(s.text, vec!["[round 2] hit!"]);
    let s = p.on_message(
        event(
            2,
            GameEvent::MiniGameResult {
                game: "skill_check".into(),
                success: false,
                score: 9,
                detail: "rolled 9 + 2 < 12".into(),
            },
        ),
        None,
    );
    assert_eq!(
        s.text,
        vec!["[skill_check] failure (score 9): rolled 9 + 2 < 12"]
    );
}

#[test]
fn stats_and_quests_from_events() {
    let mut p = player();
    p.on_message(
        event(
            0,
            GameEvent::StateDelta {
                changes: vec![
                    Change::Item {
                        item: "coin".into(),
                        count: 3,
                    },
                    Change::Stat {
                        stat: "courage".into(),
                        entity: "player".into(),
                        axis: "value".into(),
                        value: 4,
                    },
                    Change::Xp { xp: 20 },
                    Change::Var {
                        name: "met_mara".into(),
                        value: "true".into(),
                    },
                ],
            },
        ),
        None,
    );
    let s = p.on_message(
        event(
            1,
            GameEvent::QuestUpdated {
                quest: "heist".into(),
                status: "active".into(),
            },
        ),
        None,
    );
    assert_eq!(s.text, vec!["[quest] heist: active"]);
    p.on_message(
        event(
            2,
            GameEvent::ObjectiveUpdated {
                quest: "heist".into(),
                objective: "get_keycard".into(),
                progress: 1,
                target: 1,
                completed: true,
            },
        ),
        None,
    );
    p.on_message(event(3, GameEvent::LevelUp { level: 2, xp: 60 }), None);
    let s = p.on_input("s", 0);
    assert!(s.command.is_none());
    assert_eq!(
        s.text,
        vec![
            "── stats ──",
            "level 2 · xp 60",
            "  courage.player.value = 4",
            "items: coin ×3",
            "quest heist: active",
            "  get_keycard 1/1 ✓",
            "variables: met_mara=true",
        ]
    );
    assert_eq!(p.on_input("stats", 0).text, s.text);
}

#[test]
fn duplicates_are_never_shown_and_a_resume_does_not_repeat_the_node() {
    let mut p = player();
    let talk = node("gallery", "talk", &[("mara", "You came.")]);
    assert_eq!(
        p.on_message(event(0, talk.clone()), None).text,
        vec!["== The Midnight Gallery ==", "mara: You came."]
    );
    p.on_message(event(1, offer(&[("a", "I'm in.", 0)])), Some(0));
    // A replay overlap after a reconnect is dropped.
    assert!(p.on_message(event(0, talk.clone()), None).text.is_empty());
    assert!(
        p.on_message(event(1, offer(&[("a", "I'm in.", 0)])), Some(0))
            .text
            .is_empty()
    );
    assert_eq!(p.last_seq(), Some(1));
    // A command in flight when the connection dropped.
    assert!(p.on_input("1", 0).command.is_some());
    p.connection_lost("reset");
    let s = p.attach(&joined(2), true);
    assert_eq!(
        s.text,
        vec![
            "(reconnected)",
            "(your last input may not have reached the server)"
        ]
    );
    // After a server restart the node is re-presented: the lines are not printed again,
    // the choices are.
    let s = p.on_message(
        event(
            2,
            GameEvent::Resumed {
                scene: "gallery".into(),
                node: "talk".into(),
                notes: vec![],
            },
        ),
        None,
    );
    assert_eq!(
        s.text,
        vec!["(the server resumed the session at gallery/talk)"]
    );
    assert!(p.on_message(event(3, talk.clone()), None).text.is_empty());
    let s = p.on_message(event(4, offer(&[("a", "I'm in.", 0)])), Some(0));
    assert_eq!(s.text, vec!["choices:", "  1) I'm in.", MENU_FOOTER]);
    // A later visit of the same node is shown again.
    assert_eq!(
        p.on_message(event(5, talk), None).text,
        vec!["mara: You came."]
    );
}

/// A join's answer carrying a snapshot: at gallery/talk with one line, choice `b`
/// ("Stay") offered, 3 coins, the heist quest active.
fn joined_at_talk(next_seq: u64) -> Joined {
    use protocol::v2::{ItemCount, Position, ProgressionView, QuestView, Snapshot};
    Joined {
        snapshot: Snapshot {
            position: Some(Position {
                scene: "gallery".into(),
                node: "talk".into(),
                kind: "dialogue".into(),
                media: None,
                media_pending: false,
                lines: vec![Line {
                    id: "l0".into(),
                    speaker: "mara".into(),
                    text: "Current line.".into(),
                }],
                prompt: None,
            }),
            choices: vec![Choice {
                edge: "b".into(),
                label: Some("Stay".into()),
                available_at_ms: 0,
            }],
            minigame: None,
            progression: ProgressionView {
                items: vec![ItemCount {
                    item: "coin".into(),
                    count: 3,
                }],
                quests: vec![QuestView {
                    quest: "heist".into(),
                    status: "active".into(),
                    objectives: vec![],
                }],
                level: 1,
                ..ProgressionView::default()
            },
            ended: None,
            presentation: None,
        },
        ..joined(next_seq)
    }
}

#[test]
fn joining_an_existing_session_renders_its_snapshot() {
    let mut p = Player::new("http://h", &scenes());
    let s = p.attach(&joined_at_talk(4), false);
    assert_eq!(
        s.text,
        vec![
            format!("resuming session {}", Uuid::nil()),
            "== The Midnight Gallery ==".into(),
            "mara: Current line.".into(),
            "choices:".into(),
            "  1) Stay".into(),
            MENU_FOOTER.into(),
        ]
    );
    assert_eq!(p.last_seq(), Some(3));
    assert_eq!(p.progress().items.get("coin"), Some(&3));
    assert_eq!(p.progress().quests["heist"], "active");
    // Events the snapshot covers (a resend) are not shown again.
    assert!(
        p.on_message(event(3, offer(&[("b", "Stay", 0)])), None)
            .text
            .is_empty()
    );
    // Live from next_seq on; the snapshot's choice is taken by its number.
    assert_eq!(
        p.on_input("1", 0).command.unwrap().1,
        GameCommand::Choose { edge: "b".into() }
    );
    assert_eq!(
        p.on_message(event(4, node("gallery", "x", &[("p", "New.")])), None)
            .text,
        vec!["p: New."]
    );
}

#[test]
fn a_reconnect_after_missed_events_renders_the_snapshot_and_an_open_round() {
    let mut p = player();
    p.on_message(
        event(0, node("gallery", "arrive", &[("mara", "Old.")])),
        None,
    );
    p.on_message(event(1, offer(&[("a", "Go", 0)])), Some(0));
    p.connection_lost("reset");
    // Meanwhile the story went on to a reflex round: the snapshot shows it.
    let mut j = joined_at_talk(9);
    j.snapshot.choices.clear();
    j.snapshot.minigame = Some(protocol::v2::MiniGamePrompt {
        game: "reflex".into(),
        round: 2,
        rounds: 3,
        nonce: 77,
        opens_at_ms: 1000,
        closes_at_ms: 2000,
    });
    let s = p.attach(&j, true);
    assert_eq!(
        s.text,
        vec![
            "(reconnected)".to_owned(),
            "(the story went on meanwhile)".into(),
            "== The Midnight Gallery ==".into(),
            "mara: Current line.".into(),
            format!("[reflex] {REFLEX_PROMPT}"),
        ]
    );
    assert_eq!(p.last_seq(), Some(8));
    // The round is answered with the snapshot's nonce.
    assert_eq!(
        p.on_input("", 1500).command.unwrap().1,
        GameCommand::MiniGameInput {
            round: 2,
            nonce: 77,
            client_time_ms: 1500
        }
    );
}

#[test]
fn a_server_restart_missed_while_away_is_told_once_beside_the_snapshot() {
    let mut p = player();
    p.on_message(
        event(0, node("gallery", "arrive", &[("mara", "Old.")])),
        None,
    );
    p.connection_lost("reset");
    let s = p.attach(&joined_at_talk(3), true);
    assert!(s.text.contains(&"(the story went on meanwhile)".to_owned()));
    let resumed = || GameEvent::Resumed {
        scene: "gallery".into(),
        node: "talk".into(),
        notes: vec!["a note".into()],
    };
    // Resent events the snapshot covers: nothing is replayed but the restart.
    assert!(
        p.on_message(event(1, node("gallery", "x", &[("p", "Gone.")])), None)
            .text
            .is_empty()
    );
    assert_eq!(
        p.on_message(event(2, resumed()), None).text,
        vec![
            "(the server resumed the session at gallery/talk)".to_owned(),
            "(note: a note)".into()
        ]
    );
    assert!(p.on_message(event(2, resumed()), None).text.is_empty());
    assert_eq!(p.last_seq(), Some(2));
}

#[test]
fn an_ended_session_joined_shows_its_end_and_a_take_over_quits() {
    let mut p = Player::new("http://h", &scenes());
    let mut j = joined_at_talk(5);
    j.ended = true;
    j.snapshot.position = None;
    j.snapshot.choices.clear();
    j.snapshot.ended = Some("left".into());
    let s = p.attach(&j, false);
    assert_eq!(s.text.last().unwrap(), "=== the end: left ===");
    assert_eq!(s.done, Some(Done::Ended("left".into())));

    let mut p = player();
    let s = p.on_message(
        ServerMessage::Error {
            code: ErrorCode::SessionTakenOver,
            message: "taken over".into(),
        },
        None,
    );
    assert_eq!(s.done, Some(Done::Quit));
}

#[test]
fn the_end_rejections_quit_and_leave() {
    let mut p = player();
    p.on_message(event(0, offer(&[("a", "A", 0)])), Some(0));
    let s = p.on_input("1", 0);
    let (id, _) = s.command.unwrap();
    let s = p.on_message(
        ServerMessage::Rejected {
            request_id: id,
            code: "not_revealed".into(),
            message: "later".into(),
        },
        None,
    );
    assert_eq!(
        s.text,
        vec![
            "(that choice is not available yet)",
            "choices:",
            "  1) A",
            MENU_FOOTER
        ]
    );
    assert_eq!(
        p.on_input("leave", 0).command.unwrap().1,
        GameCommand::Leave
    );
    let s = p.on_message(
        event(
            1,
            GameEvent::SessionEnded {
                reason: "left".into(),
            },
        ),
        None,
    );
    assert_eq!(s.text, vec!["=== the end: left ==="]);
    assert_eq!(s.done, Some(Done::Ended("left".into())));
    assert!(p.on_input("1", 0).command.is_none());
    assert_eq!(p.on_input("q", 0).done, Some(Done::Quit));
}
