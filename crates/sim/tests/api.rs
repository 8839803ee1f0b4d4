//! The API other crates use instead of the components: `sim::Sessions` (the saves a
//! system takes after the tick, unloading), `sim::clock` and `sim::check_scene_start`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::system::RunSystemOnce;
use domain::narrative::{Content, SessionSave};
use sim::{Command, ErrorReason, Event, SessionId, SimCommand, SimConfig};

fn demo() -> Arc<Content> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes");
    Arc::new(content::load_dir(dir).unwrap())
}

fn cmd(n: u128, command: Command) -> SimCommand {
    SimCommand {
        session: SessionId::from_u128(n),
        command,
    }
}

/// What a system reading `sim::Sessions` after the tick sees of session `n`.
fn seen(app: &mut App, n: u128) -> (bool, Option<SessionSave>, Option<Vec<u8>>) {
    let id = SessionId::from_u128(n);
    app.world_mut()
        .run_system_once(move |s: sim::Sessions| (s.is_live(id), s.save(id), s.save_binary(id)))
        .unwrap()
}

#[test]
fn the_saves_a_system_takes_are_the_saves_the_simulation_answers() {
    let mut app = sim::build_app(demo(), SimConfig::default());
    sim::tick(
        &mut app,
        [cmd(
            1,
            Command::Start {
                scene: None,
                seed: 9,
            },
        )],
    );
    for _ in 0..30 {
        sim::tick(&mut app, []);
    }
    sim::tick(
        &mut app,
        [cmd(
            1,
            Command::Choose {
                edge: "arrive_next".into(),
            },
        )],
    );
    // Saved in the tick, read after it: the same world time, the same save.
    let ev = sim::tick(&mut app, [cmd(1, Command::Save)]);
    let answered = ev
        .into_iter()
        .find_map(|e| match e.event {
            Event::Saved { save } => Some(*save),
            _ => None,
        })
        .expect("saved event");
    let (live, save, binary) = seen(&mut app, 1);
    assert!(live);
    assert_eq!(save.as_ref(), Some(&answered));
    let decoded = SessionSave::decode_binary(&binary.unwrap()).unwrap();
    assert_eq!(decoded, answered);
    let clock = sim::clock(app.world()).unwrap();
    assert_eq!((clock.tick, clock.now_ms), (33, 33 * 50));

    // Unloading: the session leaves at once, its entity with the system's commands.
    let id = SessionId::from_u128(1);
    let unloaded = app
        .world_mut()
        .run_system_once(move |mut s: sim::Sessions| (s.unload(id), s.unload(id)))
        .unwrap();
    assert_eq!(unloaded, (true, false));
    assert_eq!(sim::session_count(&app), 0);
    assert_eq!(seen(&mut app, 1), (false, None, None));
    // It resumes from its save like any other.
    let ev = sim::tick(
        &mut app,
        [cmd(
            2,
            Command::Resume {
                save: Box::new(decoded),
            },
        )],
    );
    assert!(
        ev.iter().any(|e| matches!(e.event, Event::Resumed { .. })),
        "{ev:?}"
    );
}

#[test]
fn no_save_before_the_start_nor_after_the_end() {
    let mut app = sim::build_app(demo(), SimConfig::default());
    // Queued, not yet run.
    app.world_mut()
        .resource_mut::<sim::Inbox>()
        .commands
        .push(cmd(
            3,
            Command::Start {
                scene: None,
                seed: 1,
            },
        ));
    assert_eq!(seen(&mut app, 3), (false, None, None));
    sim::step(&mut app);
    assert!(seen(&mut app, 3).0);
    sim::tick(&mut app, [cmd(3, Command::Leave)]);
    assert_eq!(seen(&mut app, 3), (false, None, None));
}

#[test]
fn where_a_session_may_start_is_one_rule() {
    let content = demo();
    assert_eq!(
        sim::check_scene_start(&content, "gallery").unwrap().id,
        "gallery"
    );
    assert_eq!(
        sim::check_scene_start(&content, "epilogue").unwrap_err(),
        ErrorReason::SceneLocked {
            scene: "epilogue".into()
        }
    );
    assert_eq!(
        sim::check_scene_start(&content, "nowhere").unwrap_err(),
        ErrorReason::UnknownScene {
            scene: "nowhere".into()
        }
    );
    assert!(matches!(
        sim::check_scene_start(&content, "vault").unwrap_err(),
        ErrorReason::WrongState { .. }
    ));
    // The simulation refuses a start the same way.
    let mut app = sim::build_app(content, SimConfig::default());
    let ev = sim::tick(
        &mut app,
        [cmd(
            4,
            Command::Start {
                scene: Some("epilogue".into()),
                seed: 1,
            },
        )],
    );
    assert!(
        ev.iter().any(|e| matches!(&e.event, Event::Error { reason: ErrorReason::SceneLocked { scene }, .. } if scene == "epilogue")),
        "{ev:?}"
    );
}
