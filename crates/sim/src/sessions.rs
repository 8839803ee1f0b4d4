//! The simulation's API for other crates' systems and tools, beside the [`crate::Inbox`]
//! and [`crate::Outbox`] queues: [`Sessions`] (the worlds' clocks, which sessions are live,
//! their saves and views in their world's time, unloading one), [`clock`] and [`clocks`],
//! and [`check_scene_start`], the rule for which scenes a session may start at.

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;

use domain::narrative::{Content, Scene, SessionSave};

use crate::components::{Clock, SimWorld, WorldClock};
use crate::present;
use crate::protocol::{ErrorReason, SessionId};
use crate::resources::{MediaLibrary, SessionIndex, SimContent};
use crate::save::{self, SaveParts, SaveView};
use crate::view::SessionView;
use crate::worlds::{WorldTime, Worlds};

/// The live sessions, for a system outside the simulation (the game bridge, after the
/// tick): read their saves, or unload one.
#[derive(SystemParam)]
pub struct Sessions<'w, 's> {
    index: ResMut<'w, SessionIndex>,
    content: Res<'w, SimContent>,
    time: WorldTime<'w, 's>,
    parts: Query<'w, 's, SaveParts>,
    media: Res<'w, MediaLibrary>,
    commands: Commands<'w, 's>,
}

impl Sessions<'_, '_> {
    /// The default world's clock.
    pub fn clock(&self) -> Option<Clock> {
        self.time.clocks().into_iter().next().map(|(_, c)| c)
    }

    /// Every served world's clock by world id, the default world first.
    pub fn clocks(&self) -> Vec<(String, Clock)> {
        self.time.clocks()
    }

    /// The time now in the world of the session whose save parts these are.
    fn now(&self, parts: &SaveView<'_>) -> i64 {
        self.time.at(&parts.pos.scene).1
    }

    /// Whether `id` is live (started or resumed, and not ended).
    pub fn is_live(&self, id: SessionId) -> bool {
        self.index.0.contains_key(&id)
    }

    fn parts(&self, id: SessionId) -> Option<SaveView<'_>> {
        let entity = self.index.0.get(&id)?;
        self.parts.get(*entity).ok().map(SaveView::from)
    }

    /// The session's save now, as `Command::Save` answers it: `None` when it is not live,
    /// or starting or ended (nothing to save).
    pub fn save(&self, id: SessionId) -> Option<SessionSave> {
        let parts = self.parts(id)?;
        save::snapshot(&parts, self.now(&parts), &self.content.0.version).ok()
    }

    /// The same save in the binary form of `domain::narrative::save_bin`, encoded
    /// straight from the components (cheap enough for every touched session each tick).
    pub fn save_binary(&self, id: SessionId) -> Option<Vec<u8>> {
        let parts = self.parts(id)?;
        save::encode_binary(&parts, self.now(&parts), &self.content.0.version).ok()
    }

    /// The session as a client renders it now (after the tick: it reflects every event
    /// emitted so far); `None` when it is not live.
    pub fn view(&self, id: SessionId) -> Option<SessionView> {
        let parts = self.parts(id)?;
        Some(present::build(
            &parts,
            &self.content.0,
            &self.media,
            self.now(&parts),
        ))
    }

    /// Unloads a live session: it leaves the index now and its entity is despawned when
    /// the system's commands apply. Save it first. Returns whether it was live.
    pub fn unload(&mut self, id: SessionId) -> bool {
        let Some(entity) = self.index.0.remove(&id) else {
            return false;
        };
        if let Ok(mut e) = self.commands.get_entity(entity) {
            e.despawn();
        }
        true
    }
}

/// The default world's clock (`None` before the simulation is added).
pub fn clock(world: &World) -> Option<Clock> {
    let e = world.get_resource::<Worlds>()?.default_world()?;
    world.get::<WorldClock>(e).map(|c| c.0)
}

/// Every served world's clock by world id, the default world first.
pub fn clocks(world: &mut World) -> Vec<(String, Clock)> {
    let mut q = world.query::<(&SimWorld, &WorldClock)>();
    let mut all: Vec<(String, Clock)> = q.iter(world).map(|(w, c)| (w.id.clone(), c.0)).collect();
    all.sort_by_key(|(id, _)| (id != crate::worlds::DEFAULT, id.clone()));
    all
}

/// Whether a new session may start at `scene`: it exists, is not locked, and takes no
/// parameters (those scenes can only be called). The one home of that rule: the
/// simulation applies it to `Command::Start`, and servers may check it earlier.
pub fn check_scene_start<'c>(content: &'c Content, scene: &str) -> Result<&'c Scene, ErrorReason> {
    let Some(sc) = content.scene(scene) else {
        return Err(ErrorReason::UnknownScene {
            scene: scene.to_owned(),
        });
    };
    if content.world.locked_scenes.iter().any(|l| l == scene) {
        return Err(ErrorReason::SceneLocked {
            scene: scene.to_owned(),
        });
    }
    if !sc.params.is_empty() {
        return Err(ErrorReason::WrongState {
            command: "start".into(),
            state: format!("scene '{scene}' takes parameters and can only be called"),
        });
    }
    Ok(sc)
}
