//! Data-driven transcript tests.
//!
//! Each `tests/scenarios/NAME.json` names a content directory and a list of steps. Running it
//! produces a transcript (`tests/transcripts/NAME.jsonl`): one JSON object per line, either an
//! input (`{"tick":N,"in":SimCommand}`, `{"tick":N,"world":WorldControl}`,
//! `{"tick":N,"reload":"dir"}`) or an output (`{"tick":N,"out":SimEvent}`).
//!
//! The test (1) runs each scenario and compares the transcript with the stored one, then
//! (2) replays the stored inputs alone, tick by tick, and checks the outputs are identical
//! (determinism). Re-record with `UPDATE_TRANSCRIPTS=1 cargo test -p sim --test transcripts`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bevy_app::App;
use serde::{Deserialize, Serialize};
use sim::{Command, Event, SessionId, SimCommand, SimConfig, SimEvent, WorldControl};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(dir: &str) -> Arc<domain::narrative::Content> {
    let path = crate_dir().join(dir);
    Arc::new(content::load_dir(&path).unwrap_or_else(|r| panic!("content {dir} invalid:\n{r}")))
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Scenario {
    content: String,
    #[serde(default = "tick_ms")]
    tick_ms: i64,
    steps: Vec<Step>,
}

fn tick_ms() -> i64 {
    50
}
fn one() -> u64 {
    1
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
enum Step {
    Start {
        seed: u64,
        #[serde(default)]
        scene: Option<String>,
        #[serde(default = "one")]
        session: u64,
    },
    Choose {
        edge: String,
        #[serde(default = "one")]
        session: u64,
    },
    Wait {
        ms: i64,
    },
    /// Waits for the session's next reflex prompt, then presses `delay_ms` after it opened;
    /// the input arrives `latency_ms` later.
    React {
        delay_ms: i64,
        #[serde(default)]
        latency_ms: i64,
        #[serde(default = "one")]
        session: u64,
    },
    /// Sends an input relative to the last prompt, optionally with a forged nonce/round.
    Input {
        offset_ms: i64,
        #[serde(default)]
        nonce: Option<u64>,
        #[serde(default)]
        round: Option<u32>,
        #[serde(default = "one")]
        session: u64,
    },
    /// Runs ticks until the session's next reflex prompt.
    AwaitPrompt {
        #[serde(default = "one")]
        session: u64,
    },
    /// Sends the last input again (a replay).
    ReplayLastInput,
    Save {
        #[serde(default = "one")]
        session: u64,
    },
    Leave {
        #[serde(default = "one")]
        session: u64,
    },
    /// Resumes the last saved save under `session`.
    Resume {
        session: u64,
    },
    Reload {
        content: String,
    },
    World(WorldControl),
    Command {
        session: u64,
        command: Command,
    },
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(untagged)]
enum Line {
    In { tick: u64, r#in: SimCommand },
    World { tick: u64, world: WorldControl },
    Reload { tick: u64, reload: String },
    Out { tick: u64, out: SimEvent },
}

struct Harness {
    app: App,
    tick: u64,
    lines: Vec<Line>,
    pending: Vec<Line>,
    last_prompt: std::collections::HashMap<u64, (u32, u64, i64)>,
    last_input: Option<SimCommand>,
    last_save: Option<domain::narrative::SessionSave>,
    tick_ms: i64,
}

fn sid(n: u64) -> SessionId {
    SessionId::from_u128(u128::from(n))
}

impl Harness {
    fn new(content: &str, tick_ms: i64) -> Self {
        let app = sim::build_app(
            load(content),
            SimConfig {
                tick_ms,
                ..Default::default()
            },
        );
        Self {
            app,
            tick: 0,
            lines: Vec::new(),
            pending: Vec::new(),
            last_prompt: Default::default(),
            last_input: None,
            last_save: None,
            tick_ms,
        }
    }

    fn now(&self) -> i64 {
        sim::clock(self.app.world()).unwrap().now_ms
    }

    fn send(&mut self, session: u64, command: Command) {
        let c = SimCommand {
            session: sid(session),
            command,
        };
        if matches!(c.command, Command::MiniGameInput { .. }) {
            self.last_input = Some(c.clone());
        }
        self.pending.push(Line::In {
            tick: self.tick + 1,
            r#in: c,
        });
    }

    fn run_tick(&mut self) {
        self.tick += 1;
        for l in std::mem::take(&mut self.pending) {
            match &l {
                Line::In { r#in, .. } => self
                    .app
                    .world_mut()
                    .resource_mut::<sim::Inbox>()
                    .commands
                    .push(r#in.clone()),
                Line::World { world, .. } => self
                    .app
                    .world_mut()
                    .resource_mut::<sim::Inbox>()
                    .world
                    .push(world.clone()),
                Line::Reload { reload, .. } => {
                    self.app.world_mut().resource_mut::<sim::Inbox>().reload = Some(load(reload));
                }
                Line::Out { .. } => {}
            }
            self.lines.push(l);
        }
        sim::step(&mut self.app);
        let events: Vec<SimEvent> = self
            .app
            .world_mut()
            .resource_mut::<sim::Outbox>()
            .drain()
            .collect();
        for ev in events {
            let n = ev.session.0.as_u128() as u64;
            match &ev.event {
                Event::MiniGamePrompt {
                    round,
                    nonce,
                    opens_at_ms,
                    ..
                } => {
                    self.last_prompt.insert(n, (*round, *nonce, *opens_at_ms));
                }
                Event::Saved { save } => self.last_save = Some((**save).clone()),
                _ => {}
            }
            self.lines.push(Line::Out {
                tick: self.tick,
                out: ev,
            });
        }
    }

    /// Runs ticks until session `session` gets a new mini-game prompt.
    fn await_prompt(&mut self, session: u64) {
        self.last_prompt.remove(&session);
        let mut guard = 0;
        while !self.last_prompt.contains_key(&session) {
            self.run_tick();
            guard += 1;
            assert!(guard < 1000, "no mini-game prompt for session {session}");
        }
    }

    /// Waits for the next prompt, then presses `delay_ms` after it opened; the input
    /// arrives `latency_ms` after the press.
    fn react(&mut self, session: u64, delay_ms: i64, latency_ms: i64) {
        self.await_prompt(session);
        let (round, nonce, opens) = self.last_prompt[&session];
        let press = opens + delay_ms;
        // Arrives in the tick whose time is >= press + latency.
        while self.now() + self.tick_ms < press + latency_ms {
            self.run_tick();
        }
        self.send(
            session,
            Command::MiniGameInput {
                round,
                nonce,
                client_time_ms: press,
            },
        );
        self.run_tick();
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Start {
                seed,
                scene,
                session,
            } => {
                self.send(session, Command::Start { scene, seed });
                self.run_tick();
            }
            Step::Choose { edge, session } => {
                self.send(session, Command::Choose { edge });
                self.run_tick();
            }
            Step::Wait { ms } => {
                let n = (ms + self.tick_ms - 1) / self.tick_ms;
                for _ in 0..n {
                    self.run_tick();
                }
            }
            Step::React {
                delay_ms,
                latency_ms,
                session,
            } => self.react(session, delay_ms, latency_ms),
            Step::Input {
                offset_ms,
                nonce,
                round,
                session,
            } => {
                let (r, n, opens) = *self.last_prompt.get(&session).expect("no prompt yet");
                let cmd = Command::MiniGameInput {
                    round: round.unwrap_or(r),
                    nonce: nonce.unwrap_or(n),
                    client_time_ms: opens + offset_ms,
                };
                self.send(session, cmd);
                self.run_tick();
            }
            Step::AwaitPrompt { session } => self.await_prompt(session),
            Step::ReplayLastInput => {
                let c = self.last_input.clone().expect("no input to replay");
                self.pending.push(Line::In {
                    tick: self.tick + 1,
                    r#in: c,
                });
                self.run_tick();
            }
            Step::Save { session } => {
                self.send(session, Command::Save);
                self.run_tick();
            }
            Step::Leave { session } => {
                self.send(session, Command::Leave);
                self.run_tick();
            }
            Step::Resume { session } => {
                let save = self.last_save.clone().expect("no save yet");
                self.send(
                    session,
                    Command::Resume {
                        save: Box::new(save),
                    },
                );
                self.run_tick();
            }
            Step::Reload { content } => {
                self.pending.push(Line::Reload {
                    tick: self.tick + 1,
                    reload: content,
                });
                self.run_tick();
            }
            Step::World(w) => {
                self.pending.push(Line::World {
                    tick: self.tick + 1,
                    world: w,
                });
                self.run_tick();
            }
            Step::Command { session, command } => {
                self.send(session, command);
                self.run_tick();
            }
        }
    }
}

fn to_jsonl(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| serde_json::to_string(l).unwrap() + "\n")
        .collect()
}

/// Replays only the inputs of a transcript and returns the full regenerated transcript.
fn replay(content: &str, tick_ms: i64, recorded: &[Line]) -> Vec<Line> {
    let mut h = Harness::new(content, tick_ms);
    let last = recorded
        .iter()
        .map(|l| match l {
            Line::In { tick, .. }
            | Line::World { tick, .. }
            | Line::Reload { tick, .. }
            | Line::Out { tick, .. } => *tick,
        })
        .max()
        .unwrap_or(0);
    for t in 1..=last {
        for l in recorded {
            match l {
                Line::In { tick, .. } | Line::World { tick, .. } | Line::Reload { tick, .. }
                    if *tick == t =>
                {
                    h.pending.push(l.clone());
                }
                _ => {}
            }
        }
        h.run_tick();
    }
    h.lines
}

fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("tests/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn run_scenario(path: &Path) -> (Scenario, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let sc: Scenario =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = Harness::new(&sc.content, sc.tick_ms);
    let steps: Vec<Step> = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::from_value(v["steps"].clone()).ok())
        .unwrap();
    for s in steps {
        h.step(s);
    }
    let out = to_jsonl(&h.lines);
    (sc, out)
}

#[test]
fn transcripts_match_and_replay() {
    let update = std::env::var_os("UPDATE_TRANSCRIPTS").is_some();
    let mut failures = Vec::new();
    let all = scenarios();
    assert!(all.len() >= 7, "expected scenarios, found {}", all.len());
    for path in all {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let (sc, got) = run_scenario(&path);
        let tpath = crate_dir()
            .join("tests/transcripts")
            .join(format!("{name}.jsonl"));
        if update {
            std::fs::write(&tpath, &got).unwrap();
        }
        let expected = std::fs::read_to_string(&tpath).unwrap_or_default();
        if got != expected {
            let diff = got
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .map(|i| {
                    format!(
                        "first difference at line {}:\n  got      {}\n  expected {}",
                        i + 1,
                        got.lines().nth(i).unwrap_or(""),
                        expected.lines().nth(i).unwrap_or("")
                    )
                })
                .unwrap_or_else(|| {
                    format!(
                        "lengths differ: got {} lines, expected {}",
                        got.lines().count(),
                        expected.lines().count()
                    )
                });
            failures.push(format!("{name}: {diff}"));
            continue;
        }
        // Replay the recorded inputs: identical outputs.
        let recorded: Vec<Line> = expected
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let replayed = to_jsonl(&replay(&sc.content, sc.tick_ms, &recorded));
        if replayed != expected {
            failures.push(format!("{name}: replay of recorded inputs diverged"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What the recorded transcripts show, by kind.
#[derive(Default)]
struct Seen {
    kinds: std::collections::BTreeSet<String>,
    changes: std::collections::BTreeSet<String>,
    events: std::collections::BTreeSet<String>,
    games: std::collections::BTreeSet<String>,
    ends: std::collections::BTreeSet<String>,
    errors: std::collections::BTreeSet<String>,
}

impl Seen {
    fn event(&mut self, ev: &serde_json::Value) {
        let ty = ev["type"].as_str().unwrap().to_string();
        match ty.as_str() {
            "node_entered" => {
                self.kinds.insert(ev["kind"].as_str().unwrap().to_string());
            }
            "state_delta" => {
                for c in ev["changes"].as_array().unwrap() {
                    self.changes.insert(c["type"].as_str().unwrap().to_string());
                }
            }
            "mini_game_result" => {
                self.games.insert(format!(
                    "{}:{}",
                    ev["game"].as_str().unwrap(),
                    ev["outcome"].as_str().unwrap()
                ));
            }
            "session_ended" => {
                self.ends.insert(ev["reason"].to_string());
            }
            "error" => {
                self.errors
                    .insert(ev["reason"]["code"].as_str().unwrap().to_string());
            }
            _ => {}
        }
        self.events.insert(ty);
    }

    fn recorded() -> Self {
        let mut seen = Seen::default();
        for path in scenarios() {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(
                crate_dir()
                    .join("tests/transcripts")
                    .join(format!("{name}.jsonl")),
            )
            .unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(ev) = v.get("out").map(|o| &o["event"]) {
                    seen.event(ev);
                }
            }
        }
        seen
    }
}

/// The recorded transcripts together exercise every node kind, every kind of state change,
/// both mini-games, saves/resumes, content changes, every end reason and the error codes.
#[test]
fn transcripts_cover_the_feature_set() {
    use std::collections::BTreeSet;
    let Seen {
        kinds,
        changes,
        events,
        games,
        ends,
        errors,
    } = Seen::recorded();
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        kinds,
        set(&[
            "action",
            "call",
            "choice",
            "condition",
            "dialogue",
            "end",
            "media",
            "minigame",
            "return"
        ])
    );
    assert_eq!(
        changes,
        set(&[
            "item",
            "level",
            "objective",
            "quest",
            "stat",
            "unlocked",
            "var",
            "xp"
        ])
    );
    assert!(
        games.is_superset(&set(&[
            "reflex:success",
            "reflex:failure",
            "skill_check:success"
        ])),
        "{games:?}"
    );
    assert_eq!(
        ends,
        set(&[
            r#"{"end":"success"}"#,
            r#"{"end":"failure"}"#,
            r#"{"end":"neutral"}"#,
            r#""left""#,
            r#""aborted""#
        ])
    );
    for e in [
        "session_started",
        "resumed",
        "node_entered",
        "choices_offered",
        "state_delta",
        "mini_game_prompt",
        "mini_game_round",
        "mini_game_result",
        "quest_updated",
        "objective_updated",
        "level_up",
        "scene_unlocked",
        "saved",
        "session_ended",
        "error",
    ] {
        assert!(events.contains(e), "no '{e}' event in any transcript");
    }
    for code in [
        "unknown_session",
        "session_exists",
        "unknown_scene",
        "scene_locked",
        "edge_not_offered",
        "not_revealed",
        "condition_false",
        "cooldown",
        "wrong_state",
        "stale_input",
        "save_rejected",
        "runtime",
    ] {
        assert!(errors.contains(code), "no '{code}' error in any transcript");
    }
}
