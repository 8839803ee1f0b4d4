//! The tick side: `PreUpdate` feeds commands into `sim::Inbox`, `PostUpdate` collects
//! events and saves into the persister's slot. Nothing here waits on I/O.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bevy_app::{App, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::prelude::*;
use sim::{Event, SessionId, SimCommand, SimConfig};
use tokio::sync::{mpsc, oneshot};

use crate::inbound::SnapshotReply;
use crate::{ClockSample, CommandOutcome, Delivered, Inbound, Shared, events};

/// The bridge's systems: [`GameSystems::In`] in `PreUpdate` (commands into the
/// simulation's inbox), [`GameSystems::Out`] in `PostUpdate` (events and saves to the
/// persister). Other `PreUpdate` systems that must see what `In` let through in the
/// same tick (e.g. a content reload) order themselves after it.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GameSystems {
    /// Drains the inbound channel.
    In,
    /// Collects events, saves and the clock.
    Out,
}

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
                tick_started: None,
                step_started: None,
                unload_done: Vec::new(),
                unload_refused: Vec::new(),
                scratch: Vec::with_capacity(1024),
                later: Vec::new(),
                rest: Vec::new(),
                snapshots: Vec::new(),
                moves: crate::Whereabouts::new(),
            })),
        }
    }
}

impl Plugin for GamePlugin {
    fn build(&self, app: &mut App) {
        if let Some(bridge) = self.state.lock().unwrap_or_else(|p| p.into_inner()).take() {
            app.insert_resource(bridge)
                .add_systems(PreUpdate, bridge_in.in_set(GameSystems::In))
                .add_systems(PostUpdate, bridge_out.in_set(GameSystems::Out));
        } else {
            tracing::error!("GamePlugin added twice; ignoring the second one");
        }
    }
}

/// A command waiting for a tick: command, reply, when it was received.
type Queued = (
    sim::Command,
    Option<oneshot::Sender<CommandOutcome>>,
    Instant,
);

struct TickSession {
    next_seq: u64,
    /// Commands waiting for a tick.
    queue: VecDeque<Queued>,
    /// The command processed this tick: name, reply, when it was received.
    inflight: Option<(
        &'static str,
        Option<oneshot::Sender<CommandOutcome>>,
        Instant,
    )>,
    in_ready: bool,
    touched: bool,
    ended: bool,
    rejection: Option<(String, String)>,
    /// Save and unload at the end of this tick.
    unload: bool,
    /// Its final progression once it ended (JSON, for the session's last write).
    final_view: Option<String>,
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
            unload: false,
            final_view: None,
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
    /// When the last tick began (its `PreUpdate`), for the published clock.
    tick_started: Option<Instant>,
    /// When this step (a tick or a command step) began.
    step_started: Option<Instant>,
    /// Unloads with nothing to save (the session was not running).
    unload_done: Vec<uuid::Uuid>,
    /// Unloads refused (the session had work queued).
    unload_refused: Vec<uuid::Uuid>,
    /// Each event is encoded here, then copied out at its exact size (one allocation
    /// instead of a buffer regrown from empty per event).
    scratch: Vec<u8>,
    /// `bridge_out`'s lists, kept with their capacity from tick to tick: the events
    /// and the sessions left for the second hand-over.
    later: Vec<sim::SimEvent>,
    rest: Vec<SessionId>,
    /// Snapshot requests of this tick, answered once its events are numbered.
    snapshots: Vec<(SessionId, oneshot::Sender<SnapshotReply>)>,
    /// Where sessions moved, not yet reported ([`crate::Whereabouts`]).
    moves: crate::Whereabouts,
}

fn reject(reply: oneshot::Sender<CommandOutcome>, code: &str, message: &str) {
    let _ = reply.send(CommandOutcome::Rejected {
        code: code.to_owned(),
        message: message.to_owned(),
    });
}

fn bridge_in(mut bridge: ResMut<Bridge>, mut inbox: ResMut<sim::Inbox>) {
    let bridge = &mut *bridge;
    let started = Instant::now();
    bridge.step_started = Some(started);
    let per_session = bridge.shared.cfg.per_session_queue.max(1);
    while let Ok(msg) = bridge.rx.try_recv() {
        if let Some((id, queued)) = bridge.receive(msg, &mut inbox, started) {
            bridge.enqueue(id, queued, per_session);
        }
    }
    bridge.dispatch(&mut inbox);
}

// The inbox stays a `ResMut` in these steps: it is marked changed only when something
// is pushed, as when they were one system body.
impl Bridge {
    /// Takes one inbound message: media and unloads are handled here; a start, resume
    /// or command comes back as its session's command to queue.
    fn receive(
        &mut self,
        msg: Inbound,
        inbox: &mut ResMut<'_, sim::Inbox>,
        started: Instant,
    ) -> Option<(SessionId, Queued)> {
        match msg {
            Inbound::MediaReady(ready) => {
                inbox.media.push(ready);
                None
            }
            Inbound::MediaProgress(progress) => {
                inbox.media_progress.push(progress);
                None
            }
            Inbound::Unload { session } => {
                self.request_unload(session);
                None
            }
            Inbound::Snapshot { session, reply } => {
                self.snapshots.push((SessionId(session), reply));
                None
            }
            Inbound::Start {
                session,
                scene,
                seed,
                next_seq,
            } => {
                let id = SessionId(session);
                self.sessions.insert(id, TickSession::new(next_seq));
                Some((id, (sim::Command::Start { scene, seed }, None, started)))
            }
            Inbound::Resume {
                session,
                save,
                next_seq,
            } => {
                let id = SessionId(session);
                self.sessions.insert(id, TickSession::new(next_seq));
                Some((id, (sim::Command::Resume { save }, None, started)))
            }
            Inbound::Command {
                session,
                command,
                reply,
                received,
            } => Some((SessionId(session), (command, Some(reply), received))),
        }
    }

    /// Marks an idle session for save-and-unload at the end of this tick, or answers
    /// the unload at once (nothing loaded, or the session has work).
    fn request_unload(&mut self, session: uuid::Uuid) {
        let id = SessionId(session);
        match self.sessions.get_mut(&id) {
            None => self.unload_done.push(session),
            Some(ts) if ts.ended || ts.unload || !ts.queue.is_empty() => {
                self.unload_refused.push(session);
            }
            Some(ts) => {
                ts.unload = true;
                if !ts.touched {
                    ts.touched = true;
                    self.touched.push(id);
                }
            }
        }
    }

    /// Queues a session's command, or rejects it at once (no such session, ended,
    /// being unloaded, or too many queued).
    fn enqueue(&mut self, id: SessionId, queued: Queued, per_session: usize) {
        let (command, reply, received) = queued;
        let Some(ts) = self.sessions.get_mut(&id) else {
            if let Some(r) = reply {
                reject(r, "session_ended", "the session is not running");
            }
            return;
        };
        if ts.ended {
            if let Some(r) = reply {
                reject(r, "session_ended", "the session has ended");
            }
            return;
        }
        if ts.unload {
            if let Some(r) = reply {
                reject(r, "busy", "the session is being unloaded; retry");
            }
            return;
        }
        if reply.is_some() && ts.queue.len() >= per_session {
            if let Some(r) = reply {
                reject(r, "busy", "too many commands queued for this session");
            }
            return;
        }
        ts.queue.push_back((command, reply, received));
        if !ts.in_ready {
            ts.in_ready = true;
            self.ready.push(id);
        }
    }

    /// Hands the simulation at most one command per session and tick: that tick's
    /// events answer it.
    fn dispatch(&mut self, inbox: &mut ResMut<'_, sim::Inbox>) {
        let sessions = &mut self.sessions;
        let touched = &mut self.touched;
        self.ready.retain(|id| {
            let Some(ts) = sessions.get_mut(id) else {
                return false;
            };
            if let Some((command, reply, received)) = ts.queue.pop_front() {
                ts.inflight = Some((command.name(), reply, received));
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
}

// A system's parameters: the resources it reads and writes.
#[allow(clippy::too_many_arguments)]
fn bridge_out(
    mut bridge: ResMut<Bridge>,
    mut outbox: ResMut<sim::Outbox>,
    mut sessions: sim::Sessions,
    (sim_cfg, step): (Res<SimConfig>, Res<sim::StepKind>),
) {
    let bridge = &mut *bridge;
    // A command step leaves real-time clocks where the last tick put them, so the
    // sample keeps that tick's start (a turn-based world may have moved).
    if *step == sim::StepKind::Tick {
        bridge.tick_started = bridge.step_started;
    }
    publish_clock(bridge, sessions.clocks(), sim_cfg.tick_ms);
    report_moves(bridge);
    for (id, last) in outbox.ended.drain(..) {
        if let Some(ts) = bridge.sessions.get_mut(&id) {
            ts.final_view = crate::snapshot::final_view_json(last);
        }
    }
    if bridge.touched.is_empty()
        && outbox.events.is_empty()
        && bridge.unload_done.is_empty()
        && bridge.unload_refused.is_empty()
        && bridge.snapshots.is_empty()
    {
        return;
    }
    // Commands that waited longest for this step are the closest to the latency bound:
    // their sessions go first, in a smaller hand-over of their own, which the persister
    // starts committing while the tick still builds the rest.
    let urgent_before = bridge
        .shared
        .cfg
        .urgent_wait
        .and_then(|w| bridge.step_started?.checked_sub(w));
    let mut later = std::mem::take(&mut bridge.later);
    let mut out = Out {
        sessions: &mut sessions,
        gone: Vec::new(),
    };
    if let Some(before) = urgent_before {
        out_urgent(bridge, &mut out, &mut outbox, before, &mut later);
    } else {
        later.extend(outbox.drain());
    }
    let mut pending = out_rest(bridge, &mut out, later);
    answer_snapshots(bridge, out.sessions, &mut pending);
    let tracking = bridge.shared.whereabouts_taken.load(Ordering::Relaxed);
    for id in out.gone {
        bridge.sessions.remove(&id);
        if tracking {
            bridge.moves.insert(id.0, None);
        }
    }
    report_moves(bridge);
    hand_over(&bridge.shared, pending, false);
}

/// Sends the moves recorded so far to the media task, unless its queue is full: then
/// they stay, merge with later ones and go at the end of a later tick (or its start, when
/// it has nothing else to do).
fn report_moves(bridge: &mut Bridge) {
    if bridge.moves.is_empty() {
        return;
    }
    match bridge
        .shared
        .whereabouts
        .try_send(std::mem::take(&mut bridge.moves))
    {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(moves)) => bridge.moves = moves,
        Err(mpsc::error::TrySendError::Closed(_)) => {
            bridge
                .shared
                .whereabouts_taken
                .store(false, Ordering::Relaxed);
        }
    }
}

/// Answers this tick's snapshot requests with the sessions' views after the tick, every
/// event of the tick numbered: a view reflects exactly the events below its `next_seq`.
/// The answers go with the tick's last hand-over, released once it is committed.
fn answer_snapshots(
    bridge: &mut Bridge,
    sessions: &sim::Sessions<'_, '_>,
    pending: &mut crate::Pending,
) {
    for (id, reply) in bridge.snapshots.drain(..) {
        let answer = match bridge.sessions.get(&id) {
            Some(ts) if !ts.ended => match sessions.view(id) {
                Some(view) => SnapshotReply::Live {
                    next_seq: ts.next_seq,
                    view: Box::new(view),
                },
                None => SnapshotReply::NotRunning,
            },
            Some(_) | None => SnapshotReply::NotRunning,
        };
        pending.snapshots.push((reply, answer));
    }
}

/// Publishes the worlds' clocks as of this tick (see [`ClockSample`]).
fn publish_clock(bridge: &Bridge, clocks: Vec<(String, sim::Clock)>, tick_ms: i64) {
    if let Some(started) = bridge.tick_started
        && !clocks.is_empty()
    {
        let sample = ClockSample::new(started, tick_ms, clocks);
        // Never wait here: a reader holding the lock just means one stale sample.
        if let Ok(mut slot) = bridge.shared.clock.try_lock() {
            *slot = Some(sample);
        }
    }
}

/// The tick's first hand-over: the events and sessions of commands received before
/// `before`. The other events go to `later`; the other sessions stay in
/// `bridge.touched`.
fn out_urgent(
    bridge: &mut Bridge,
    out: &mut Out<'_, '_, '_>,
    outbox: &mut sim::Outbox,
    before: Instant,
    later: &mut Vec<sim::SimEvent>,
) {
    let mut first = crate::Pending::default();
    for ev in outbox.drain() {
        match bridge.sessions.get(&ev.session) {
            Some(ts) if ts.received_before(before) => out_event(bridge, ev, &mut first),
            Some(_) => later.push(ev),
            None => {}
        }
    }
    let mut touched = std::mem::take(&mut bridge.touched);
    let mut rest = std::mem::take(&mut bridge.rest);
    for id in touched.drain(..) {
        match bridge.sessions.get(&id) {
            Some(ts) if ts.received_before(before) => {
                out_session(bridge, out, id, &mut first);
            }
            _ => rest.push(id),
        }
    }
    // The two lists swap roles: the rest is the tick's touched list from here on.
    bridge.touched = rest;
    bridge.rest = touched;
    if !first.is_empty() {
        hand_over(&bridge.shared, first, true);
    }
}

/// The tick's last hand-over, built: the events in `later` (given back to
/// `bridge.later` for its capacity), the touched sessions, and the unloads answered
/// in `bridge_in`.
fn out_rest(
    bridge: &mut Bridge,
    out: &mut Out<'_, '_, '_>,
    mut later: Vec<sim::SimEvent>,
) -> crate::Pending {
    let mut pending = crate::Pending {
        events: Vec::with_capacity(later.len()),
        deliveries: Vec::with_capacity(later.len()),
        unloaded: std::mem::take(&mut bridge.unload_done),
        unload_refused: std::mem::take(&mut bridge.unload_refused),
        ..Default::default()
    };
    for ev in later.drain(..) {
        out_event(bridge, ev, &mut pending);
    }
    bridge.later = later;
    let touched = std::mem::take(&mut bridge.touched);
    pending.sessions.reserve(touched.len());
    pending.acks.reserve(touched.len());
    for id in &touched {
        out_session(bridge, out, *id, &mut pending);
    }
    // Keep the list's capacity for the next tick.
    bridge.touched = touched;
    bridge.touched.clear();
    pending
}

impl TickSession {
    /// Whether this tick's command was received before `before`.
    fn received_before(&self, before: Instant) -> bool {
        matches!(&self.inflight, Some((_, _, at)) if *at <= before)
    }
}

/// What [`out_session`] needs from the tick's world.
struct Out<'a, 'w, 's> {
    /// The simulation's sessions: their saves, and unloading them.
    sessions: &'a mut sim::Sessions<'w, 's>,
    /// Sessions done with (ended or unloaded): forgotten once both parts are built.
    gone: Vec<SessionId>,
}

/// Adds one event to `pending`: encoded once, the same bytes for the log and for
/// delivery.
fn out_event(bridge: &mut Bridge, ev: sim::SimEvent, pending: &mut crate::Pending) {
    let Some(ts) = bridge.sessions.get_mut(&ev.session) else {
        return;
    };
    // A refusal of the command in flight changed nothing: it answers the command and
    // stays out of the log (no seq). A runtime error aborting the session is an event.
    if let Event::Error {
        command,
        reason,
        message,
    } = &ev.event
        && let Some((name, Some(_), _)) = &ts.inflight
        && command == name
        && !matches!(reason, sim::ErrorReason::Runtime { .. })
    {
        ts.rejection = Some((events::reason_code(reason).to_owned(), message.clone()));
        return;
    }
    if matches!(ev.event, Event::SessionEnded { .. }) {
        ts.ended = true;
    }
    if matches!(ev.event, Event::Saved { .. }) {
        return;
    }
    if let Event::NodeEntered { scene, node, .. } = &ev.event
        && bridge.shared.whereabouts_taken.load(Ordering::Relaxed)
    {
        bridge
            .moves
            .insert(ev.session.0, Some((scene.clone(), node.clone())));
    }
    if let Event::NodeEntered {
        scene,
        node,
        media: Some(m),
        ..
    } = &ev.event
        && let sim::Media::Generate {
            operation,
            prompt,
            params,
        } = &**m
    {
        // Never waits; a full queue drops the request and the next entry asks again.
        let _ = bridge.shared.media_wanted.try_send(crate::MediaWanted {
            scene: scene.clone(),
            node: node.clone(),
            operation: operation.clone(),
            prompt: prompt.clone(),
            params: params.clone(),
        });
    }
    bridge.scratch.clear();
    let bytes = match postcard::to_io(&events::into_wire(ev.event), &mut bridge.scratch) {
        Ok(_) => bytes::Bytes::copy_from_slice(&bridge.scratch),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a game event");
            return;
        }
    };
    let seq = ts.next_seq;
    ts.next_seq += 1;
    if !ts.touched {
        ts.touched = true;
        bridge.touched.push(ev.session);
    }
    pending.events.push(store::game::EventWrite {
        session: ev.session.0,
        seq: seq as i64,
        at_ms: ev.at_ms,
        event: bytes.clone(),
    });
    pending.deliveries.push((
        ev.session.0,
        Arc::new(Delivered {
            seq,
            at_ms: ev.at_ms,
            encoded: bytes,
        }),
    ));
}

/// Adds a touched session's save, sequence and answers to `pending` (or saves and
/// unloads it, when asked to and idle).
fn out_session(
    bridge: &mut Bridge,
    out: &mut Out<'_, '_, '_>,
    id: SessionId,
    pending: &mut crate::Pending,
) {
    let window = bridge.shared.cfg.resend_window as u64;
    let Some(ts) = bridge.sessions.get_mut(&id) else {
        return;
    };
    ts.touched = false;
    // Not live after its command ran: ended, or a start/resume refused.
    if !out.sessions.is_live(id) {
        ts.ended = true;
    }
    if ts.unload && ts.unload_if_idle(out, id, pending) {
        return;
    }
    ts.write(out.sessions, id, window, pending);
    ts.answer(out, id, pending);
}

impl TickSession {
    /// Idle and detached: saves it now (world time included) and unloads it; the
    /// handle forgets it once this save is committed. Otherwise (busy, ended, or no
    /// save can be made in this phase) keeps it loaded and refuses the unload.
    /// Whether it was unloaded.
    fn unload_if_idle(
        &mut self,
        out: &mut Out<'_, '_, '_>,
        id: SessionId,
        pending: &mut crate::Pending,
    ) -> bool {
        let save = (!self.ended && self.inflight.is_none())
            .then(|| out.sessions.save_binary(id))
            .flatten();
        if let Some(save) = save {
            pending.sessions.insert(
                id.0,
                store::game::SessionWrite {
                    id: id.0,
                    save: Some(store::game::Save::Binary(save)),
                    ended: false,
                    final_view: None,
                    next_seq: self.next_seq as i64,
                },
            );
            out.sessions.unload(id);
            pending.unloaded.push(id.0);
            out.gone.push(id);
            return true;
        }
        self.unload = false;
        pending.unload_refused.push(id.0);
        false
    }

    /// The session's row, and the event log trimmed to the resend window every 64
    /// events.
    fn write(
        &self,
        sessions: &sim::Sessions<'_, '_>,
        id: SessionId,
        window: u64,
        pending: &mut crate::Pending,
    ) {
        // The simulation's own save (`sim::Sessions::save_binary`: nothing while starting
        // or ended), in the binary form: the applier converts it to JSON for the tables.
        let save = if self.ended {
            None
        } else {
            sessions.save_binary(id)
        };
        pending.sessions.insert(
            id.0,
            store::game::SessionWrite {
                id: id.0,
                save: save.map(store::game::Save::Binary),
                ended: self.ended,
                // Set once it ended: what its events leave the player with.
                final_view: self.final_view.clone(),
                next_seq: self.next_seq as i64,
            },
        );
        if self.next_seq > window && self.next_seq.is_multiple_of(64) {
            pending.trim.push((id.0, (self.next_seq - window) as i64));
        }
    }

    /// Answers this tick's command (rejected, or accepted through the last event), and
    /// when the session ended, every command still queued; an ended session is done
    /// with.
    fn answer(&mut self, out: &mut Out<'_, '_, '_>, id: SessionId, pending: &mut crate::Pending) {
        if let Some((_, reply, _)) = self.inflight.take()
            && let Some(reply) = reply
        {
            let outcome = match self.rejection.take() {
                Some((code, message)) => CommandOutcome::Rejected { code, message },
                None => CommandOutcome::Accepted {
                    through_seq: self.next_seq.checked_sub(1),
                },
            };
            pending.acks.push((id.0, reply, outcome));
        }
        self.rejection = None;
        if self.ended {
            pending.ended.push(id.0);
            for (_, reply, _) in self.queue.drain(..) {
                if let Some(r) = reply {
                    pending.acks.push((
                        id.0,
                        r,
                        CommandOutcome::Rejected {
                            code: "session_ended".into(),
                            message: "the session has ended".into(),
                        },
                    ));
                }
            }
            out.gone.push(id);
        }
    }
}

/// Puts `pending` in the persister's slot and wakes it. `urgent`: the tick's first
/// part (see [`crate::GameConfig::urgent_wait`]); otherwise its last, and the tick
/// counts as handed over.
fn hand_over(shared: &crate::Shared, mut pending: crate::Pending, urgent: bool) {
    let slot = &shared.slot;
    {
        let mut w = slot.lock();
        if !urgent {
            pending.completes = Some(slot.pushed.fetch_add(1, Ordering::AcqRel) + 1);
        }
        w.hand_over(pending, urgent);
    }
    slot.notify.notify_one();
}
