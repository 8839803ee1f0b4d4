//! Playback steps that run mini-games (`tests/content/steps`): a step naming a game
//! starts it on the server when the step begins; its rounds, inputs and timers work as a
//! minigame node's; `continue` is refused while it runs; once it is over, won or lost,
//! the playback moves to the next step and no edge is followed. A save made inside the
//! game resumes inside it; a content reload leaves it running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::system::RunSystemOnce;
use domain::narrative::{Content, SavedWait, SessionSave};
use sim::{
    Command, ErrorReason, Event, Outcome, Playback, SessionId, SimCommand, SimConfig, SimEvent,
};

fn content() -> Arc<Content> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/content/steps");
    Arc::new(content::load_dir(dir).unwrap_or_else(|r| panic!("{r}")))
}

fn app() -> App {
    sim::build_app(content(), SimConfig::default())
}

fn cmd(n: u128, command: Command) -> SimCommand {
    SimCommand {
        session: SessionId::from_u128(n),
        command,
    }
}

/// Runs one tick with `commands`; returns session `n`'s events.
fn tick(app: &mut App, n: u128, commands: Vec<SimCommand>) -> Vec<Event> {
    sim::tick(app, commands)
        .into_iter()
        .filter(|e: &SimEvent| e.session == SessionId::from_u128(n))
        .map(|e| e.event)
        .collect()
}

fn start(app: &mut App, n: u128) -> Vec<Event> {
    tick(
        app,
        n,
        vec![cmd(
            n,
            Command::Start {
                scene: None,
                seed: 7,
            },
        )],
    )
}

fn go_on(app: &mut App, n: u128) -> Vec<Event> {
    tick(app, n, vec![cmd(n, Command::Continue)])
}

/// Ticks until session `n` is prompted for a round; returns every event up to it and
/// the prompt's round and nonce.
fn until_prompt(app: &mut App, n: u128) -> (Vec<Event>, u32, u64) {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let ev = tick(app, n, Vec::new());
        let prompt = ev.iter().find_map(|e| match e {
            Event::MiniGamePrompt { round, nonce, .. } => Some((*round, *nonce)),
            _ => None,
        });
        seen.extend(ev);
        if let Some((round, nonce)) = prompt {
            return (seen, round, nonce);
        }
    }
    panic!("no prompt in 100 ticks: {seen:?}");
}

/// Answers the open round at once (claimed at the server's time now).
fn press(app: &mut App, n: u128, round: u32, nonce: u64) -> Vec<Event> {
    let at = sim::clock(app.world()).unwrap().now_ms;
    tick(
        app,
        n,
        vec![cmd(
            n,
            Command::MiniGameInput {
                round,
                nonce,
                client_time_ms: at,
            },
        )],
    )
}

/// Plays the running reflex game's rounds `from..=to`, hitting each.
fn hit_rounds(app: &mut App, n: u128, from: u32, to: u32) -> Vec<Event> {
    let mut all = Vec::new();
    for want in from..=to {
        let (seen, round, nonce) = until_prompt(app, n);
        assert_eq!(round, want, "{seen:?}");
        all.extend(seen);
        let ev = press(app, n, round, nonce);
        assert!(
            ev.contains(&Event::MiniGameRound {
                round,
                hit: true,
                reason: None
            }),
            "{ev:?}"
        );
        all.extend(ev);
    }
    all
}

fn step(node: &str, step: u32) -> Event {
    Event::PlaybackStep {
        node: node.into(),
        step,
    }
}

fn result(events: &[Event]) -> Option<(Outcome, i64)> {
    events.iter().find_map(|e| match e {
        Event::MiniGameResult { outcome, score, .. } => Some((*outcome, *score)),
        _ => None,
    })
}

fn entered(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NodeEntered { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect()
}

fn refused_in_game(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(e, Event::Error {
            command,
            reason: ErrorReason::WrongState { state, .. },
            ..
        } if command == "continue" && state == "a mini-game is running")
    })
}

fn position(events: &[Event], i: &Event) -> usize {
    events
        .iter()
        .position(|e| e == i)
        .unwrap_or_else(|| panic!("no {i:?} in {events:?}"))
}

#[test]
fn a_step_game_runs_on_the_server_and_the_playback_moves_on_without_an_edge() {
    let mut app = app();
    let ev = start(&mut app, 1);
    assert_eq!(entered(&ev), ["door"]);
    // Step 0 runs no game: the session waits for `continue`.
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::ChoicesOffered { .. } | Event::Error { .. })),
        "{ev:?}"
    );

    // Step 1 begins and starts its reflex game; `continue` is refused while it runs.
    assert_eq!(go_on(&mut app, 1), [step("door", 1)]);
    let ev = go_on(&mut app, 1);
    assert!(refused_in_game(&ev), "{ev:?}");
    assert!(!ev.contains(&step("door", 2)), "{ev:?}");

    let ev = hit_rounds(&mut app, 1, 1, 2);
    assert_eq!(result(&ev), Some((Outcome::Success, 2)), "{ev:?}");
    // Over: the playback moves to step 2 right after the result; no edge is followed.
    let over = ev
        .iter()
        .position(|e| matches!(e, Event::MiniGameResult { .. }))
        .unwrap();
    assert!(position(&ev, &step("door", 2)) > over, "{ev:?}");
    assert!(entered(&ev).is_empty(), "{ev:?}");
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::ChoicesOffered { .. } | Event::Error { .. })),
        "{ev:?}"
    );

    // Playing again at step 2: `continue` finishes the node, which offers its edges.
    let ev = go_on(&mut app, 1);
    assert_eq!(ev[0], step("door", 3));
    let offered: Vec<&str> = ev
        .iter()
        .find_map(|e| match e {
            Event::ChoicesOffered { node, choices } if node == "door" => {
                Some(choices.iter().map(|c| c.edge.as_str()).collect())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{ev:?}"));
    assert_eq!(offered, ["enter", "leave"]);
}

#[test]
fn a_lost_step_game_also_moves_the_playback_on() {
    let mut app = app();
    start(&mut app, 1);
    go_on(&mut app, 1);
    // No input: both windows close (each a miss), the game is lost.
    let mut ev = Vec::new();
    for _ in 0..200 {
        ev.extend(tick(&mut app, 1, Vec::new()));
    }
    let misses = ev
        .iter()
        .filter(|e| matches!(e, Event::MiniGameRound { hit: false, .. }))
        .count();
    assert_eq!(misses, 2, "{ev:?}");
    assert_eq!(result(&ev), Some((Outcome::Failure, 0)), "{ev:?}");
    assert!(ev.contains(&step("door", 2)), "{ev:?}");
    assert!(entered(&ev).is_empty(), "{ev:?}");
    // Still in the door, waiting for `continue`.
    let ev = go_on(&mut app, 1);
    assert_eq!(ev[0], step("door", 3), "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(e, Event::ChoicesOffered { .. })),
        "{ev:?}"
    );
}

#[test]
fn a_node_entered_at_a_step_game_plays_it_at_once_and_advances_after_the_last() {
    let mut app = app();
    start(&mut app, 1);
    go_on(&mut app, 1);
    hit_rounds(&mut app, 1, 1, 2);
    go_on(&mut app, 1);
    let ev = tick(
        &mut app,
        1,
        vec![cmd(
            1,
            Command::Choose {
                edge: "enter".into(),
            },
        )],
    );
    // The hall's step 0 is a skill check: resolved on entry, the playback moves to step
    // 1 at once, whose reflex game then runs.
    assert_eq!(entered(&ev), ["hall"], "{ev:?}");
    assert!(matches!(result(&ev), Some((Outcome::Success, _))), "{ev:?}");
    assert!(ev.contains(&step("hall", 1)), "{ev:?}");
    assert!(refused_in_game(&go_on(&mut app, 1)));

    // The last step's game over, the node (auto) advances along its edge.
    let ev = hit_rounds(&mut app, 1, 1, 1);
    assert_eq!(result(&ev), Some((Outcome::Success, 1)), "{ev:?}");
    let moved = ev
        .iter()
        .position(|e| matches!(e, Event::NodeEntered { node, .. } if node == "inside"))
        .unwrap_or_else(|| panic!("{ev:?}"));
    assert!(position(&ev, &step("hall", 2)) < moved, "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(e, Event::SessionEnded { .. })),
        "{ev:?}"
    );
}

fn saves(app: &mut App, n: u128) -> (SessionSave, SessionSave) {
    let answered = tick(app, n, vec![cmd(n, Command::Save)])
        .into_iter()
        .find_map(|e| match e {
            Event::Saved { save } => Some(*save),
            _ => None,
        })
        .expect("saved");
    let id = SessionId::from_u128(n);
    let binary = app
        .world_mut()
        .run_system_once(move |s: sim::Sessions| s.save_binary(id))
        .unwrap()
        .expect("a binary save");
    let decoded = SessionSave::decode_binary(&binary).unwrap();
    (answered, decoded)
}

#[test]
fn a_save_inside_a_step_game_resumes_inside_it() {
    let mut app = app();
    start(&mut app, 1);
    go_on(&mut app, 1);
    hit_rounds(&mut app, 1, 1, 1);
    let (save, binary) = saves(&mut app, 1);
    assert_eq!(save.wait, SavedWait::MiniGame { round: 2, hits: 1 });
    assert_eq!(save.playback.step, 1);
    assert_eq!(binary, save);

    // On another server, from its JSON.
    let json = serde_json::to_string(&save).unwrap();
    let save: SessionSave = serde_json::from_str(&json).unwrap();
    let mut other = self::app();
    let ev = tick(
        &mut other,
        2,
        vec![cmd(
            2,
            Command::Resume {
                save: Box::new(save),
            },
        )],
    );
    assert!(
        matches!(&ev[0], Event::Resumed { node, notes, .. } if node == "door" && notes.is_empty()),
        "{ev:?}"
    );
    let current = ev.iter().find_map(|e| match e {
        Event::NodeEntered { presentation, .. } => presentation.as_ref().map(|p| &p.playback),
        _ => None,
    });
    assert!(
        matches!(current, Some(Playback::Steps { current: 1, .. })),
        "{ev:?}"
    );
    assert!(refused_in_game(&go_on(&mut other, 2)));
    // Round 2 with the hit of round 1 kept: two of two.
    let ev = hit_rounds(&mut other, 2, 2, 2);
    assert_eq!(result(&ev), Some((Outcome::Success, 2)), "{ev:?}");
    assert!(ev.contains(&step("door", 2)), "{ev:?}");
    assert!(entered(&ev).is_empty(), "{ev:?}");
}

#[test]
fn a_save_at_a_step_without_a_game_does_not_resume_as_a_game() {
    let mut app = app();
    start(&mut app, 1);
    let (mut save, _) = saves(&mut app, 1);
    assert_eq!(save.wait, SavedWait::Continue);
    // Forged: a mini-game wait at step 0, which runs none.
    save.wait = SavedWait::MiniGame { round: 1, hits: 0 };
    let ev = tick(
        &mut app,
        2,
        vec![cmd(
            2,
            Command::Resume {
                save: Box::new(save),
            },
        )],
    );
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Error {
                reason: ErrorReason::SaveRejected { .. },
                ..
            }
        )),
        "{ev:?}"
    );
}

#[test]
fn a_content_reload_leaves_a_step_game_running() {
    let mut app = app();
    start(&mut app, 1);
    go_on(&mut app, 1);
    hit_rounds(&mut app, 1, 1, 1);
    app.world_mut().resource_mut::<sim::Inbox>().reload = Some(content());
    let ev = tick(&mut app, 1, Vec::new());
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::Error { .. } | Event::SessionEnded { .. })),
        "{ev:?}"
    );
    let ev = hit_rounds(&mut app, 1, 2, 2);
    assert_eq!(result(&ev), Some((Outcome::Success, 2)), "{ev:?}");
    assert!(ev.contains(&step("door", 2)), "{ev:?}");
}
