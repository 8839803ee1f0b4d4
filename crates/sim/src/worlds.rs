//! The served worlds: one entity per world of the content (`[worlds.<id>]`, the default
//! world always), each with its own [`WorldClock`] and controls. The [`Worlds`] resource
//! maps world ids and scenes to world entities: a session lives in its scene's world
//! (validation keeps calls inside one world), so its time is that world's.
//!
//! The systems here run in the `Input` set: [`advance_clocks`] (controls, then each
//! world's time), [`sync_worlds`] (after a content reload: worlds added or dropped) and
//! [`route_timers`] (each world's due timers become work). The API for tools is
//! [`list`] and [`control`] (what the inspector's `worlds.*` methods call, between ticks).

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;
use serde::Serialize;

use domain::narrative::Content;
use domain::narrative::content::FxHashMap;
use domain::narrative::world::{DEFAULT_WORLD, scale_permille, scene_world};

use crate::components::{Clock, Position, SimWorld, WorldClock};
use crate::protocol::{Command, SessionId, WorldControl};
use crate::resources::{Inbox, Job, SessionIndex, SimConfig, SimContent, Timers, Work};

/// World ids and scenes to world entities.
#[derive(Resource, Debug, Default)]
pub(crate) struct Worlds {
    /// Served worlds, the default world first, then by id.
    ids: Vec<(String, Entity)>,
    /// Scene id -> its world's entity.
    by_scene: FxHashMap<String, Entity>,
}

impl Worlds {
    /// The default world's entity (`None` before the worlds are spawned).
    pub(crate) fn default_world(&self) -> Option<Entity> {
        self.ids.first().map(|(_, e)| *e)
    }

    /// A world's entity by id.
    pub(crate) fn entity(&self, id: &str) -> Option<Entity> {
        self.ids.iter().find(|(w, _)| w == id).map(|(_, e)| *e)
    }

    /// The world of a scene (the default world for a scene the content does not know).
    pub(crate) fn of_scene(&self, scene: &str) -> Option<Entity> {
        self.by_scene
            .get(scene)
            .copied()
            .or_else(|| self.default_world())
    }

    fn index_scenes(&mut self, content: &Content) {
        self.by_scene.clear();
        for (id, scene) in &content.scenes {
            if let Some(e) = self.entity(scene_world(scene)) {
                self.by_scene.insert(id.clone(), e);
            }
        }
    }
}

/// The clock a world starts with: its declared settings at `now_ms`.
fn initial_clock(content: &Content, id: &str, now_ms: i64) -> Clock {
    let def = content.world.world_def(id).unwrap_or_default();
    Clock {
        now_ms,
        // Validation refuses a scale out of range; real time if one slips through.
        scale_permille: scale_permille(def.time_scale).unwrap_or(1000),
        paused: def.paused,
        turn_based: def.turn_based,
        ..Clock::default()
    }
}

fn spawn_world(world: &mut World, content: &Content, id: &str, now_ms: i64) -> Entity {
    let title = content.world.worlds.get(id).and_then(|d| d.title.clone());
    world
        .spawn((
            SimWorld {
                id: id.to_owned(),
                title,
            },
            WorldClock(initial_clock(content, id, now_ms)),
        ))
        .id()
}

/// Spawns every world of the content, its clock at `start_ms`.
pub(crate) fn spawn_worlds(world: &mut World, content: &Content, start_ms: i64) {
    let mut worlds = Worlds::default();
    for id in content.world.world_ids() {
        let e = spawn_world(world, content, id, start_ms);
        worlds.ids.push((id.to_owned(), e));
    }
    worlds.index_scenes(content);
    world.insert_resource(worlds);
}

/// After a content reload: keeps the worlds still served (their clocks as they are),
/// spawns new ones at the latest world time (time never goes backwards), drops the
/// others with their timers (their sessions were aborted by the reload), and maps the
/// scenes again. Cheap when nothing was reloaded: it compares the content's version.
pub(crate) fn sync_worlds(world: &mut World) {
    let content = world.resource::<SimContent>().0.clone();
    let latest = {
        let mut q = world.query::<&WorldClock>();
        q.iter(world).map(|c| c.now_ms).max().unwrap_or(0)
    };
    let Some(mut worlds) = world.remove_resource::<Worlds>() else {
        return;
    };
    let wanted = content.world.world_ids();
    let same = worlds.ids.len() == wanted.len()
        && worlds.ids.iter().zip(&wanted).all(|((a, _), b)| a == b);
    if !same {
        let mut ids = Vec::with_capacity(wanted.len());
        for id in wanted {
            let e = match worlds.entity(id) {
                Some(e) => e,
                None => spawn_world(world, &content, id, latest),
            };
            ids.push((id.to_owned(), e));
        }
        for (id, e) in &worlds.ids {
            if !ids.iter().any(|(w, _)| w == id) {
                world.resource_mut::<Timers>().drop_world(*e);
                world.despawn(*e);
            }
        }
        worlds.ids = ids;
    }
    worlds.index_scenes(&content);
    world.insert_resource(worlds);
}

/// Applies one control to a clock. `Step` and `Advance` take effect at the next tick's
/// clock advance and at once respectively; the flags at once.
pub(crate) fn apply(clock: &mut Clock, control: &WorldControl) {
    match control {
        WorldControl::Pause => clock.paused = true,
        WorldControl::Resume => clock.paused = false,
        WorldControl::Step => clock.step_pending = true,
        WorldControl::SetScale { permille } => clock.scale_permille = *permille,
        WorldControl::SetTurnBased { on } => clock.turn_based = *on,
        WorldControl::Advance { ms } => {
            let ms = i64::try_from(*ms).unwrap_or(i64::MAX);
            clock.now_ms = clock.now_ms.saturating_add(ms);
        }
    }
}

/// The served worlds, with what finds the worlds the queued commands are for (which
/// moves a turn-based world's time, on a tick and between ticks alike).
#[derive(SystemParam)]
pub(crate) struct CommandWorlds<'w, 's> {
    worlds: Res<'w, Worlds>,
    index: Res<'w, SessionIndex>,
    content: Res<'w, SimContent>,
    positions: Query<'w, 's, &'static Position>,
}

impl CommandWorlds<'_, '_> {
    /// The worlds with a command in `inbox`: the world of each addressed session, or of
    /// the scene a start or resume names.
    fn with_commands(&self, inbox: &Inbox) -> Vec<Entity> {
        let content = &self.content.0;
        let mut out: Vec<Entity> = Vec::new();
        for cmd in &inbox.commands {
            let scene = match &cmd.command {
                Command::Start { scene, .. } => Some(
                    scene
                        .clone()
                        .unwrap_or_else(|| content.world.start_scene.clone()),
                ),
                Command::Resume { save } => save.stack.last().map(|f| f.scene.clone()),
                Command::Choose { .. }
                | Command::MiniGameInput { .. }
                | Command::Continue
                | Command::Save
                | Command::Leave => self
                    .index
                    .0
                    .get(&cmd.session)
                    .and_then(|e| self.positions.get(*e).ok())
                    .map(|p| p.scene.clone()),
            };
            if let Some(w) = scene.and_then(|s| self.worlds.of_scene(&s))
                && !out.contains(&w)
            {
                out.push(w);
            }
        }
        out
    }
}

/// Applies the controls, then advances each world's time by one tick (scaled), unless it
/// is paused (only a step moves it) or turn-based (a step or a command for it does).
pub(crate) fn advance_clocks(
    mut inbox: ResMut<Inbox>,
    cfg: Res<SimConfig>,
    served: CommandWorlds,
    mut clocks: Query<&mut WorldClock, With<SimWorld>>,
) {
    let inbox = &mut *inbox;
    let worlds = &served.worlds;
    let default = worlds.default_world();
    for control in inbox.world.drain(..) {
        if let Some(mut clock) = default.and_then(|e| clocks.get_mut(e).ok()) {
            apply(&mut clock, &control);
        }
    }
    for (id, control) in inbox.worlds.drain(..) {
        if let Some(mut clock) = worlds.entity(&id).and_then(|e| clocks.get_mut(e).ok()) {
            apply(&mut clock, &control);
        }
    }
    let turned = if clocks.iter().any(|c| c.turn_based) {
        served.with_commands(inbox)
    } else {
        Vec::new()
    };
    for (_, e) in &worlds.ids {
        let Ok(mut clock) = clocks.get_mut(*e) else {
            continue;
        };
        let advance = if clock.paused {
            clock.step_pending
        } else if clock.turn_based {
            clock.step_pending || turned.contains(e)
        } else {
            true
        };
        clock.step_pending = false;
        clock.tick += 1;
        if advance {
            clock.advance_one_tick(cfg.tick_ms);
        }
    }
}

/// In a command step between ticks: a turn-based world (not paused) that has commands
/// in this step advances by one tick period, as it would on a tick that processes
/// commands; every other world keeps the last tick's time, and no world counts a tick.
pub(crate) fn advance_turns(
    inbox: Res<Inbox>,
    cfg: Res<SimConfig>,
    served: CommandWorlds,
    mut clocks: Query<&mut WorldClock, With<SimWorld>>,
) {
    if inbox.commands.is_empty() || !clocks.iter().any(|c| c.turn_based && !c.paused) {
        return;
    }
    for e in served.with_commands(&inbox) {
        if let Ok(mut clock) = clocks.get_mut(e)
            && clock.turn_based
            && !clock.paused
        {
            clock.advance_one_tick(cfg.tick_ms);
        }
    }
}

/// Each world's due timers become work, world by world (default first), each in due
/// order, after this tick's commands.
pub(crate) fn route_timers(
    worlds: Res<Worlds>,
    clocks: Query<&WorldClock, With<SimWorld>>,
    mut timers: ResMut<Timers>,
    mut work: ResMut<Work>,
) {
    for (_, w) in &worlds.ids {
        let Ok(clock) = clocks.get(*w) else {
            continue;
        };
        while let Some((token, entity, timer)) = timers.pop_due(*w, clock.now_ms) {
            work.0
                .push((entity, SessionId::from_u128(0), Job::Timer { token, timer }));
        }
    }
}

/// World time where a scene is played: its world's entity and time now.
#[derive(SystemParam)]
pub(crate) struct WorldTime<'w, 's> {
    worlds: Res<'w, Worlds>,
    clocks: Query<'w, 's, &'static WorldClock, With<SimWorld>>,
}

impl WorldTime<'_, '_> {
    /// The world of `scene` and its time (the default world's for an unknown scene).
    pub(crate) fn at(&self, scene: &str) -> (Entity, i64) {
        match self.worlds.of_scene(scene) {
            Some(e) => (e, self.clocks.get(e).map_or(0, |c| c.now_ms)),
            None => (Entity::PLACEHOLDER, 0),
        }
    }

    /// The default world's time.
    pub(crate) fn default_now(&self) -> i64 {
        self.worlds
            .default_world()
            .and_then(|e| self.clocks.get(e).ok())
            .map_or(0, |c| c.now_ms)
    }

    /// Every world's clock, the default world first.
    pub(crate) fn clocks(&self) -> Vec<(String, Clock)> {
        self.worlds
            .ids
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), self.clocks.get(*e).ok()?.0)))
            .collect()
    }
}

/// A served world as tools see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldView {
    /// World id.
    pub id: String,
    /// Title (`[worlds.<id>] title`).
    pub title: Option<String>,
    /// Its clock and controls.
    pub clock: Clock,
    /// Live sessions in it.
    pub sessions: usize,
}

/// Why a world control was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// No world with this id is served.
    #[error("unknown world '{0}'")]
    UnknownWorld(String),
    /// A time scale out of range.
    #[error("{0}")]
    BadScale(String),
}

/// The served worlds (default first) with their clocks and live session counts.
pub fn list(world: &mut World) -> Vec<WorldView> {
    let Some(worlds) = world.get_resource::<Worlds>() else {
        return Vec::new();
    };
    let ids = worlds.ids.clone();
    let mut counts: FxHashMap<Entity, usize> = FxHashMap::default();
    let sessions: Vec<Entity> = world
        .resource::<SessionIndex>()
        .0
        .values()
        .copied()
        .collect();
    for e in sessions {
        if let Some(pos) = world.get::<Position>(e) {
            let w = world.resource::<Worlds>().of_scene(&pos.scene);
            if let Some(w) = w {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    ids.into_iter()
        .filter_map(|(id, e)| {
            let clock = world.get::<WorldClock>(e)?.0;
            let title = world.get::<SimWorld>(e)?.title.clone();
            Some(WorldView {
                id,
                title,
                clock,
                sessions: counts.get(&e).copied().unwrap_or(0),
            })
        })
        .collect()
}

/// Applies a control to world `id` now, between ticks (the inspector's `worlds.*`
/// methods): pause, resume, scale and turn-based mode at once, an advance at once (its
/// due timers fire in the next tick), a step at the next tick. Returns the world after.
pub fn control(
    world: &mut World,
    id: &str,
    control: WorldControl,
) -> Result<WorldView, WorldError> {
    let e = world
        .get_resource::<Worlds>()
        .and_then(|w| w.entity(id))
        .ok_or_else(|| WorldError::UnknownWorld(id.to_owned()))?;
    if let Some(mut clock) = world.get_mut::<WorldClock>(e) {
        apply(&mut clock, &control);
    }
    list(world)
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| WorldError::UnknownWorld(id.to_owned()))
}

/// A scale as a control: `time_scale` (world ms per real ms) checked against the range
/// the world file allows.
pub fn set_scale(time_scale: f64) -> Result<WorldControl, WorldError> {
    scale_permille(time_scale)
        .map(|permille| WorldControl::SetScale { permille })
        .map_err(WorldError::BadScale)
}

/// The id of the world every scene belongs to unless it names another.
pub const DEFAULT: &str = DEFAULT_WORLD;
