//! Property tests over random command sequences on the demo story:
//! no panics, determinism, and rejected commands change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bevy_app::App;
use domain::narrative::{Content, SessionSave};
use proptest::prelude::*;
use sim::{Command, Event, SessionId, SimCommand, SimConfig, SimEvent};

fn demo() -> Arc<Content> {
    static C: OnceLock<Arc<Content>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes");
        Arc::new(content::load_dir(dir).unwrap())
    })
    .clone()
}

#[derive(Clone, Debug)]
enum Act {
    Choose(&'static str),
    Wait(u8),
    Input(i64),
    Save,
}

const EDGES: &[&str] = &[
    "arrive_next",
    "accept",
    "go_sneak",
    "go_charm",
    "go_study",
    "try_crack",
    "back_off",
    "cheers",
    "nope",
];

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => prop::sample::select(EDGES).prop_map(Act::Choose),
        2 => (1u8..40).prop_map(Act::Wait),
        1 => (-200i64..1200).prop_map(Act::Input),
        1 => Just(Act::Save),
    ]
}

fn sid() -> SessionId {
    SessionId::from_u128(7)
}

fn tick(app: &mut App, c: Option<Command>) -> Vec<SimEvent> {
    sim::tick(
        app,
        c.map(|command| SimCommand {
            session: sid(),
            command,
        }),
    )
}

fn save(app: &mut App, out: &mut Vec<SimEvent>) -> Option<SessionSave> {
    let evs = tick(app, Some(Command::Save));
    let s = evs.iter().find_map(|e| match &e.event {
        Event::Saved { save } => Some((**save).clone()),
        _ => None,
    });
    out.extend(evs);
    s
}

/// Runs a sequence; returns the transcript. Checks that rejected choices change nothing.
fn run(seed: u64, acts: &[Act]) -> Vec<SimEvent> {
    let mut app = sim::build_app(demo(), SimConfig::default());
    let mut out = tick(&mut app, Some(Command::Start { scene: None, seed }));
    let mut last_prompt: Option<(u32, u64, i64)> = None;
    for a in acts {
        let evs = match a {
            Act::Choose(edge) => {
                let mut before_evs = Vec::new();
                let before = save(&mut app, &mut before_evs);
                let mut evs = tick(
                    &mut app,
                    Some(Command::Choose {
                        edge: (*edge).into(),
                    }),
                );
                let rejected = evs.iter().any(|e| matches!(e.event, Event::Error { .. }));
                let mut after_evs = Vec::new();
                let after = if rejected {
                    save(&mut app, &mut after_evs)
                } else {
                    None
                };
                // Mini-game timers run on their own clock and may open a round (drawing
                // from the RNG) in the same ticks, after the save in the tick's order: then
                // the state changed for that reason.
                let timer_fired = before_evs.iter().chain(&evs).chain(&after_evs).any(|e| {
                    matches!(
                        e.event,
                        Event::MiniGamePrompt { .. }
                            | Event::MiniGameRound { .. }
                            | Event::MiniGameResult { .. }
                    )
                });
                evs.extend(after_evs);
                out.extend(before_evs);
                if rejected
                    && !timer_fired
                    && let Some(mut before) = before
                {
                    let mut after = after.expect("still saveable after a rejected command");
                    // Only time may differ: the time spent in the node, and with it the
                    // remaining cooldowns (saves store them relative to now), which shrink
                    // by the same amount or drop out once expired.
                    let dt = after.elapsed_in_node_ms - before.elapsed_in_node_ms;
                    assert!(dt >= 0, "time went backwards: {dt}");
                    before.cooldowns.retain(|_, left| *left > dt);
                    for left in before.cooldowns.values_mut() {
                        *left -= dt;
                    }
                    after.elapsed_in_node_ms = 0;
                    before.elapsed_in_node_ms = 0;
                    assert_eq!(before, after, "rejected '{edge}' changed the session");
                }
                evs
            }
            Act::Wait(n) => (0..*n).flat_map(|_| tick(&mut app, None)).collect(),
            Act::Input(offset) => match last_prompt {
                Some((round, nonce, opens)) => tick(
                    &mut app,
                    Some(Command::MiniGameInput {
                        round,
                        nonce,
                        client_time_ms: opens + offset,
                    }),
                ),
                None => tick(
                    &mut app,
                    Some(Command::MiniGameInput {
                        round: 1,
                        nonce: 0,
                        client_time_ms: *offset,
                    }),
                ),
            },
            Act::Save => tick(&mut app, Some(Command::Save)),
        };
        for e in &evs {
            if let Event::MiniGamePrompt {
                round,
                nonce,
                opens_at_ms,
                ..
            } = e.event
            {
                last_prompt = Some((round, nonce, opens_at_ms));
            }
        }
        out.extend(evs);
    }
    out
}

proptest! {
    // Fixed seed: CI must be deterministic. Random exploration (seeds 1-300 ran clean
    // on 2026-11-22): PROPTEST_RNG_SEED=<n> cargo test -p sim --test props.
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_122),
        ),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_play_is_deterministic_and_rejections_change_nothing(
        seed in any::<u64>(),
        acts in prop::collection::vec(act(), 1..40),
    ) {
        let a = run(seed, &acts);
        let b = run(seed, &acts);
        prop_assert_eq!(&a, &b);
        // Nonces fit a JSON number exactly (a JavaScript double holds 53 bits).
        for e in &a {
            if let sim::Event::MiniGamePrompt { nonce, .. } = e.event {
                prop_assert!(nonce < 1 << 53, "nonce {nonce} is not JSON-safe");
            }
        }
        // Sequence numbers are gap-free per session while it lives. After it has ended,
        // commands to it are answered with errors that carry seq 0 (documented: the
        // session no longer exists to number them).
        let mine: Vec<&sim::SimEvent> = a.iter().filter(|e| e.session == sid()).collect();
        let end = mine
            .iter()
            .position(|e| matches!(e.event, sim::Event::SessionEnded { .. }))
            .map_or(mine.len(), |i| i + 1);
        let seqs: Vec<u64> = mine[..end].iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (0..seqs.len() as u64).collect();
        prop_assert_eq!(seqs, expected);
        for late in &mine[end..] {
            prop_assert!(matches!(late.event, sim::Event::Error { .. }), "only errors after the end: {:?}", late.event);
            prop_assert_eq!(late.seq, 0);
        }
    }
}
