//! The narrative simulation: sessions as ECS state, advanced deterministically in the
//! fixed tick. No I/O: no files, sockets or clocks; time comes from the world clock.
//!
//! # Design
//!
//! - A **session** is an entity with components `Session`, `Position`, `CallStack`,
//!   `Variables`, `VisitCounts`, `PendingChoices`, `Progression`, `SessionRng`, `Cooldowns`,
//!   `ActiveMiniGame` and `Phase` (module `components`). State is sparse (defaults come from
//!   the world config): an idle demo session is about 2.3 KiB including its index entry.
//!   The components are private to this crate: other crates read sessions through
//!   [`Sessions`] (saves, liveness, unload) and [`inspect`] (the tick inspector's view), and
//!   change them only through commands.
//! - Each served **world** (`[worlds.<id>]` in the world config, the default world always)
//!   is an entity with a `WorldClock` (read copies, [`Clock`]s, with [`clock`], [`clocks`],
//!   [`Sessions::clocks`] or [`worlds::list`]): world time, time scale, pause/resume,
//!   single step, advance by a delta and turn-based mode (see [`WorldControl`], sent
//!   through [`Inbox::world`] / [`Inbox::worlds`], or applied between ticks with
//!   [`worlds::control`]). A session lives in its scene's world: its reveal times,
//!   cooldowns, mini-game windows and event times follow that world's clock, and its
//!   timers wait in that world's deadline queue (module `worlds`).
//! - **Mini-games** come from the [`MiniGames`] registry resource: each game implements
//!   [`MiniGame`] (its parameter rules, and what starting it, its timers and inputs do,
//!   through [`Play`]); `reflex` and `skill_check` are built in. Register a new game with
//!   [`MiniGames::register`] and hand [`MiniGames::rules`] to the content validator. A
//!   minigame node runs one and takes the edge of its outcome; a media node's playback
//!   step naming one runs it when the step begins and, once it is over, moves on to the
//!   next step (module `playback`).
//! - Systems run in `FixedUpdate` in ordered sets ([`SimSystems`]):
//!   `Input` (clock, content reload, routing commands by [`SessionIndex`], due timers from
//!   [`Timers`]) → `Narrative` (node traversal, choices, mini-games, calls, saves; effects are
//!   applied through `domain::narrative::state::Ctx` and recorded in a journal) → `Effects`
//!   (state-delta events) → `Progression` (quest, objective, level and unlock events) →
//!   `Output` (per-session sequence numbers into the [`Outbox`]; ended sessions handed over
//!   with their final progression in [`Outbox::ended`], then despawned).
//! - Work grows with active sessions only: commands are routed through a hash index and timers
//!   sit in a deadline heap; no system iterates all sessions on a normal tick.
//! - **Determinism**: every random draw comes from the session's seeded [`domain::narrative::Rng`];
//!   all outputs are produced in command order; no hash-map iteration reaches the output.
//! - Invalid commands (edge not offered, condition false, not revealed, cooldown, wrong state,
//!   stale mini-game input) produce an [`Event::Error`] and change nothing. Runtime failures of
//!   content (which validation should prevent) abort the session with an error and a
//!   `session_ended { aborted }` event, never a silent soft-lock.
//!
//! # Driving the app (the server's tick runner)
//!
//! ```ignore
//! let content = Arc::new(content::load_dir("scenes")?);
//! let mut app = sim::build_app(content, sim::SimConfig { tick_ms: 50, ..Default::default() });
//! loop {                                   // every tick_ms of real time
//!     {
//!         let mut inbox = app.world_mut().resource_mut::<sim::Inbox>();
//!         inbox.commands.extend(received);      // Vec<SimCommand>, in arrival order
//!         // inbox.world.push(WorldControl::Pause); inbox.reload = Some(Arc::new(new_content));
//!     }
//!     sim::step(&mut app);                 // runs FixedUpdate exactly once
//!     let events: Vec<_> = app.world_mut().resource_mut::<sim::Outbox>().drain().collect();
//!     // route events by SimEvent::session to clients
//! }
//! ```
//!
//! A command is processed in the step that follows its insertion into the [`Inbox`]: a
//! tick ([`step`]), where the world clock advances by `tick_ms` (scaled) before commands
//! are processed, so mini-game inputs are judged against that tick's server time; or a
//! command step between ticks ([`command_step`], the [`CommandUpdate`] schedule), which
//! runs only the commands, on the last tick's clock (a client's clock may then be up to
//! two ticks ahead of it instead of one). The server runs a command step as soon as
//! commands arrive, so a command is answered without waiting for the next tick.
//! `FixedUpdate` uses a single-threaded executor (the sets are chained anyway).
//! `app.update()` does **not** run `FixedUpdate` here (there is no `bevy_time` fixed-step
//! driver): call [`step`] exactly once per tick, e.g.
//! `run_schedule(PreUpdate)` (fill the inbox) → [`step`] → `run_schedule(PostUpdate)` (drain).
//!
//! # Events
//!
//! Per session and tick, events come in this order: narrative events (node entered, choices,
//! mini-game prompts/results, saved, errors) in processing order, then one `state_delta` per
//! command/timer that changed state, then quest/objective/level/unlock events, then
//! `session_ended`. `SimEvent::seq` counts a session's events from 0; errors for commands
//! addressed to no live session carry `seq` 0.
//!
//! # Saves
//!
//! Send [`Command::Save`] and receive [`Event::Saved`] with a versioned
//! [`domain::narrative::SessionSave`] (serde; store it as JSON). Resume with
//! [`Command::Resume`] under any unused session id: the save is mapped onto the current content
//! by ids ([`domain::narrative::save::map_save`]); notes about dropped state come back in
//! [`Event::Resumed`], an unmappable save yields [`ErrorReason::SaveRejected`]. A system
//! running after the tick takes the same save without a command through [`Sessions::save`],
//! or in the binary form of `domain::narrative::save_bin` through [`Sessions::save_binary`]
//! (one implementation, module `save`: the binary form decodes to exactly that save).
//!
//! # Code map
//!
//! - `systems/`: the plugins and their systems (input, routing, narrative step, output).
//! - `advance`: entering nodes and advancing until the session waits; `nodes/`: what each
//!   node kind does, one module per kind, mapped from `NodeKind` in `nodes::kind` (the one
//!   match over node kinds); `edges`: conditions, cooldowns, picking and taking edges;
//!   `choices`: offering and choosing; `minigame`: skill checks and reflex rounds (timers).
//! - `save`: snapshot, binary save, checking and restoring saves; `sessions`: the API for
//!   other crates ([`Sessions`], [`clock`], [`check_scene_start`]); `view`: a session as a
//!   client renders it ([`SessionView`], the game's join snapshot); `inspect`: the
//!   inspector's view.
//! - `components`, `resources`, `cx` (the per-step context), `protocol` (commands, events).
//!
//! # Generated media
//!
//! A media node with a generation spec is presented as [`Media::Generate`] until the server
//! reports the asset through [`Inbox::media`] ([`MediaReady`], matched by operation, prompt and
//! canonical parameters). From the next tick on, sessions standing in such a node get
//! [`Event::MediaReady`] (in the `Input` set, so before that tick's narrative events) and
//! every later entry presents [`Media::Asset`]. The [`MediaLibrary`] is world state, not
//! session state: saves do not carry it. Media becoming ready scans the live sessions once;
//! it happens once per spec.
//!
//! # Content reload
//!
//! Validate with the `content` crate first (`content::Watcher::poll` / `content::load_dir`),
//! then set [`Inbox::reload`]. Live sessions keep running; a session whose position no longer
//! exists is aborted with a reason; offered choices whose edges disappeared are re-offered.

mod advance;
mod choices;
mod components;
mod cx;
mod edges;
pub mod inspect;
mod minigame;
mod nodes;
mod playback;
mod present;
pub mod protocol;
mod resources;
mod save;
mod sessions;
mod systems;
mod view;
pub mod worlds;

use std::sync::Arc;

use bevy_app::{App, FixedUpdate};

pub use components::{Clock, MiniGameRun, RoundPhase};
pub use minigame::{Input, MiniGame, MiniGames, Play, Turn};
pub use present::progression as progression_view;
pub use protocol::{
    Choice, Command, EndReason, ErrorReason, Event, Hotspot, Media, MediaProgress, MediaReady,
    Outcome, Playback, PlaybackStep, Presentation, SessionId, SimCommand, SimEvent, WorldControl,
};
pub use resources::{Inbox, Outbox, SessionIndex, SimConfig, StepKind, Timer, Timers};
pub use sessions::{Sessions, check_scene_start, clock, clocks};
pub use systems::{
    CommandUpdate, EffectsPlugin, InputPlugin, NarrativePlugin, OutputPlugin, ProgressionPlugin,
    SimPlugin, SimSystems,
};
pub use view::{OpenRound, SessionView, ViewPosition, ViewProgression, ViewQuest};
pub use worlds::{WorldError, WorldView};

/// Builds an `App` with the [`SimPlugin`] (no other plugins, no runner).
pub fn build_app(content: Arc<domain::narrative::Content>, config: SimConfig) -> App {
    let mut app = App::new();
    app.add_plugins(SimPlugin::new(content, config));
    app
}

/// Runs exactly one fixed tick (`FixedUpdate`).
pub fn step(app: &mut App) {
    app.world_mut().run_schedule(FixedUpdate);
}

/// Runs one command step between ticks ([`CommandUpdate`]): the inbox's commands on the
/// last tick's clock.
pub fn command_step(app: &mut App) {
    app.world_mut().run_schedule(CommandUpdate);
}

/// Convenience: queue commands, run one command step, return the events.
pub fn between_ticks(
    app: &mut App,
    commands: impl IntoIterator<Item = SimCommand>,
) -> Vec<SimEvent> {
    run_with(app, commands, command_step)
}

/// Convenience: queue commands, run one tick, return the events.
pub fn tick(app: &mut App, commands: impl IntoIterator<Item = SimCommand>) -> Vec<SimEvent> {
    run_with(app, commands, step)
}

/// Queues `commands`, runs `run` (a tick or a command step), returns the events.
fn run_with(
    app: &mut App,
    commands: impl IntoIterator<Item = SimCommand>,
    run: fn(&mut App),
) -> Vec<SimEvent> {
    app.world_mut()
        .resource_mut::<Inbox>()
        .commands
        .extend(commands);
    run(app);
    app.world_mut().resource_mut::<Outbox>().drain().collect()
}

/// Number of live sessions.
pub fn session_count(app: &App) -> usize {
    app.world().resource::<SessionIndex>().len()
}
