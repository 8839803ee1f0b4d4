//! The plugins and their systems, one per concern, ordered by [`SimSystems`].

use std::sync::Arc;

use bevy_app::{App, FixedUpdate, Plugin};
use bevy_ecs::prelude::*;

use domain::narrative::Content;

use crate::components::*;
use crate::engine::{self, Cx};
use crate::protocol::{Command, EndReason, ErrorReason, Event, SimEvent, WorldControl};

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

/// Adds everything: resources, the world entity and all sub-plugins.
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
        // The sets are chained, so nothing runs in parallel anyway: a single-threaded
        // executor keeps ticks cheap and the order fixed.
        app.edit_schedule(FixedUpdate, |schedule| {
            schedule.set_executor(bevy_ecs::schedule::SingleThreadedExecutor::new());
        });
        app.world_mut().spawn((
            SimWorld,
            WorldClock {
                now_ms: self.config.start_ms,
                ..WorldClock::default()
            },
        ));
    }
}

/// Clock, reload and command routing.
pub struct InputPlugin;
impl Plugin for InputPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            FixedUpdate,
            (advance_clock, reload_content, deliver_media, route_commands)
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

fn advance_clock(
    mut inbox: ResMut<Inbox>,
    cfg: Res<SimConfig>,
    mut clock: Single<&mut WorldClock, With<SimWorld>>,
) {
    let mut step = false;
    for c in inbox.world.drain(..) {
        match c {
            WorldControl::Pause => clock.paused = true,
            WorldControl::Resume => clock.paused = false,
            WorldControl::Step => step = true,
            WorldControl::SetScale { permille } => clock.scale_permille = permille,
            WorldControl::SetTurnBased { on } => clock.turn_based = on,
        }
    }
    let advance = if clock.paused {
        step
    } else if clock.turn_based {
        step || !inbox.commands.is_empty()
    } else {
        true
    };
    clock.tick += 1;
    if advance {
        let dt = cfg.tick_ms.saturating_mul(i64::from(clock.scale_permille)) / 1000;
        clock.now_ms = clock.now_ms.saturating_add(dt);
    }
}

/// Records generated media and pushes it to the sessions standing in a node with that spec.
///
/// Media becomes ready rarely (once per spec), so this scans the sessions when it does; on
/// every other tick it returns at once.
fn deliver_media(
    mut inbox: ResMut<Inbox>,
    mut library: ResMut<MediaLibrary>,
    content: Res<SimContent>,
    index: Res<SessionIndex>,
    sessions: Query<(&Position, &Phase)>,
    mut staging: ResMut<Staging>,
) {
    if inbox.media.is_empty() {
        return;
    }
    let ready = std::mem::take(&mut inbox.media);
    // Live sessions in id order (deterministic output), listed only if some node shows a
    // ready spec.
    let mut ids: Option<Vec<(SessionId, Entity)>> = None;
    for m in ready {
        let key = (m.operation.clone(), m.prompt.clone(), m.params.clone());
        if library.0.get(&key) == Some(&m.asset) {
            continue;
        }
        library.0.insert(key, m.asset.clone());
        // The nodes showing this spec (content is small; sessions may be many).
        let targets: Vec<(&str, &str)> = content
            .0
            .scenes
            .values()
            .flat_map(|scene| scene.nodes.iter().map(move |n| (scene, n)))
            .filter(|(_, n)| {
                matches!(&n.kind, domain::narrative::scene::NodeKind::Media {
                    asset: None,
                    generate: Some(g),
                    ..
                } if g.operation == m.operation
                    && g.prompt == m.prompt
                    && crate::protocol::spec_params(g) == m.params)
            })
            .map(|(scene, n)| (scene.id.as_str(), n.id.as_str()))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let ids = ids.get_or_insert_with(|| {
            let mut v: Vec<_> = index.0.iter().map(|(id, e)| (*id, *e)).collect();
            v.sort();
            v
        });
        for (id, entity) in ids.iter() {
            let Ok((pos, phase)) = sessions.get(*entity) else {
                continue;
            };
            if *phase != Phase::Ended && targets.contains(&(pos.scene.as_str(), pos.node.as_str()))
            {
                staging.events.push((
                    *id,
                    Event::MediaReady {
                        scene: pos.scene.clone(),
                        node: pos.node.clone(),
                        media: Box::new(crate::protocol::Media::Asset {
                            asset: m.asset.clone(),
                        }),
                    },
                ));
            }
        }
    }
}

/// Swaps content; live sessions whose position no longer maps are aborted with a reason.
#[allow(clippy::too_many_arguments)]
fn reload_content(
    mut inbox: ResMut<Inbox>,
    mut content: ResMut<SimContent>,
    mut q: Query<SessionQuery>,
    index: Res<SessionIndex>,
    mut staging: ResMut<Staging>,
    mut timers: ResMut<Timers>,
    cfg: Res<SimConfig>,
    clock: Single<&WorldClock, With<SimWorld>>,
    media: Res<MediaLibrary>,
) {
    let Some(new) = inbox.reload.take() else {
        return;
    };
    let old = std::mem::replace(&mut content.0, new);
    let mut ids: Vec<_> = index.0.iter().map(|(id, e)| (*id, *e)).collect();
    ids.sort();
    for (id, entity) in ids {
        let Ok(mut s) = q.get_mut(entity) else {
            continue;
        };
        let mut cx = Cx {
            content: &old,
            cfg: &cfg,
            now: clock.now_ms,
            id,
            entity,
            staging: &mut staging,
            timers: &mut timers,
            media: &media,
        };
        let Ok(save) = engine::save(&mut s, &cx) else {
            continue;
        };
        match engine::check_save(&save, &content.0) {
            Ok((mapped, _notes)) => {
                // Keep live state; drop offered choices whose edges disappeared.
                if let domain::narrative::SavedWait::Choices { offered } = &mapped.wait {
                    let before = s.choices.0.len();
                    s.choices.0.retain(|o| offered.contains(&o.edge));
                    if s.choices.0.len() != before {
                        // Re-offer from the new content so the client sees the current choices.
                        cx.content = &content.0;
                        if let Err(e) = engine::offer(&mut s, &mut cx) {
                            engine::abort(&mut s, &mut cx, "reload", e);
                        }
                    }
                }
            }
            Err(reason) => {
                let detail = format!("content reloaded: {reason}");
                engine::abort(&mut s, &mut cx, "reload", detail);
            }
        }
    }
}

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
        ))
        .id()
}

use crate::protocol::SessionId;

#[allow(clippy::too_many_arguments)]
fn route_commands(
    mut commands: Commands,
    mut inbox: ResMut<Inbox>,
    mut index: ResMut<SessionIndex>,
    mut work: ResMut<Work>,
    mut staging: ResMut<Staging>,
    mut timers: ResMut<Timers>,
    content: Res<SimContent>,
    clock: Single<&WorldClock, With<SimWorld>>,
) {
    let content = &content.0;
    let reject = |staging: &mut Staging, id: SessionId, command: &str, reason: ErrorReason| {
        let message = reason.to_string();
        staging.events.push((
            id,
            Event::Error {
                command: command.to_string(),
                reason,
                message,
            },
        ));
    };
    for cmd in inbox.commands.drain(..) {
        let id = cmd.session;
        let name = cmd.command.name();
        let existing = index.0.get(&id).copied();
        match cmd.command {
            Command::Start { scene, seed } => {
                if existing.is_some() {
                    reject(&mut staging, id, name, ErrorReason::SessionExists);
                    continue;
                }
                let scene = scene.unwrap_or_else(|| content.world.start_scene.clone());
                let Some(sc) = content.scene(&scene) else {
                    reject(&mut staging, id, name, ErrorReason::UnknownScene { scene });
                    continue;
                };
                if content.world.locked_scenes.contains(&scene) {
                    reject(&mut staging, id, name, ErrorReason::SceneLocked { scene });
                    continue;
                }
                if !sc.params.is_empty() {
                    reject(
                        &mut staging,
                        id,
                        name,
                        ErrorReason::WrongState {
                            command: name.into(),
                            state: format!(
                                "scene '{scene}' takes parameters and can only be called"
                            ),
                        },
                    );
                    continue;
                }
                let e = spawn_session(&mut commands, id);
                commands.entity(e).insert((
                    Position {
                        scene: scene.clone(),
                        node: sc.entry.clone(),
                        entered_at_ms: clock.now_ms,
                        args: Default::default(),
                    },
                    SessionRng(domain::narrative::Rng::new(seed)),
                ));
                index.0.insert(id, e);
                work.0.push((e, id, Job::Begin));
            }
            Command::Resume { save } => {
                if existing.is_some() {
                    reject(&mut staging, id, name, ErrorReason::SessionExists);
                    continue;
                }
                match engine::check_save(&save, content) {
                    Err(reason) => reject(&mut staging, id, name, reason),
                    Ok((save, notes)) => {
                        let e = spawn_session(&mut commands, id);
                        let mut stack = save.stack;
                        let Some(top) = stack.pop() else { continue };
                        let now = clock.now_ms;
                        commands.entity(e).insert((
                            Position {
                                scene: top.scene,
                                node: top.node,
                                entered_at_ms: now - save.elapsed_in_node_ms,
                                args: top.args,
                            },
                            CallStack(stack),
                            Variables(save.vars),
                            VisitCounts(save.visits),
                            Progression(save.progress),
                            SessionRng(save.rng),
                            Cooldowns(
                                save.cooldowns
                                    .into_iter()
                                    .map(|(k, r)| (k, now + r))
                                    .collect(),
                            ),
                        ));
                        index.0.insert(id, e);
                        work.0.push((
                            e,
                            id,
                            Job::Resumed {
                                notes,
                                wait: save.wait,
                            },
                        ));
                    }
                }
            }
            other => match existing {
                None => reject(&mut staging, id, name, ErrorReason::UnknownSession),
                Some(e) => work.0.push((e, id, Job::Command(other))),
            },
        }
    }
    while let Some((token, entity)) = timers.pop_due(clock.now_ms) {
        work.0
            .push((entity, SessionId::from_u128(0), Job::Timer(token)));
    }
}

#[allow(clippy::too_many_arguments)]
fn step_sessions(
    mut work: ResMut<Work>,
    mut q: Query<SessionQuery>,
    mut staging: ResMut<Staging>,
    mut timers: ResMut<Timers>,
    content: Res<SimContent>,
    cfg: Res<SimConfig>,
    clock: Single<&WorldClock, With<SimWorld>>,
    media: Res<MediaLibrary>,
) {
    let content = content.0.clone();
    for (entity, _, job) in work.0.drain(..) {
        let Ok(mut s) = q.get_mut(entity) else {
            continue;
        };
        let id = s.session.id;
        let mut cx = Cx {
            content: &content,
            cfg: &cfg,
            now: clock.now_ms,
            id,
            entity,
            staging: &mut staging,
            timers: &mut timers,
            media: &media,
        };
        let s = &mut s;
        if *s.phase == Phase::Ended {
            if let Job::Command(c) = &job {
                cx.reject(c.name(), engine::wrong_state(c.name(), Phase::Ended));
            }
            continue;
        }
        let (label, result) = match job {
            Job::Begin => {
                cx.emit(Event::SessionStarted {
                    scene: s.pos.scene.clone(),
                    content_version: content.version.clone(),
                });
                ("start", engine::run(s, &mut cx, true))
            }
            Job::Resumed { notes, wait } => ("resume", engine::resumed(s, &mut cx, notes, wait)),
            Job::Timer(token) => ("timer", engine::on_timer(s, &mut cx, token)),
            Job::Command(Command::Choose { edge }) => ("choose", engine::choose(s, &mut cx, &edge)),
            Job::Command(Command::MiniGameInput {
                round,
                nonce,
                client_time_ms,
            }) => (
                "minigame_input",
                engine::on_input(s, &mut cx, round, nonce, client_time_ms),
            ),
            Job::Command(Command::Save) => {
                match engine::save(s, &cx) {
                    Ok(save) => cx.emit(Event::Saved {
                        save: Box::new(save),
                    }),
                    Err(reason) => cx.reject("save", reason),
                }
                ("save", Ok(()))
            }
            Job::Command(Command::Leave) => {
                *s.phase = Phase::Ended;
                s.minigame.0 = None;
                cx.emit(Event::SessionEnded {
                    reason: EndReason::Left,
                });
                cx.staging.ended.push((id, entity));
                ("leave", Ok(()))
            }
            Job::Command(c @ (Command::Start { .. } | Command::Resume { .. })) => {
                cx.reject(c.name(), ErrorReason::SessionExists);
                ("start", Ok(()))
            }
        };
        if let Err(detail) = result {
            engine::abort(s, &mut cx, label, detail);
        }
    }
}

fn emit_state_deltas(mut staging: ResMut<Staging>) {
    let staging = &mut *staging;
    staging.deltas.clear();
    if staging.journal.is_empty() {
        return;
    }
    // One delta per run of consecutive changes of a session (a session's work in a tick is
    // processed contiguously), in application order. Changes are moved, not copied.
    let mut journal = std::mem::take(&mut staging.journal).into_iter().peekable();
    while let Some((id, first)) = journal.next() {
        let mut changes = vec![first];
        while let Some((_, c)) = journal.next_if(|(next, _)| *next == id) {
            changes.push(c);
        }
        staging.deltas.push(staging.events.len());
        staging.events.push((id, Event::StateDelta { changes }));
    }
}

fn emit_progression(mut staging: ResMut<Staging>) {
    use domain::narrative::Change;
    let staging = &mut *staging;
    let mut out = Vec::new();
    for &i in &staging.deltas {
        let Some((id, Event::StateDelta { changes })) = staging.events.get(i) else {
            continue;
        };
        let mut xp = 0;
        for c in changes {
            let ev = match c {
                Change::Quest { quest, status } => Event::QuestUpdated {
                    quest: quest.clone(),
                    status: *status,
                },
                Change::Objective {
                    quest,
                    objective,
                    progress,
                    target,
                } => Event::ObjectiveUpdated {
                    quest: quest.clone(),
                    objective: objective.clone(),
                    progress: *progress,
                    target: *target,
                    completed: progress >= target,
                },
                Change::Xp { xp: total } => {
                    xp = *total;
                    continue;
                }
                Change::Level { level } => Event::LevelUp { level: *level, xp },
                Change::Unlocked { scene } => Event::SceneUnlocked {
                    scene: scene.clone(),
                },
                _ => continue,
            };
            out.push((*id, ev));
        }
    }
    staging.events.extend(out);
    staging.deltas.clear();
}

fn flush_outbox(
    mut commands: Commands,
    mut staging: ResMut<Staging>,
    mut outbox: ResMut<Outbox>,
    mut index: ResMut<SessionIndex>,
    mut sessions: Query<&mut Session>,
    clock: Single<&WorldClock, With<SimWorld>>,
) {
    if staging.events.is_empty() && staging.ended.is_empty() {
        return;
    }
    let now = clock.now_ms;
    // A session's `session_ended` comes after its other events of the tick.
    let staging = &mut *staging;
    let mut ends = Vec::new();
    let mut push = |id: SessionId, event: Event, outbox: &mut Outbox| {
        let seq = match index.0.get(&id).and_then(|e| sessions.get_mut(*e).ok()) {
            Some(mut s) => {
                let seq = s.next_seq;
                s.next_seq += 1;
                seq
            }
            None => 0,
        };
        outbox.events.push(SimEvent {
            session: id,
            seq,
            at_ms: now,
            event,
        });
    };
    outbox.events.reserve(staging.events.len());
    for (id, event) in staging.events.drain(..) {
        if matches!(event, Event::SessionEnded { .. }) {
            ends.push((id, event));
        } else {
            push(id, event, &mut outbox);
        }
    }
    for (id, event) in ends {
        push(id, event, &mut outbox);
    }
    for (id, e) in staging.ended.drain(..) {
        if index.0.get(&id) == Some(&e) {
            index.0.remove(&id);
        }
        if let Ok(mut ec) = commands.get_entity(e) {
            ec.despawn();
        }
    }
}
