//! The plugins and their systems, one per concern, ordered by [`SimSystems`]: input
//! (clock, reload, media, routing), the narrative step, output (deltas, progression,
//! sequencing).

use std::sync::Arc;

use bevy_app::{App, FixedUpdate, Plugin};
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::ScheduleLabel;

use domain::narrative::Content;

use crate::minigame::MiniGames;
use crate::resources::{
    Inbox, MediaLibrary, Outbox, SessionIndex, SimConfig, SimContent, Staging, StepKind, Timers,
    Work,
};

mod input;
mod narrative;
mod output;
mod routing;

use crate::worlds::{advance_clocks, advance_turns, route_timers, sync_worlds};
use input::{deliver_media, reload_content};
use narrative::step_sessions;
use output::{emit_progression, emit_state_deltas, flush_outbox};
use routing::route_commands;

/// A command step between two ticks: the commands received since the last step are
/// routed, run and sequenced at once, on the clock of the last tick (turn-based worlds
/// with commands advance a period, as on a tick). Clocks and world controls wait for the
/// next tick; a pending content reload is applied first (the commands were checked
/// against it), and media that became ready is delivered before the commands. Run it
/// with [`crate::command_step`] (or the server's tick loop between ticks); the same
/// systems as `FixedUpdate`'s, in the same order, so a command's events are the same
/// whichever step runs it.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommandUpdate;

/// Ordered system sets inside `FixedUpdate`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSystems {
    /// Clock, content reload, command routing, due timers.
    Input,
    /// Node traversal, choices, mini-games, calls, saves.
    Narrative,
    /// State deltas from the effect journal.
    Effects,
    /// Quest, objective, level and unlock events.
    Progression,
    /// Sequencing into the [`Outbox`], despawning ended sessions.
    Output,
}

/// Adds everything: resources, the world entities and all sub-plugins. The mini-game
/// registry is the built-in one unless a [`MiniGames`] resource was inserted first (or
/// is replaced before the first tick).
pub struct SimPlugin {
    content: Arc<Content>,
    config: SimConfig,
}

impl SimPlugin {
    /// With content and tunables.
    pub fn new(content: Arc<Content>, config: SimConfig) -> Self {
        Self { content, config }
    }
}

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(SimContent(self.content.clone()))
            .insert_resource(self.config.clone())
            .init_resource::<Inbox>()
            .init_resource::<Outbox>()
            .init_resource::<SessionIndex>()
            .init_resource::<Timers>()
            .init_resource::<Work>()
            .init_resource::<Staging>()
            .init_resource::<MediaLibrary>()
            .init_resource::<StepKind>()
            .configure_sets(
                FixedUpdate,
                (
                    SimSystems::Input,
                    SimSystems::Narrative,
                    SimSystems::Effects,
                    SimSystems::Progression,
                    SimSystems::Output,
                )
                    .chain(),
            )
            .add_plugins((
                InputPlugin,
                NarrativePlugin,
                EffectsPlugin,
                ProgressionPlugin,
                OutputPlugin,
            ));
        app.add_systems(FixedUpdate, begin_tick.before(SimSystems::Input));
        app.init_schedule(CommandUpdate).add_systems(
            CommandUpdate,
            (
                begin_commands,
                // A start let through after a reload was checked against the new
                // content: the reload reaches the simulation first.
                (reload_content, sync_worlds)
                    .chain()
                    .run_if(|inbox: Res<Inbox>| inbox.reload.is_some()),
                // Media that became ready is there for the commands that follow it.
                deliver_media,
                advance_turns,
                route_commands,
                route_timers,
                step_sessions,
                emit_state_deltas,
                emit_progression,
                flush_outbox,
            )
                .chain(),
        );
        // The sets are chained, so nothing runs in parallel anyway: a single-threaded
        // executor keeps ticks cheap and the order fixed.
        for label in [FixedUpdate.intern(), CommandUpdate.intern()] {
            app.edit_schedule(label, |schedule| {
                schedule.set_executor(bevy_ecs::schedule::SingleThreadedExecutor::new());
            });
        }
        if !app.world().contains_resource::<MiniGames>() {
            app.insert_resource(MiniGames::builtin());
        }
        crate::worlds::spawn_worlds(app.world_mut(), &self.content, self.config.start_ms);
    }
}

fn begin_tick(mut step: ResMut<StepKind>) {
    *step = StepKind::Tick;
}

fn begin_commands(mut step: ResMut<StepKind>) {
    *step = StepKind::Commands;
}

/// World clocks, reload, media, command routing, due timers.
pub struct InputPlugin;
impl Plugin for InputPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            FixedUpdate,
            (
                advance_clocks,
                reload_content,
                sync_worlds,
                deliver_media,
                route_commands,
                route_timers,
            )
                .chain()
                .in_set(SimSystems::Input),
        );
    }
}

/// Narrative step.
pub struct NarrativePlugin;
impl Plugin for NarrativePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(FixedUpdate, step_sessions.in_set(SimSystems::Narrative));
    }
}

/// State deltas.
pub struct EffectsPlugin;
impl Plugin for EffectsPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(FixedUpdate, emit_state_deltas.in_set(SimSystems::Effects));
    }
}

/// Progression events.
pub struct ProgressionPlugin;
impl Plugin for ProgressionPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            FixedUpdate,
            emit_progression.in_set(SimSystems::Progression),
        );
    }
}

/// Output.
pub struct OutputPlugin;
impl Plugin for OutputPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(FixedUpdate, flush_outbox.in_set(SimSystems::Output));
    }
}
