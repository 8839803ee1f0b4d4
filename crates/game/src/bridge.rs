//! The tick side: `PreUpdate` feeds commands into `sim::Inbox`, `PostUpdate` collects
//! events and saves into the persister's slot. Nothing here waits on I/O.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bevy_app::{App, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::prelude::*;
use domain::narrative::{Frame, SAVE_VERSION, SavedWait, SessionSave};
use sim::{
    ActiveMiniGame, CallStack, Cooldowns, Event, PendingChoices, Phase, Position, Progression,
    SessionId, SessionIndex, SessionRng, SimCommand, SimContent, SimWorld, Variables, VisitCounts,
    WorldClock,
};
use tokio::sync::{mpsc, oneshot};

use crate::{CommandOutcome, Delivered, Inbound, Shared, events};

/// Adds the bridge systems to the tick app (next to `sim::SimPlugin`).
pub struct GamePlugin {
    state: Mutex<Option<Bridge>>,
}

impl std::fmt::Debug for GamePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GamePlugin").finish_non_exhaustive()
    }
}

impl GamePlugin {
    pub(crate) fn new(rx: mpsc::Receiver<Inbound>, shared: Arc<Shared>) -> Self {
        GamePlugin {
            state: Mutex::new(Some(Bridge {
                rx,
                shared,
                sessions: HashMap::new(),
                ready: Vec::new(),
                touched: Vec::new(),
            })),
        }
    }
}

impl Plugin for GamePlugin {
    fn build(&self, app: &mut App) {
        if let Some(bridge) = self.state.lock().unwrap_or_else(|p| p.into_inner()).take() {
            app.insert_resource(bridge)
                .add_systems(PreUpdate, bridge_in)
                .add_systems(PostUpdate, bridge_out);
        } else {
            tracing::error!("GamePlugin added twice; ignoring the second one");
        }
    }
}

struct TickSession {
    next_seq: u64,
    queue: VecDeque<(sim::Command, Option<oneshot::Sender<CommandOutcome>>)>,
    /// The command processed this tick: name and reply.
    inflight: Option<(&'static str, Option<oneshot::Sender<CommandOutcome>>)>,
    in_ready: bool,
    touched: bool,
    ended: bool,
    rejection: Option<(String, String)>,
}

impl TickSession {
    fn new(next_seq: u64) -> Self {
        TickSession {
            next_seq,
            queue: VecDeque::new(),
            inflight: None,
            in_ready: false,
            touched: false,
            ended: false,
            rejection: None,
        }
    }
}

#[derive(Resource)]
struct Bridge {
    rx: mpsc::Receiver<Inbound>,
    shared: Arc<Shared>,
    sessions: HashMap<SessionId, TickSession>,
    /// Sessions with queued commands.
    ready: Vec<SessionId>,
    /// Sessions with a command or events this tick.
    touched: Vec<SessionId>,
}

fn reject(reply: oneshot::Sender<CommandOutcome>, code: &str, message: &str) {
    let _ = reply.send(CommandOutcome::Rejected {
        code: code.to_owned(),
        message: message.to_owned(),
    });
}

fn bridge_in(mut bridge: ResMut<Bridge>, mut inbox: ResMut<sim::Inbox>) {
    let bridge = &mut *bridge;
    let per_session = bridge.shared.cfg.per_session_queue.max(1);
    while let Ok(msg) = bridge.rx.try_recv() {
        let (id, command, reply) = match msg {
            Inbound::Start {
                session,
                scene,
                seed,
                next_seq,
            } => {
                let id = SessionId(session);
                bridge.sessions.insert(id, TickSession::new(next_seq));
                (id, sim::Command::Start { scene, seed }, None)
            }
            Inbound::Resume {
                session,
                save,
                next_seq,
            } => {
                let id = SessionId(session);
                bridge.sessions.insert(id, TickSession::new(next_seq));
                (id, sim::Command::Resume { save }, None)
            }
            Inbound::Command {
                session,
                command,
                reply,
            } => (SessionId(session), command, Some(reply)),
        };
        let Some(ts) = bridge.sessions.get_mut(&id) else {
            if let Some(r) = reply {
                reject(r, "session_ended", "the session is not running");
            }
            continue;
        };
        if ts.ended {
            if let Some(r) = reply {
                reject(r, "session_ended", "the session has ended");
            }
            continue;
        }
        if reply.is_some() && ts.queue.len() >= per_session {
            if let Some(r) = reply {
                reject(r, "busy", "too many commands queued for this session");
            }
            continue;
        }
        ts.queue.push_back((command, reply));
        if !ts.in_ready {
            ts.in_ready = true;
            bridge.ready.push(id);
        }
    }
    // At most one command per session and tick: that tick's events answer it.
    let sessions = &mut bridge.sessions;
    let touched = &mut bridge.touched;
    bridge.ready.retain(|id| {
        let Some(ts) = sessions.get_mut(id) else {
            return false;
        };
        if let Some((command, reply)) = ts.queue.pop_front() {
            ts.inflight = Some((command.name(), reply));
            if !ts.touched {
                ts.touched = true;
                touched.push(*id);
            }
            inbox.commands.push(SimCommand {
                session: *id,
                command,
            });
        }
        ts.in_ready = !ts.queue.is_empty();
        ts.in_ready
    });
}

type SaveQuery<'w, 's> = Query<
    'w,
    's,
    (
        &'static Position,
        &'static CallStack,
        &'static Variables,
        &'static VisitCounts,
        &'static PendingChoices,
        &'static Progression,
        &'static SessionRng,
        &'static Cooldowns,
        &'static ActiveMiniGame,
        &'static Phase,
    ),
>;

/// The same save the simulation's `Command::Save` would produce, taken right after
/// the tick (`None` while the session is starting or has ended).
fn build_save(
    q: &SaveQuery<'_, '_>,
    entity: Entity,
    now: i64,
    content_version: &str,
) -> Option<SessionSave> {
    let (pos, stack, vars, visits, choices, progress, rng, cooldowns, minigame, phase) =
        q.get(entity).ok()?;
    let wait = match phase {
        Phase::Choosing => SavedWait::Choices {
            offered: choices.0.iter().map(|o| o.edge.clone()).collect(),
        },
        Phase::MiniGame => {
            let run = minigame.0.as_ref()?;
            SavedWait::MiniGame {
                round: run.round,
                hits: run.hits,
            }
        }
        _ => return None,
    };
    let mut frames = stack.0.clone();
    frames.push(Frame {
        scene: pos.scene.clone(),
        node: pos.node.clone(),
        args: pos.args.clone(),
    });
    Some(SessionSave {
        version: SAVE_VERSION,
        content_version: content_version.to_owned(),
        rng: rng.0,
        stack: frames,
        elapsed_in_node_ms: now - pos.entered_at_ms,
        wait,
        vars: vars.0.clone(),
        visits: visits.0.clone(),
        progress: progress.0.clone(),
        cooldowns: cooldowns
            .0
            .iter()
            .map(|(k, u)| (k.clone(), (u - now).max(0)))
            .filter(|(_, r)| *r > 0)
            .collect(),
    })
}

fn bridge_out(
    mut bridge: ResMut<Bridge>,
    mut outbox: ResMut<sim::Outbox>,
    index: Res<SessionIndex>,
    content: Res<SimContent>,
    clock: Query<&WorldClock, With<SimWorld>>,
    saves: SaveQuery,
) {
    let bridge = &mut *bridge;
    let now = clock.iter().next().map(|c| c.now_ms).unwrap_or(0);
    let mut events = Vec::new();
    for ev in outbox.drain() {
        let Some(ts) = bridge.sessions.get_mut(&ev.session) else {
            continue;
        };
        if let Event::Error {
            command,
            reason,
            message,
        } = &ev.event
            && let Some((name, _)) = &ts.inflight
            && command == name
        {
            ts.rejection = Some((events::reason_code(reason).to_owned(), message.clone()));
        }
        if matches!(ev.event, Event::SessionEnded { .. }) {
            ts.ended = true;
        }
        if matches!(ev.event, Event::Saved { .. }) {
            continue;
        }
        let seq = ts.next_seq;
        ts.next_seq += 1;
        if !ts.touched {
            ts.touched = true;
            bridge.touched.push(ev.session);
        }
        events.push((ev.session, seq, ev.at_ms, events::to_wire(&ev.event)));
    }
    let touched = std::mem::take(&mut bridge.touched);
    if touched.is_empty() {
        return;
    }
    let window = bridge.shared.cfg.resend_window as u64;
    let mut pending = crate::Pending::default();
    for (session, seq, at_ms, event) in events {
        let bytes = match postcard::to_stdvec(&event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a game event");
                continue;
            }
        };
        pending.events.push(store::game::EventWrite {
            session: session.0,
            seq: seq as i64,
            at_ms,
            event: bytes,
        });
        pending
            .deliveries
            .push((session.0, Arc::new(Delivered { seq, at_ms, event })));
    }
    let version = content.0.version.clone();
    let mut gone = Vec::new();
    for id in touched {
        let Some(ts) = bridge.sessions.get_mut(&id) else {
            continue;
        };
        ts.touched = false;
        let entity = index.0.get(&id).copied();
        // Not in the index after its command ran: ended, or a start/resume refused.
        if entity.is_none() {
            ts.ended = true;
        }
        let save = if ts.ended {
            None
        } else {
            entity
                .and_then(|e| build_save(&saves, e, now, &version))
                .and_then(|s| match serde_json::to_string(&s) {
                    Ok(j) => Some(j),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a save");
                        None
                    }
                })
        };
        pending.sessions.insert(
            id.0,
            store::game::SessionWrite {
                id: id.0,
                save,
                ended: ts.ended,
                next_seq: ts.next_seq as i64,
            },
        );
        if ts.next_seq > window && ts.next_seq % 64 == 0 {
            pending.trim.push((id.0, (ts.next_seq - window) as i64));
        }
        if let Some((_, reply)) = ts.inflight.take()
            && let Some(reply) = reply
        {
            let outcome = match ts.rejection.take() {
                Some((code, message)) => CommandOutcome::Rejected { code, message },
                None => CommandOutcome::Accepted {
                    through_seq: ts.next_seq.checked_sub(1),
                },
            };
            pending.acks.push((reply, outcome));
        }
        ts.rejection = None;
        if ts.ended {
            pending.ended.push(id.0);
            for (_, reply) in ts.queue.drain(..) {
                if let Some(r) = reply {
                    pending.acks.push((
                        r,
                        CommandOutcome::Rejected {
                            code: "session_ended".into(),
                            message: "the session has ended".into(),
                        },
                    ));
                }
            }
            gone.push(id);
        }
    }
    for id in gone {
        bridge.sessions.remove(&id);
    }
    let slot = &bridge.shared.slot;
    {
        let mut p = slot.lock();
        for (id, w) in pending.sessions {
            match p.sessions.get_mut(&id) {
                Some(old) => {
                    if w.save.is_some() {
                        old.save = w.save;
                    }
                    old.ended |= w.ended;
                    old.next_seq = old.next_seq.max(w.next_seq);
                }
                None => {
                    p.sessions.insert(id, w);
                }
            }
        }
        p.events.append(&mut pending.events);
        p.trim.append(&mut pending.trim);
        p.deliveries.append(&mut pending.deliveries);
        p.ended.append(&mut pending.ended);
        p.acks.append(&mut pending.acks);
        slot.pushed.fetch_add(1, Ordering::AcqRel);
    }
    slot.notify.notify_one();
}
