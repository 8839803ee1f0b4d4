//! The mini-game registry: a game that is not built in plugs in by implementing
//! `MiniGame` and being registered; the validator learns it from the same registry, and
//! a scene plays it like a built-in game.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use domain::narrative::MiniGameSpec;
use domain::narrative::minigame::MiniGameRules;
use domain::narrative::state::SceneTypes;
use sim::{
    Command, Event, Input, MiniGame, MiniGameRun, MiniGames, Outcome, Play, RoundPhase, SessionId,
    SimCommand, SimConfig, Timer, Turn,
};

/// `tap`: one round, open at once; tap it with its nonce before the window closes.
struct Tap;

const NONCE: u64 = 42;

impl MiniGameRules for Tap {
    fn id(&self) -> &str {
        "tap"
    }
    fn check(&self, spec: &MiniGameSpec, _: &SceneTypes<'_>) -> Vec<String> {
        match spec.window_ms {
            Some(0) | None => vec!["tap: window_ms is required and positive".into()],
            Some(_) => Vec::new(),
        }
    }
}

impl MiniGame for Tap {
    fn start(&self, play: &mut Play<'_, '_, '_, '_>, spec: &MiniGameSpec) -> Result<Turn, String> {
        let now = play.now();
        let window = spec.window_ms.unwrap_or(1) as i64;
        let timer = play.schedule(now + window, Timer::WindowCloses);
        play.set_run(Some(MiniGameRun {
            game: "tap".into(),
            round: 1,
            rounds: 1,
            hits: 0,
            need: 1,
            window_ms: window as u64,
            phase: RoundPhase::Open {
                nonce: NONCE,
                opens_at_ms: now,
                closes_at_ms: now + window,
            },
            timer,
        }));
        play.emit(Event::MiniGamePrompt {
            game: "tap".into(),
            round: 1,
            rounds: 1,
            nonce: NONCE,
            opens_at_ms: now,
            closes_at_ms: now + window,
        });
        Ok(Turn::Wait)
    }

    fn on_timer(&self, play: &mut Play<'_, '_, '_, '_>, timer: Timer) -> Result<Turn, String> {
        match timer {
            Timer::WindowCloses => Ok(finish(play, Outcome::Failure)),
            Timer::RoundOpens => Ok(Turn::Wait),
        }
    }

    fn on_input(&self, play: &mut Play<'_, '_, '_, '_>, input: Input) -> Result<Turn, String> {
        if input.nonce != NONCE {
            play.reject(
                "minigame_input",
                sim::ErrorReason::StaleInput {
                    detail: "wrong nonce".into(),
                },
            );
            return Ok(Turn::Wait);
        }
        Ok(finish(play, Outcome::Success))
    }
}

fn finish(play: &mut Play<'_, '_, '_, '_>, outcome: Outcome) -> Turn {
    play.emit(Event::MiniGameResult {
        game: "tap".into(),
        outcome,
        score: i64::from(outcome == Outcome::Success),
        detail: "tapped".into(),
    });
    Turn::Done(outcome)
}

fn games() -> MiniGames {
    let mut games = MiniGames::builtin();
    games.register(Tap);
    games
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/content/tap")
}

fn cmd(command: Command) -> SimCommand {
    SimCommand {
        session: SessionId::from_u128(1),
        command,
    }
}

#[test]
fn the_validator_knows_the_games_of_the_registry() {
    let report = content::load_dir(dir()).unwrap_err().to_string();
    assert!(
        report.contains("unknown mini-game 'tap' (known: reflex, skill_check)"),
        "{report}"
    );
    let checks = content::Checks {
        minigames: Some(games().rules()),
        ..Default::default()
    };
    content::load_dir_with(dir(), &checks).unwrap();
    let games = games();
    let ids: Vec<&str> = games.ids().collect();
    assert_eq!(ids, ["reflex", "skill_check", "tap"]);
}

fn play(input_nonce: Option<u64>) -> Vec<sim::SimEvent> {
    let checks = content::Checks {
        minigames: Some(games().rules()),
        ..Default::default()
    };
    let content = Arc::new(content::load_dir_with(dir(), &checks).unwrap());
    let mut app = sim::build_app(content, SimConfig::default());
    app.insert_resource(games());
    let mut events = sim::tick(
        &mut app,
        [cmd(Command::Start {
            scene: None,
            seed: 1,
        })],
    );
    if let Some(nonce) = input_nonce {
        let at = sim::clock(app.world()).unwrap().now_ms;
        events.extend(sim::tick(
            &mut app,
            [cmd(Command::MiniGameInput {
                round: 1,
                nonce,
                client_time_ms: at,
            })],
        ));
    }
    for _ in 0..20 {
        events.extend(sim::tick(&mut app, []));
    }
    events
}

fn ending(events: &[sim::SimEvent]) -> Option<Outcome> {
    events.iter().find_map(|e| match &e.event {
        Event::MiniGameResult { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

#[test]
fn a_registered_game_plays_through_a_scene() {
    let tapped = play(Some(NONCE));
    assert!(
        tapped
            .iter()
            .any(|e| matches!(&e.event, Event::MiniGamePrompt { game, .. } if game == "tap"))
    );
    assert_eq!(ending(&tapped), Some(Outcome::Success));
    assert!(
        tapped
            .iter()
            .any(|e| matches!(&e.event, Event::NodeEntered { node, .. } if node == "won"))
    );
    // Without a tap its window closes: the timer it scheduled ends it.
    let missed = play(None);
    assert_eq!(ending(&missed), Some(Outcome::Failure));
    // A wrong tap is refused and changes nothing; the window still closes.
    let wrong = play(Some(NONCE + 1));
    assert!(wrong.iter().any(|e| matches!(
        &e.event,
        Event::Error {
            reason: sim::ErrorReason::StaleInput { .. },
            ..
        }
    )));
    assert_eq!(ending(&wrong), Some(Outcome::Failure));
}

#[test]
fn a_registered_game_plays_in_a_playback_step() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/content/tap_steps");
    // A step's game is checked against the registry as a minigame node's is.
    let report = content::load_dir(&dir).unwrap_err().to_string();
    assert!(
        report
            .contains("node 'door': step 0: unknown mini-game 'tap' (known: reflex, skill_check)"),
        "{report}"
    );
    let checks = content::Checks {
        minigames: Some(games().rules()),
        ..Default::default()
    };
    let content = Arc::new(content::load_dir_with(&dir, &checks).unwrap());
    let mut app = sim::build_app(content, SimConfig::default());
    app.insert_resource(games());
    // Entering the node begins step 0, whose game prompts at once.
    let ev = sim::tick(
        &mut app,
        [cmd(Command::Start {
            scene: None,
            seed: 1,
        })],
    );
    assert!(
        ev.iter()
            .any(|e| matches!(&e.event, Event::MiniGamePrompt { game, .. } if game == "tap")),
        "{ev:?}"
    );
    let at = sim::clock(app.world()).unwrap().now_ms;
    let ev = sim::tick(
        &mut app,
        [cmd(Command::MiniGameInput {
            round: 1,
            nonce: NONCE,
            client_time_ms: at,
        })],
    );
    assert_eq!(ending(&ev), Some(Outcome::Success));
    let events: Vec<&Event> = ev.iter().map(|e| &e.event).collect();
    assert!(
        events.contains(&&Event::PlaybackStep {
            node: "door".into(),
            step: 1
        }),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::NodeEntered { .. } | Event::Error { .. })),
        "{events:?}"
    );
}
