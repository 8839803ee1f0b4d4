//! Command routing (in the `Input` set): starts and resumes spawn sessions, other
//! commands become work for the narrative step (due timers follow, `crate::worlds`).

use bevy_ecs::prelude::*;

use domain::narrative::{Content, Rng, SessionSave};

use crate::components::{
    ActiveMiniGame, CallStack, Cooldowns, PendingChoices, Phase, Playing, Position, Progression,
    Session, SessionRng, Variables, VisitCounts,
};
use crate::protocol::{Command, ErrorReason, Event, SessionId};
use crate::resources::{Inbox, Job, SessionIndex, SimContent, Staging, Work};
use crate::worlds::WorldTime;
use crate::{save, sessions};

fn spawn_session(world_cmds: &mut Commands, id: SessionId) -> Entity {
    world_cmds
        .spawn((
            Session { id, next_seq: 0 },
            Position {
                scene: String::new(),
                node: String::new(),
                entered_at_ms: 0,
                args: Default::default(),
            },
            CallStack::default(),
            Variables::default(),
            VisitCounts::default(),
            PendingChoices::default(),
            Progression::default(),
            SessionRng::default(),
            Cooldowns::default(),
            ActiveMiniGame::default(),
            Phase::Starting,
            Playing::default(),
        ))
        .id()
}

fn reject(staging: &mut Staging, id: SessionId, command: &str, reason: ErrorReason) {
    let message = reason.to_string();
    staging.events.push((
        id,
        Event::Error {
            command: command.to_string(),
            reason,
            message,
        },
    ));
}

/// What routing writes to.
struct Router<'a, 'w, 's, 'tw, 'ts> {
    commands: &'a mut Commands<'w, 's>,
    index: &'a mut SessionIndex,
    work: &'a mut Work,
    content: &'a Content,
    /// World time where a scene is played (a session lives in its scene's world).
    time: &'a WorldTime<'tw, 'ts>,
}

impl Router<'_, '_, '_, '_, '_> {
    /// `start`: a new session at the scene's entry.
    fn start(
        &mut self,
        id: SessionId,
        scene: Option<String>,
        seed: u64,
    ) -> Result<(), ErrorReason> {
        let content = self.content;
        let scene = scene.unwrap_or_else(|| content.world.start_scene.clone());
        let sc = sessions::check_scene_start(content, &scene)?;
        let now = self.time.at(&scene).1;
        let e = spawn_session(self.commands, id);
        self.commands.entity(e).insert((
            Position {
                scene,
                node: sc.entry.clone(),
                entered_at_ms: now,
                args: Default::default(),
            },
            SessionRng(Rng::new(seed)),
        ));
        self.index.0.insert(id, e);
        self.work.0.push((e, id, Job::Begin));
        Ok(())
    }

    /// `resume`: a new session restored from a save mapped onto the content.
    fn resume(&mut self, id: SessionId, save: &SessionSave) -> Result<(), ErrorReason> {
        let (save, notes) = save::check_save(save, self.content)?;
        let scene = save
            .stack
            .last()
            .map(|f| f.scene.as_str())
            .unwrap_or_default();
        let now = self.time.at(scene).1;
        let Some((restored, wait)) = save::restore(save, now) else {
            // A mapped save has at least one frame.
            return Ok(());
        };
        let e = spawn_session(self.commands, id);
        self.commands.entity(e).insert(restored);
        self.index.0.insert(id, e);
        self.work.0.push((e, id, Job::Resumed { notes, wait }));
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn route_commands(
    mut commands: Commands,
    mut inbox: ResMut<Inbox>,
    mut index: ResMut<SessionIndex>,
    mut work: ResMut<Work>,
    mut staging: ResMut<Staging>,
    content: Res<SimContent>,
    time: WorldTime,
) {
    let mut router = Router {
        commands: &mut commands,
        index: &mut index,
        work: &mut work,
        content: &content.0,
        time: &time,
    };
    for cmd in inbox.commands.drain(..) {
        let id = cmd.session;
        let name = cmd.command.name();
        let existing = router.index.0.get(&id).copied();
        let routed = match (cmd.command, existing) {
            (Command::Start { .. } | Command::Resume { .. }, Some(_)) => {
                Err(ErrorReason::SessionExists)
            }
            (Command::Start { scene, seed }, None) => router.start(id, scene, seed),
            (Command::Resume { save }, None) => router.resume(id, &save),
            (
                Command::Choose { .. }
                | Command::MiniGameInput { .. }
                | Command::Continue
                | Command::Save
                | Command::Leave,
                None,
            ) => Err(ErrorReason::UnknownSession),
            (
                c @ (Command::Choose { .. }
                | Command::MiniGameInput { .. }
                | Command::Continue
                | Command::Save
                | Command::Leave),
                Some(e),
            ) => {
                router.work.0.push((e, id, Job::Command(c)));
                Ok(())
            }
        };
        if let Err(reason) = routed {
            reject(&mut staging, id, name, reason);
        }
    }
}
