//! Mini-games: the registry ([`MiniGames`], a resource), the trait a game implements
//! ([`MiniGame`]: its parameter rules, and what starting it, its timers and its inputs
//! do), the handle a game plays through ([`Play`]), and the dispatch from a node, a due
//! timer or a player's input to the session's game. Built in: `reflex` (module
//! `reflex`) and `skill_check` (module `skill_check`). A game runs in a minigame node or
//! in a media node's step (see [`crate::playback`]); the same games, timers and inputs
//! either way, only the end differs. Nothing here advances: a game resolved in a node
//! returns [`Next::Moved`] and the caller hands it to [`crate::advance::after`].
//!
//! A new game: implement [`MiniGame`] (and `MiniGameRules` for its parameters), register
//! it with [`MiniGames::register`] in the app's registry, and give the content
//! validator [`MiniGames::rules`] (`content::Checks::minigames`).

mod reflex;
mod skill_check;

use std::collections::BTreeMap;
use std::sync::Arc;

use bevy_ecs::prelude::*;

use domain::narrative::minigame::MiniGameRules;
use domain::narrative::state::stat_value;
use domain::narrative::{MiniGameSpec, NodeKind, Rng, WorldConfig};

pub use reflex::Reflex;
pub use skill_check::SkillCheck;

use crate::components::{MiniGameRun, Phase};
use crate::cx::{Cx, Next, Res, S, wrong_state};
use crate::protocol::{ErrorReason, Event, Outcome};
use crate::resources::{SimConfig, Timer};
use crate::{edges, playback};

/// What a game's step leaves: it waits (for a timer or an input), or it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The game goes on; the session waits in it.
    Wait,
    /// The game is over with this outcome: a minigame node takes the edge for it, a
    /// media node's step moves its playback to the next step.
    Done(Outcome),
}

/// A player's input to the running game (`Command::MiniGameInput`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// The round it answers.
    pub round: u32,
    /// The round's nonce, as its prompt gave it.
    pub nonce: u64,
    /// The client's claimed time, in the session's world time (ms).
    pub client_time_ms: i64,
}

/// A mini-game: its rules (id, parameter checks, for the validator) and its play. A game
/// keeps its state in the session's [`MiniGameRun`] (what a save keeps: round and hits)
/// and schedules its [`Timer`]s through [`Play`]; a stale timer never reaches it.
pub trait MiniGame: MiniGameRules {
    /// The session enters a node of this game, or a step running it begins.
    fn start(&self, play: &mut Play<'_, '_, '_, '_>, spec: &MiniGameSpec) -> Result<Turn, String>;

    /// A saved run resumes at `round` with `hits` so far (a game that keeps no run
    /// cannot be saved inside, and refuses).
    fn resume(
        &self,
        _play: &mut Play<'_, '_, '_, '_>,
        _spec: &MiniGameSpec,
        _round: u32,
        _hits: u32,
    ) -> Result<(), String> {
        Err(format!("cannot resume mini-game '{}'", self.id()))
    }

    /// A timer of the current run is due.
    fn on_timer(&self, play: &mut Play<'_, '_, '_, '_>, timer: Timer) -> Result<Turn, String>;

    /// The player's input while the run waits. A refused input is rejected through
    /// [`Play::reject`] and returns [`Turn::Wait`].
    fn on_input(&self, play: &mut Play<'_, '_, '_, '_>, input: Input) -> Result<Turn, String>;
}

/// What a game reads and changes of the session it runs in.
pub struct Play<'p, 'c, 'w, 's> {
    s: &'p mut crate::components::SessionQueryItem<'w, 's>,
    cx: &'p mut Cx<'c>,
}

impl Play<'_, '_, '_, '_> {
    /// The session's world time now (ms).
    pub fn now(&self) -> i64 {
        self.cx.now
    }

    /// How far ahead of [`Self::now`] a client's clock may honestly be: the clock moves
    /// a tick at a time, so one tick on a tick, and two in a command step between
    /// ticks (which runs on the last tick's clock).
    pub fn clock_slack_ms(&self) -> i64 {
        self.cx.ahead_ms
    }

    /// The simulation's tunables (reflex delays, input grace and latency).
    pub fn config(&self) -> &SimConfig {
        self.cx.cfg
    }

    /// The world config.
    pub fn world(&self) -> &WorldConfig {
        &self.cx.content.world
    }

    /// The session's seeded generator (every random draw comes from it).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.s.rng.0
    }

    /// A stat axis's value for an entity.
    pub fn stat(&self, stat: &str, entity: &str, axis: &str) -> Result<i64, String> {
        stat_value(
            &self.cx.content.world,
            &self.s.progress.0,
            stat,
            entity,
            axis,
        )
    }

    /// The current run, if the game keeps one.
    pub fn run(&self) -> Option<&MiniGameRun> {
        self.s.minigame.0.as_ref()
    }

    /// The current run, to change.
    pub fn run_mut(&mut self) -> Option<&mut MiniGameRun> {
        self.s.minigame.0.as_mut()
    }

    /// Replaces the run.
    pub fn set_run(&mut self, run: Option<MiniGameRun>) {
        self.s.minigame.0 = run;
    }

    /// Schedules a timer at world time `due_ms` (in the session's world); returns its
    /// token, to keep in the run's `timer` (an older token is stale).
    pub fn schedule(&mut self, due_ms: i64, timer: Timer) -> u64 {
        self.cx
            .timers
            .schedule(self.cx.world, due_ms, self.cx.entity, timer)
    }

    /// Emits an event to the session (a prompt, a round, the result).
    pub fn emit(&mut self, event: Event) {
        self.cx.emit(event);
    }

    /// Refuses the command being processed (it changes nothing).
    pub fn reject(&mut self, command: &str, reason: ErrorReason) {
        self.cx.reject(command, reason);
    }
}

/// The mini-games sessions can play, by id.
#[derive(Resource, Clone, Default)]
pub struct MiniGames {
    games: BTreeMap<String, Arc<dyn MiniGame>>,
}

impl std::fmt::Debug for MiniGames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.games.keys()).finish()
    }
}

impl MiniGames {
    /// The built-in games: `reflex` and `skill_check`.
    pub fn builtin() -> Self {
        let mut games = Self::default();
        games.register(Reflex).register(SkillCheck);
        games
    }

    /// Adds a game (replacing one of the same id).
    pub fn register(&mut self, game: impl MiniGame + 'static) -> &mut Self {
        self.games.insert(game.id().to_owned(), Arc::new(game));
        self
    }

    /// A game by id.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn MiniGame>> {
        self.games.get(id)
    }

    /// The games' ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.games.keys().map(String::as_str)
    }

    /// The games' rules, for the content validator (`content::Checks::minigames`).
    pub fn rules(&self) -> Arc<[Arc<dyn MiniGameRules>]> {
        self.games
            .values()
            .map(|g| Arc::clone(g) as Arc<dyn MiniGameRules>)
            .collect()
    }
}

fn game(cx: &Cx<'_>, id: &str) -> Res<Arc<dyn MiniGame>> {
    cx.games
        .get(id)
        .cloned()
        .ok_or_else(|| format!("unknown mini-game '{id}'"))
}

/// What runs the session's game: a minigame node, or a step of a media node's steps
/// playback (the node kind at the session's position tells).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// A minigame node: its outcome chooses the edge taken.
    Node,
    /// A media node's step: once over, the playback moves to the next step.
    Step,
}

fn host(s: S<'_, '_, '_>, cx: &Cx<'_>) -> Host {
    match cx.content.node(&s.pos.scene, &s.pos.node).map(|n| &n.kind) {
        Some(NodeKind::Media { .. }) => Host::Step,
        _ => Host::Node,
    }
}

/// After a game's step: the session waits in it; or, the game being over, takes the
/// edge of its outcome (a minigame node) or moves the playback to the next step (a
/// media node's step).
fn after(s: S<'_, '_, '_>, cx: &mut Cx<'_>, turn: Turn) -> Res<Next> {
    match turn {
        Turn::Wait => {
            *s.phase = Phase::MiniGame;
            Ok(Next::Stop)
        }
        Turn::Done(outcome) => {
            s.minigame.0 = None;
            match host(s, cx) {
                Host::Node => {
                    edges::follow(s, cx, Some(outcome.as_str()))?;
                    Ok(Next::Moved)
                }
                Host::Step => playback::game_over(s, cx),
            }
        }
    }
}

/// The session enters a mini-game node, or a step running a mini-game begins.
pub(crate) fn start(s: S<'_, '_, '_>, cx: &mut Cx<'_>, spec: &MiniGameSpec) -> Res<Next> {
    let g = game(cx, &spec.game)?;
    let turn = g.start(
        &mut Play {
            s: &mut *s,
            cx: &mut *cx,
        },
        spec,
    )?;
    after(s, cx, turn)
}

/// A saved run resumes.
pub(crate) fn resume(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    spec: &MiniGameSpec,
    round: u32,
    hits: u32,
) -> Res<()> {
    let g = game(cx, &spec.game)?;
    g.resume(
        &mut Play {
            s: &mut *s,
            cx: &mut *cx,
        },
        spec,
        round,
        hits,
    )?;
    *s.phase = Phase::MiniGame;
    Ok(())
}

/// A timer fired. A stale one (its run is over or was replaced) changes nothing.
pub(crate) fn on_timer(s: S<'_, '_, '_>, cx: &mut Cx<'_>, token: u64, timer: Timer) -> Res<Next> {
    let Some(run) = s.minigame.0.as_ref() else {
        return Ok(Next::Stop); // stale: the mini-game is over
    };
    if run.timer != token || *s.phase != Phase::MiniGame {
        return Ok(Next::Stop); // stale timer
    }
    let g = game(cx, &run.game)?;
    match g.on_timer(
        &mut Play {
            s: &mut *s,
            cx: &mut *cx,
        },
        timer,
    )? {
        Turn::Wait => Ok(Next::Stop),
        done @ Turn::Done(_) => after(s, cx, done),
    }
}

/// A player's input; refused (changing nothing) when no game waits for one.
pub(crate) fn on_input(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    round: u32,
    nonce: u64,
    client_ms: i64,
) -> Res<Next> {
    let Some(run) = s
        .minigame
        .0
        .as_ref()
        .filter(|_| *s.phase == Phase::MiniGame)
    else {
        cx.reject("minigame_input", wrong_state("minigame_input", *s.phase));
        return Ok(Next::Stop);
    };
    let g = game(cx, &run.game)?;
    let input = Input {
        round,
        nonce,
        client_time_ms: client_ms,
    };
    match g.on_input(
        &mut Play {
            s: &mut *s,
            cx: &mut *cx,
        },
        input,
    )? {
        Turn::Wait => Ok(Next::Stop),
        done @ Turn::Done(_) => after(s, cx, done),
    }
}
