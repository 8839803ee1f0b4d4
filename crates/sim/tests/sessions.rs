//! Session-level tests: saves (format version, JSON round trip, content mapping), determinism
//! under interleaving with many other sessions, and idle sessions costing no work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bevy_app::App;
use domain::narrative::{Content, SessionSave};
use sim::{Command, ErrorReason, Event, SessionId, SimCommand, SimConfig, SimEvent};

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

fn choose(n: u128, edge: &str) -> SimCommand {
    cmd(n, Command::Choose { edge: edge.into() })
}

fn wait(app: &mut App, ticks: usize) -> Vec<SimEvent> {
    (0..ticks).flat_map(|_| sim::tick(app, [])).collect()
}

/// Plays the demo to the `plan` choice.
fn to_plan(app: &mut App, n: u128, seed: u64) {
    sim::tick(app, [cmd(n, Command::Start { scene: None, seed })]);
    wait(app, 30);
    sim::tick(app, [choose(n, "arrive_next")]);
    let ev = sim::tick(app, [choose(n, "accept")]);
    assert!(
        ev.iter()
            .any(|e| matches!(&e.event, Event::ChoicesOffered { node, .. } if node == "plan")),
        "{ev:?}"
    );
}

fn save_of(app: &mut App, n: u128) -> SessionSave {
    let ev = sim::tick(app, [cmd(n, Command::Save)]);
    ev.into_iter()
        .find_map(|e| match e.event {
            Event::Saved { save } => Some(*save),
            _ => None,
        })
        .expect("saved event")
}

fn error_of(events: &[SimEvent]) -> Option<&ErrorReason> {
    events.iter().find_map(|e| match &e.event {
        Event::Error { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn save_is_versioned_and_round_trips_as_json() {
    let mut app = sim::build_app(demo(), SimConfig::default());
    to_plan(&mut app, 1, 4);
    let save = save_of(&mut app, 1);
    assert_eq!(save.version, domain::narrative::SAVE_VERSION);
    let json = serde_json::to_string(&save).unwrap();
    let back: SessionSave = serde_json::from_str(&json).unwrap();
    assert_eq!(back, save);

    let mut future = save.clone();
    future.version = 2;
    let ev = sim::tick(
        &mut app,
        [cmd(
            2,
            Command::Resume {
                save: Box::new(future),
            },
        )],
    );
    let reason = error_of(&ev).unwrap();
    assert_eq!(
        reason.to_string(),
        "unsupported save version 2 (this server reads version 1)"
    );
    assert_eq!(
        sim::session_count(&app),
        1,
        "a rejected resume changes nothing"
    );

    // A resumed save continues exactly like the original session.
    sim::tick(
        &mut app,
        [cmd(
            3,
            Command::Resume {
                save: Box::new(save),
            },
        )],
    );
    let a = sim::tick(&mut app, [choose(1, "go_charm"), choose(3, "go_charm")]);
    let strip = |n: u128| -> Vec<Event> {
        a.iter()
            .filter(|e| e.session == SessionId::from_u128(n))
            .map(|e| e.event.clone())
            .collect()
    };
    assert_eq!(strip(1), strip(3));
    assert!(!strip(1).is_empty());
}

#[test]
fn save_mapping_reports_dropped_state_and_incompatibilities() {
    let content = demo();
    let mut app = sim::build_app(content.clone(), SimConfig::default());
    to_plan(&mut app, 1, 4);
    let save = save_of(&mut app, 1);

    // Unknown variable and item in the save are dropped with notes; nothing soft-locks.
    let mut s = save.clone();
    s.vars
        .0
        .insert("ghost".into(), domain::narrative::Value::Int(1));
    s.progress.items.insert("ghost_item".into(), 2);
    let mut mapped = s.clone();
    let notes = domain::narrative::save::map_save(&mut mapped, &content).unwrap();
    assert_eq!(
        notes,
        vec![
            "dropped variable 'ghost'".to_string(),
            "dropped item 'ghost_item'".to_string()
        ]
    );

    // A position that no longer exists is a clear incompatibility.
    let mut s = save.clone();
    s.stack.last_mut().unwrap().node = "gone".into();
    let err = domain::narrative::save::map_save(&mut s.clone(), &content).unwrap_err();
    assert_eq!(
        err.to_string(),
        "save incompatible with current content: scene 'gallery' no longer has node 'gone'"
    );
    let ev = sim::tick(&mut app, [cmd(5, Command::Resume { save: Box::new(s) })]);
    assert!(matches!(
        error_of(&ev),
        Some(ErrorReason::SaveRejected { .. })
    ));

    // A caller frame whose node no longer calls the callee.
    let mut s = save;
    s.stack.insert(
        0,
        domain::narrative::Frame {
            scene: "gallery".into(),
            node: "plan".into(),
            args: Default::default(),
        },
    );
    let err = domain::narrative::save::map_save(&mut s, &content).unwrap_err();
    assert_eq!(
        err.to_string(),
        "save incompatible with current content: node 'plan' in scene 'gallery' no longer calls scene 'gallery'"
    );
}

#[test]
fn interleaving_with_other_sessions_does_not_change_a_transcript() {
    fn play(noise: bool) -> Vec<Event> {
        let mut app = sim::build_app(demo(), SimConfig::default());
        let mut out = Vec::new();
        let mut tick = |app: &mut App, mut cmds: Vec<SimCommand>, t: u64| {
            if noise {
                for k in 0..40u128 {
                    let n = 1000 + k;
                    cmds.push(if t == 0 {
                        cmd(
                            n,
                            Command::Start {
                                scene: None,
                                seed: k as u64,
                            },
                        )
                    } else {
                        choose(
                            n,
                            ["arrive_next", "accept", "go_sneak", "go_charm", "nope"]
                                [(t as usize + k as usize) % 5],
                        )
                    });
                }
                // Noise first, so the session under test is processed after the others.
                cmds.rotate_left(1);
            }
            let ev = sim::tick(app, cmds);
            out.extend(
                ev.into_iter()
                    .filter(|e| e.session == SessionId::from_u128(1))
                    .map(|e| e.event),
            );
        };
        tick(
            &mut app,
            vec![cmd(
                1,
                Command::Start {
                    scene: None,
                    seed: 9,
                },
            )],
            0,
        );
        for t in 1..=30 {
            tick(&mut app, vec![], t);
        }
        for (t, e) in ["arrive_next", "accept", "go_charm", "try_crack", "back_off"]
            .iter()
            .enumerate()
        {
            tick(&mut app, vec![choose(1, e)], 31 + t as u64);
        }
        out
    }
    let alone = play(false);
    let crowded = play(true);
    assert!(alone.len() > 10);
    assert_eq!(alone, crowded);
}

#[test]
fn idle_sessions_produce_no_work() {
    let mut app = sim::build_app(demo(), SimConfig::default());
    let starts: Vec<SimCommand> = (0..500)
        .map(|n| {
            cmd(
                n,
                Command::Start {
                    scene: None,
                    seed: n as u64,
                },
            )
        })
        .collect();
    assert_eq!(sim::tick(&mut app, starts).len(), 1500);
    for _ in 0..100 {
        assert!(sim::tick(&mut app, []).is_empty());
    }
    assert_eq!(app.world().resource::<sim::Timers>().len(), 0);
    assert_eq!(sim::session_count(&app), 500);
}

/// The media spec of the demo's first node, as the sim announces it.
fn arrive_spec(events: &[SimEvent]) -> (String, String, String) {
    events
        .iter()
        .find_map(|e| match &e.event {
            Event::NodeEntered { node, media, .. } if node == "arrive" => match media.as_deref() {
                Some(sim::Media::Generate {
                    operation,
                    prompt,
                    params,
                }) => Some((operation.clone(), prompt.clone(), params.clone())),
                other => panic!("arrive shows {other:?}"),
            },
            _ => None,
        })
        .expect("entered arrive")
}

/// Starts session `n` (seed `n`) at the start scene; the start tick's events.
fn start(app: &mut App, n: u128) -> Vec<SimEvent> {
    let seed = n as u64;
    sim::tick(app, [cmd(n, Command::Start { scene: None, seed })])
}

/// Reports generated media as ready, for the next tick.
fn push_media(app: &mut App, ready: sim::MediaReady) {
    app.world_mut()
        .resource_mut::<sim::Inbox>()
        .media
        .push(ready);
}

/// The media of the node session `n` entered in `events`.
fn media_entered(events: &[SimEvent], n: u128) -> Option<Box<sim::Media>> {
    events.iter().find_map(|e| match &e.event {
        Event::NodeEntered { media, .. } if e.session == SessionId::from_u128(n) => media.clone(),
        _ => None,
    })
}

#[test]
fn generated_media_is_pushed_to_sessions_in_the_node_and_shown_to_later_ones() {
    let mut app = sim::build_app(demo(), SimConfig::default());
    let ev = start(&mut app, 1);
    let (operation, prompt, params) = arrive_spec(&ev);
    // A second session moves on before the asset is ready: it must not get it.
    let ev = start(&mut app, 2);
    assert_eq!(arrive_spec(&ev).0, operation);
    wait(&mut app, 30);
    let ev = sim::tick(&mut app, [choose(2, "arrive_next")]);
    assert!(error_of(&ev).is_none(), "{ev:?}");

    // An asset for another spec changes nothing.
    let ready = |prompt: &str, asset: &str| sim::MediaReady {
        operation: operation.clone(),
        prompt: prompt.to_owned(),
        params: params.clone(),
        asset: asset.to_owned(),
    };
    push_media(&mut app, ready("another prompt", "asset-x"));
    assert!(sim::tick(&mut app, []).is_empty());

    let before = save_of(&mut app, 1);
    push_media(&mut app, ready(&prompt, "asset-1"));
    let ev = sim::tick(&mut app, []);
    assert_eq!(ev.len(), 1, "only session 1 stands in the node: {ev:?}");
    assert_eq!(ev[0].session, SessionId::from_u128(1));
    assert_eq!(
        ev[0].event,
        Event::MediaReady {
            scene: "gallery".into(),
            node: "arrive".into(),
            media: Box::new(sim::Media::Asset {
                asset: "asset-1".into(),
                variant: None,
            }),
        }
    );
    // Media is presentation: the session's state is unchanged (but for time).
    let mut after = save_of(&mut app, 1);
    after.elapsed_in_node_ms = before.elapsed_in_node_ms;
    assert_eq!(before, after);

    // The same asset again is not pushed twice.
    push_media(&mut app, ready(&prompt, "asset-1"));
    assert!(sim::tick(&mut app, []).is_empty());

    // A session entering later sees the asset at once, as does a resumed one.
    let ev = start(&mut app, 3);
    assert_eq!(
        media_entered(&ev, 3).as_deref(),
        Some(&sim::Media::Asset {
            asset: "asset-1".into(),
            variant: None,
        })
    );
    let ev = sim::tick(
        &mut app,
        [cmd(
            4,
            Command::Resume {
                save: Box::new(before),
            },
        )],
    );
    assert!(
        ev.iter().any(|e| matches!(&e.event,
            Event::NodeEntered { media: Some(m), .. }
                if **m == sim::Media::Asset { asset: "asset-1".into(), variant: None })),
        "{ev:?}"
    );
}

/// Media that became ready between ticks is there for the commands of the same command
/// step: a session starting in that step is shown the asset, not the spec.
#[test]
fn media_ready_between_ticks_is_shown_to_the_commands_after_it() {
    let mut app = sim::build_app(demo(), SimConfig::default());
    let (operation, prompt, params) = arrive_spec(&start(&mut app, 1));
    push_media(
        &mut app,
        sim::MediaReady {
            operation,
            prompt,
            params,
            asset: "asset-1".into(),
        },
    );
    let seed = 2;
    let ev = sim::between_ticks(&mut app, [cmd(2, Command::Start { scene: None, seed })]);
    assert_eq!(
        media_entered(&ev, 2).as_deref(),
        Some(&sim::Media::Asset {
            asset: "asset-1".into(),
            variant: None,
        })
    );
}
