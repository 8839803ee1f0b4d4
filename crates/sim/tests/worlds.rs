//! Several worlds in one simulation: each world's clock and controls are its own, and a
//! session follows the clock of its scene's world (its timers, prompts and event times).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bevy_app::App;
use domain::narrative::Content;
use sim::{Command, Event, SessionId, SimCommand, SimConfig, SimEvent, WorldControl};

fn content() -> Arc<Content> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/content/worlds");
    Arc::new(content::load_dir(dir).unwrap())
}

fn app() -> App {
    sim::build_app(content(), SimConfig::default())
}

fn start(n: u128, scene: &str) -> SimCommand {
    SimCommand {
        session: SessionId::from_u128(n),
        command: Command::Start {
            scene: Some(scene.into()),
            seed: 7,
        },
    }
}

fn control(app: &mut App, world: &str, c: WorldControl) {
    app.world_mut()
        .resource_mut::<sim::Inbox>()
        .worlds
        .push((world.into(), c));
}

fn clock_of(app: &mut App, world: &str) -> sim::Clock {
    sim::clocks(app.world_mut())
        .into_iter()
        .find(|(id, _)| id == world)
        .map(|(_, c)| c)
        .expect("world served")
}

fn now_of(app: &mut App, world: &str) -> i64 {
    clock_of(app, world).now_ms
}

fn prompted(events: &[SimEvent], n: u128) -> Option<&SimEvent> {
    events.iter().find(|e| {
        e.session == SessionId::from_u128(n) && matches!(e.event, Event::MiniGamePrompt { .. })
    })
}

#[test]
fn every_declared_world_is_served_with_its_own_clock() {
    let mut app = app();
    let clocks = sim::clocks(app.world_mut());
    let ids: Vec<&str> = clocks.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["default", "arena"]);
    let views = sim::worlds::list(app.world_mut());
    assert_eq!(views[1].title.as_deref(), Some("Arena"));
    assert_eq!(sim::clock(app.world()).unwrap(), clocks[0].1);
}

#[test]
fn pausing_one_world_freezes_its_sessions_and_not_the_others() {
    let mut app = app();
    control(&mut app, "arena", WorldControl::Pause);
    let mut events = sim::tick(&mut app, [start(1, "lobby"), start(2, "arena_hall")]);
    let arena_at = now_of(&mut app, "arena");
    // The lobby's round opens within its longest delay (1.5 s = 30 ticks); the arena's
    // never does while the arena is paused.
    for _ in 0..100 {
        events.extend(sim::tick(&mut app, []));
    }
    let lobby = prompted(&events, 1).expect("the lobby's round opened");
    assert!(
        prompted(&events, 2).is_none(),
        "the paused arena's round opened"
    );
    assert_eq!(
        now_of(&mut app, "arena"),
        arena_at,
        "the arena's time moved"
    );
    assert!(now_of(&mut app, "default") >= arena_at + 100 * 50);
    // Events carry their session's world time.
    let started = |n: u128| {
        events
            .iter()
            .find(|e| {
                e.session == SessionId::from_u128(n)
                    && matches!(e.event, Event::SessionStarted { .. })
            })
            .unwrap()
            .at_ms
    };
    assert_eq!(started(2), arena_at);
    assert!(lobby.at_ms > started(1));
    // Resumed, the arena's round opens in turn.
    control(&mut app, "arena", WorldControl::Resume);
    let mut later = Vec::new();
    for _ in 0..40 {
        later.extend(sim::tick(&mut app, []));
    }
    let arena = prompted(&later, 2).expect("the arena's round opened after resume");
    assert!(arena.at_ms > arena_at && arena.at_ms <= now_of(&mut app, "arena"));
}

#[test]
fn advancing_a_paused_world_by_a_delta_fires_its_due_timers() {
    let mut app = app();
    control(&mut app, "arena", WorldControl::Pause);
    let mut events = sim::tick(&mut app, [start(2, "arena_hall")]);
    for _ in 0..50 {
        events.extend(sim::tick(&mut app, []));
    }
    assert!(prompted(&events, 2).is_none());
    let before = now_of(&mut app, "arena");
    // The round opens at most 1.5 s after the start: a 2 s advance makes it due.
    control(&mut app, "arena", WorldControl::Advance { ms: 2000 });
    let events = sim::tick(&mut app, []);
    let p = prompted(&events, 2).expect("the due round opened in the advancing tick");
    assert_eq!(
        now_of(&mut app, "arena"),
        before + 2000,
        "paused: only the delta"
    );
    assert_eq!(p.at_ms, before + 2000);
}

#[test]
fn a_step_moves_one_paused_world_by_one_tick_and_controls_apply_between_ticks() {
    let mut app = app();
    let v = sim::worlds::control(app.world_mut(), "arena", WorldControl::Pause).unwrap();
    assert!(v.clock.paused);
    let t0 = now_of(&mut app, "arena");
    sim::tick(&mut app, []);
    assert_eq!(now_of(&mut app, "arena"), t0);
    sim::worlds::control(app.world_mut(), "arena", WorldControl::Step).unwrap();
    sim::tick(&mut app, []);
    assert_eq!(now_of(&mut app, "arena"), t0 + 50);
    sim::tick(&mut app, []);
    assert_eq!(now_of(&mut app, "arena"), t0 + 50, "one step is one tick");
    let scale = sim::worlds::set_scale(2.0).unwrap();
    sim::worlds::control(app.world_mut(), "arena", scale).unwrap();
    sim::worlds::control(app.world_mut(), "arena", WorldControl::Resume).unwrap();
    sim::tick(&mut app, []);
    assert_eq!(
        now_of(&mut app, "arena"),
        t0 + 150,
        "scale 2: 100 ms per tick"
    );
    assert!(sim::worlds::set_scale(0.0).is_err());
    assert_eq!(
        sim::worlds::control(app.world_mut(), "nowhere", WorldControl::Pause).unwrap_err(),
        sim::WorldError::UnknownWorld("nowhere".into())
    );
}

#[test]
fn a_turn_based_world_moves_only_on_its_own_commands() {
    let mut app = app();
    control(&mut app, "arena", WorldControl::SetTurnBased { on: true });
    sim::tick(&mut app, []);
    let t0 = now_of(&mut app, "arena");
    // A command for a session of the other world does not move the arena.
    sim::tick(&mut app, [start(1, "lobby")]);
    assert_eq!(now_of(&mut app, "arena"), t0);
    sim::tick(&mut app, [start(2, "arena_hall")]);
    assert_eq!(now_of(&mut app, "arena"), t0 + 50);
}

#[test]
fn a_command_step_runs_commands_on_the_last_ticks_clock() {
    let mut app = app();
    sim::tick(&mut app, []);
    let before = sim::clock(app.world()).unwrap();
    let events = sim::between_ticks(&mut app, [start(1, "lobby")]);
    assert!(
        events.iter().any(|e| e.session == SessionId::from_u128(1)
            && matches!(e.event, Event::SessionStarted { .. })),
        "the start ran between ticks: {events:?}"
    );
    let started = events.first().unwrap();
    assert_eq!(started.at_ms, before.now_ms, "on the last tick's time");
    assert_eq!(
        sim::clock(app.world()).unwrap(),
        before,
        "no time passed and no tick was counted"
    );
    // World controls wait for the tick.
    control(&mut app, "arena", WorldControl::Pause);
    sim::between_ticks(&mut app, []);
    assert!(!clock_of(&mut app, "arena").paused);
    sim::tick(&mut app, []);
    assert!(clock_of(&mut app, "arena").paused);
}

#[test]
fn a_turn_based_world_moves_on_its_commands_between_ticks_too() {
    let mut app = app();
    control(&mut app, "arena", WorldControl::SetTurnBased { on: true });
    sim::tick(&mut app, []);
    let t0 = now_of(&mut app, "arena");
    sim::between_ticks(&mut app, [start(1, "lobby")]);
    assert_eq!(now_of(&mut app, "arena"), t0);
    sim::between_ticks(&mut app, [start(2, "arena_hall")]);
    assert_eq!(now_of(&mut app, "arena"), t0 + 50);
    sim::between_ticks(&mut app, []);
    assert_eq!(now_of(&mut app, "arena"), t0 + 50);
}

/// Between ticks the clock is the last tick's, so a client's honest estimate may run
/// up to two ticks ahead of it (one on a tick): an input claiming 80 ms past the server's
/// time is a hit between ticks and "ahead of the server clock" on a tick.
#[test]
fn an_input_between_ticks_may_claim_up_to_two_ticks_ahead() {
    let (mut a, mut b) = (app(), app());
    let mut events = sim::tick(&mut a, [start(1, "lobby")]);
    sim::tick(&mut b, [start(1, "lobby")]);
    for _ in 0..100 {
        if prompted(&events, 1).is_some() {
            break;
        }
        events = sim::tick(&mut a, []);
        sim::tick(&mut b, []);
    }
    let Event::MiniGamePrompt {
        round,
        nonce,
        closes_at_ms,
        ..
    } = prompted(&events, 1)
        .expect("the round opened")
        .event
        .clone()
    else {
        unreachable!()
    };
    let now = now_of(&mut a, "default");
    assert!(
        now + 200 < closes_at_ms,
        "the window is open well past the claims"
    );
    let input = |client_time_ms| SimCommand {
        session: SessionId::from_u128(1),
        command: Command::MiniGameInput {
            round,
            nonce,
            client_time_ms,
        },
    };
    let hit = |events: &[SimEvent]| {
        events.iter().find_map(|e| match &e.event {
            Event::MiniGameRound { hit, reason, .. } => Some((*hit, reason.clone())),
            _ => None,
        })
    };
    let between = sim::between_ticks(&mut a, [input(now + 80)]);
    assert_eq!(hit(&between), Some((true, None)));
    // On a tick the clock first moves to now + 50: the same 80 ms ahead of it is a miss.
    let on_tick = sim::tick(&mut b, [input(now + 50 + 80)]);
    let (hit, reason) = hit(&on_tick).expect("judged");
    assert!(!hit && reason.unwrap().contains("ahead of the server clock"));
}
