//! The simulation's API for other crates' systems and tools, beside the [`crate::Inbox`]
//! and [`crate::Outbox`] queues: [`Sessions`] (the world clock, which sessions are live,
//! their saves and views, unloading one), [`clock`], and [`check_scene_start`], the rule for which
//! scenes a session may start at.

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;

use domain::narrative::{Content, Scene, SessionSave};

use crate::components::{Clock, SimWorld, WorldClock};
use crate::present;
use crate::protocol::{ErrorReason, SessionId};
use crate::resources::{MediaLibrary, SessionIndex, SimContent};
use crate::save::{self, SaveParts, SaveView};
use crate::view::SessionView;

/// The live sessions, for a system outside the simulation (the game bridge, after the
/// tick): read their saves, or unload one.
#[derive(SystemParam)]
pub struct Sessions<'w, 's> {
    index: ResMut<'w, SessionIndex>,
    content: Res<'w, SimContent>,
    clock: Query<'w, 's, &'static WorldClock, With<SimWorld>>,
    parts: Query<'w, 's, SaveParts>,
    media: Res<'w, MediaLibrary>,
    commands: Commands<'w, 's>,
}

impl Sessions<'_, '_> {
    /// The world clock.
    pub fn clock(&self) -> Option<Clock> {
        self.clock.iter().next().map(|c| c.0)
    }

    /// World time now (0 before the world exists).
    fn now(&self) -> i64 {
        self.clock().map_or(0, |c| c.now_ms)
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
        save::snapshot(&self.parts(id)?, self.now(), &self.content.0.version).ok()
    }

    /// The same save in the binary form of `domain::narrative::save_bin`, encoded
    /// straight from the components (cheap enough for every touched session each tick).
    pub fn save_binary(&self, id: SessionId) -> Option<Vec<u8>> {
        save::encode_binary(&self.parts(id)?, self.now(), &self.content.0.version).ok()
    }

    /// The session as a client renders it now (after the tick: it reflects every event
    /// emitted so far); `None` when it is not live.
    pub fn view(&self, id: SessionId) -> Option<SessionView> {
        let parts = self.parts(id)?;
        Some(present::build(
            &parts,
            &self.content.0,
            &self.media,
            self.now(),
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

/// The world clock of an app's world (`None` before the simulation is added).
pub fn clock(world: &World) -> Option<Clock> {
    world
        .iter_entities()
        .find_map(|e| e.get::<WorldClock>().map(|c| c.0))
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
