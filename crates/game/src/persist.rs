//! The persister: takes what the tick handed over (a tick's urgent part alone, else
//! everything waiting: one or more ticks), makes it durable as one row of the batch
//! log, then publishes the events and releases the acknowledgements. The applier then
//! writes each logged batch into the session and event tables, off the
//! acknowledgement path. Next to them runs the sweeper, which evicts ended and idle
//! sessions from memory once their state is applied.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util_free::CancelFlag;

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{Inbound, Pending, Shared};

/// A tiny cancellation flag (avoids a tokio-util dependency).
mod tokio_util_free {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Clone, Default, Debug)]
    pub struct CancelFlag(Arc<AtomicBool>);

    impl CancelFlag {
        pub fn cancel(&self) {
            self.0.store(true, Ordering::Release);
        }
        pub fn is_cancelled(&self) -> bool {
            self.0.load(Ordering::Acquire)
        }
    }
}

/// The write-behind task. Spawn it with [`Persister::spawn`].
pub struct Persister {
    pool: PgPool,
    shared: Arc<Shared>,
    to_tick: mpsc::Sender<Inbound>,
}

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister").finish_non_exhaustive()
    }
}

/// A running persister.
pub struct PersisterTask {
    stop: CancelFlag,
    shared: Arc<Shared>,
    task: Done,
    applier: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PersisterTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersisterTask").finish_non_exhaustive()
    }
}

impl PersisterTask {
    /// Logs what is pending, applies what it can, then stops (a batch left unapplied
    /// is replayed at the next start).
    pub async fn stop(self) {
        self.stop.cancel();
        self.sweeper.abort();
        self.shared.slot.notify.notify_one();
        match self.task {
            Done::Thread(rx) => {
                let _ = rx.await;
            }
            Done::Task(t) => {
                let _ = t.await;
            }
        }
        let _ = self.applier.await;
        let _ = self.sweeper.await;
    }
}

impl Persister {
    pub(crate) fn new(pool: PgPool, shared: Arc<Shared>, to_tick: mpsc::Sender<Inbound>) -> Self {
        Persister {
            pool,
            shared,
            to_tick,
        }
    }

    /// Spawns the persister (on a thread of its own), the applier and the sweeper.
    pub fn spawn(self) -> PersisterTask {
        let stop = CancelFlag::default();
        let shared = Arc::clone(&self.shared);
        let (to_apply, logged) = mpsc::channel(APPLY_QUEUE);
        let applier = tokio::spawn(apply(
            store::game::Writer::applier(&self.pool),
            logged,
            Arc::clone(&self.shared),
            stop.clone(),
        ));
        // The acknowledgement path gets a thread (and runtime) of its own: with the QUIC
        // tasks busy on the shared workers, a commit's reply would otherwise wait for a
        // worker before the tick's acknowledgements go out.
        let run = run(
            store::game::Writer::new(&self.pool),
            Arc::clone(&self.shared),
            to_apply,
            stop.clone(),
        );
        let task = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => {
                let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                let spawned = std::thread::Builder::new()
                    .name("pixsim-persister".into())
                    .spawn(move || {
                        rt.block_on(run);
                        let _ = done_tx.send(());
                    });
                match spawned {
                    Ok(_) => Done::Thread(done_rx),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the persister thread; game state is not saved");
                        Done::Thread(done_rx)
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no runtime of its own for the persister; sharing the server's");
                Done::Task(tokio::spawn(run))
            }
        };
        let sweeper = tokio::spawn(sweep(Arc::clone(&self.shared), self.to_tick, stop.clone()));
        PersisterTask {
            stop,
            shared,
            task,
            applier,
            sweeper,
        }
    }
}

/// How the persister's end is awaited.
enum Done {
    /// On its own thread: signalled when it returns.
    Thread(tokio::sync::oneshot::Receiver<()>),
    /// On the server's runtime (when a runtime of its own could not be built).
    Task(tokio::task::JoinHandle<()>),
}

/// Logged batches waiting to be applied; when full, the persister waits (the batches
/// are durable already, so this only bounds memory).
const APPLY_QUEUE: usize = 256;

/// A command's answer, and where it goes.
type Ack = (
    oneshot::Sender<crate::CommandOutcome>,
    crate::CommandOutcome,
);

/// What a committed batch releases for one session.
struct Outgoing {
    /// The session, if still in memory.
    live: Option<Arc<crate::LiveSession>>,
    /// Its events, in order.
    events: Vec<Arc<crate::Delivered>>,
    /// Its commands' answers.
    acks: Vec<Ack>,
    /// The batch ended it.
    ended: bool,
    /// Its final progression (JSON), when the batch ended it.
    final_view: Option<String>,
}

/// A logged batch on its way to the tables.
struct Logged {
    id: i64,
    batch: store::game::Batch,
    /// Sessions the tick unloaded in this batch: forgotten once it is applied.
    unloaded: Vec<Uuid>,
    /// When its log row was committed.
    logged_at: std::time::Instant,
}

/// Evicts ended sessions, and asks the tick to unload idle detached ones (the
/// persister forgets them once their final save is committed).
async fn sweep(shared: Arc<Shared>, to_tick: mpsc::Sender<Inbound>, stop: CancelFlag) {
    let interval = shared.cfg.sweep_interval();
    while !stop.is_cancelled() {
        tokio::time::sleep(interval).await;
        for session in shared.sweep() {
            if to_tick.try_send(Inbound::Unload { session }).is_err() {
                // The tick is busy (or stopping): keep the session, try again later.
                shared.finish_unload(&session, false);
            }
        }
    }
}

async fn run(
    mut writer: store::game::Writer,
    shared: Arc<Shared>,
    to_apply: mpsc::Sender<Logged>,
    stop: CancelFlag,
) {
    loop {
        let (next, ticks) = {
            let mut w = shared.slot.lock();
            // Read under the lock: when nothing waits, every tick counted here was
            // taken, and (this loop being the only taker) committed.
            let ticks = shared.slot.pushed.load(Ordering::Acquire);
            (w.take(), ticks)
        };
        let Some(pending) = next else {
            shared.slot.done.fetch_max(ticks, Ordering::AcqRel);
            // Stopped, or the server's runtime is gone (the applier with it): on a thread
            // of its own, nothing else would end this loop.
            if stop.is_cancelled() || to_apply.is_closed() {
                return;
            }
            let notified = shared.slot.notify.notified();
            // Re-check after registering, so a notify between take and here is not lost.
            if !shared.slot.lock().is_empty() || stop.is_cancelled() {
                continue;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
            continue;
        };
        let completes = pending.completes;
        if pending.is_empty() {
            // Only answers that need no write: everything handed over before them is
            // committed and published already.
            release_snapshots(pending.snapshots);
        } else {
            let stopping = || stop.is_cancelled() || to_apply.is_closed();
            let logged = commit(&mut writer, &shared, pending, stopping).await;
            if logged.is_some() && completes.is_none() {
                shared.metrics.urgent.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(logged) = logged
                && to_apply.send(logged).await.is_err()
            {
                tracing::warn!(
                    "the game state applier stopped; logged batches wait for the next start"
                );
            }
        }
        if let Some(t) = completes {
            shared.slot.done.fetch_max(t, Ordering::AcqRel);
        }
    }
}

/// Logs the batch durably, publishes its events and answers its commands; returns it
/// for the applier (`None` if it could not be logged while stopping: then nothing of it
/// was acknowledged).
async fn commit(
    writer: &mut store::game::Writer,
    shared: &Shared,
    pending: Pending,
    stopping: impl Fn() -> bool,
) -> Option<Logged> {
    let batch = store::game::Batch {
        sessions: pending.sessions.into_values().collect(),
        events: pending.events,
        trim: pending.trim,
    };
    let mut release = Some((pending.deliveries, pending.acks, pending.ended));
    let mut grouped = None;
    let mut retry = Retry::new(shared, "logging a game state batch", None);
    let id = loop {
        let started = std::time::Instant::now();
        // The batch is grouped per session while the database works on the log row (the
        // log future is polled first: it sends the row, then waits): nothing in the
        // grouping depends on the commit, so it is off the acknowledgement path.
        let (logged, ()) = tokio::join!(writer.log(&batch), async {
            if let Some((deliveries, acks, ended)) = release.take() {
                grouped = Some(group(shared, deliveries, acks, ended, &batch.sessions));
            }
        });
        match logged {
            Ok(id) => {
                shared.metrics.commit.observe(started.elapsed());
                break id;
            }
            // Nothing is acknowledged: the answers are dropped unsent.
            Err(e) => {
                if retry.give_up(e, stopping()).await {
                    return None;
                }
            }
        }
    };
    let logged_at = std::time::Instant::now();
    // Committed: per session, its events are published (in order) and its
    // acknowledgements released, so a forwarder woken by the events usually finds the
    // answer ready too and sends both in one write.
    let (mut out, order) = grouped.unwrap_or_default();
    // Until batch `id` is applied, these sessions' rows are behind: keep them in memory.
    for s in out.values().filter_map(|o| o.live.as_ref()) {
        s.last_batch.fetch_max(id, Ordering::AcqRel);
    }
    for o in order.iter().filter_map(|id| out.remove(id)) {
        if (!o.events.is_empty() || o.ended)
            && let Some(s) = &o.live
        {
            s.publish(o.events, o.ended, o.final_view);
        }
        for (reply, outcome) in o.acks {
            let _ = reply.send(outcome);
        }
    }
    release_snapshots(pending.snapshots);
    if let Some(at) = pending.handed_at {
        shared.metrics.handoff_to_ack.observe(at.elapsed());
    }
    for id in &pending.unload_refused {
        shared.finish_unload(id, false);
    }
    Some(Logged {
        id,
        batch,
        unloaded: pending.unloaded,
        logged_at,
    })
}

/// Sends snapshot answers (their batch, and every one before it, is published).
fn release_snapshots(
    snapshots: Vec<(
        oneshot::Sender<crate::inbound::SnapshotReply>,
        crate::inbound::SnapshotReply,
    )>,
) {
    for (reply, snapshot) in snapshots {
        let _ = reply.send(snapshot);
    }
}

/// What a batch releases once committed, per session (with its live session, looked up
/// under one lock), and the sessions in first-seen order.
type Grouped = (HashMap<Uuid, Outgoing>, Vec<Uuid>);

fn group(
    shared: &Shared,
    deliveries: Vec<(Uuid, Arc<crate::Delivered>)>,
    acks: Vec<(
        Uuid,
        oneshot::Sender<crate::CommandOutcome>,
        crate::CommandOutcome,
    )>,
    ended: Vec<Uuid>,
    sessions: &[store::game::SessionWrite],
) -> Grouped {
    let mut out: HashMap<Uuid, Outgoing> = HashMap::with_capacity(sessions.len());
    let mut order: Vec<Uuid> = Vec::with_capacity(sessions.len());
    let live = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
    for (id, d) in deliveries {
        outgoing(&mut out, &mut order, &live, id).events.push(d);
    }
    for (id, reply, outcome) in acks {
        outgoing(&mut out, &mut order, &live, id)
            .acks
            .push((reply, outcome));
    }
    for id in ended {
        outgoing(&mut out, &mut order, &live, id).ended = true;
    }
    for w in sessions {
        let o = outgoing(&mut out, &mut order, &live, w.id);
        if w.final_view.is_some() {
            o.final_view.clone_from(&w.final_view);
        }
    }
    (out, order)
}

/// `id`'s entry in `out` (first seen: appended to `order`, with its live session from
/// `live`).
fn outgoing<'a>(
    out: &'a mut HashMap<Uuid, Outgoing>,
    order: &mut Vec<Uuid>,
    live: &HashMap<Uuid, Arc<crate::LiveSession>>,
    id: Uuid,
) -> &'a mut Outgoing {
    out.entry(id).or_insert_with(|| {
        order.push(id);
        Outgoing {
            live: live.get(&id).cloned(),
            events: Vec::new(),
            acks: Vec::new(),
            ended: false,
            final_view: None,
        }
    })
}

/// The failure path of a batch write retried until it succeeds: each failure is counted
/// and logged, then waited out (20 ms, doubling up to 2 s); once the server is stopping,
/// the fifth failure gives up.
struct Retry<'a> {
    shared: &'a Shared,
    what: &'static str,
    /// The log row of the batch, once it has one.
    batch: Option<i64>,
    delay: Duration,
    attempts: u32,
}

impl<'a> Retry<'a> {
    fn new(shared: &'a Shared, what: &'static str, batch: Option<i64>) -> Self {
        Retry {
            shared,
            what,
            batch,
            delay: Duration::from_millis(20),
            attempts: 0,
        }
    }

    /// After a failed attempt: `true` to give up, else after the back-off.
    async fn give_up(&mut self, error: store::StoreError, stopping: bool) -> bool {
        self.attempts += 1;
        self.shared.metrics.retries.fetch_add(1, Ordering::Relaxed);
        let (what, attempts) = (self.what, self.attempts);
        tracing::error!(error = %error, attempts, batch = ?self.batch, "{what} failed; retrying");
        if stopping && attempts >= 5 {
            tracing::error!("{what}: giving up while stopping");
            return true;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(2));
        false
    }
}

/// Applies logged batches in order, each in one statement that also deletes its log row
/// (committed without waiting for the WAL flush: the log row is the durable copy), no
/// sooner than [`crate::GameConfig::apply_delay`] after the batch was logged, so that
/// the database's work on it does not compete with the delivery of its events. A
/// failure is retried; when stopping, a batch still failing is left for the replay at
/// the next start.
async fn apply(
    mut writer: store::game::Writer,
    mut logged: mpsc::Receiver<Logged>,
    shared: Arc<Shared>,
    stop: CancelFlag,
) {
    while let Some(Logged {
        id,
        batch,
        unloaded,
        logged_at,
    }) = logged.recv().await
    {
        // Out of the way of the delivery that follows the commit (unless stopping).
        if !stop.is_cancelled() {
            tokio::time::sleep_until((logged_at + shared.cfg.apply_delay).into()).await;
        }
        let mut retry = Retry::new(&shared, "applying a logged game batch", Some(id));
        loop {
            let started = std::time::Instant::now();
            match writer.apply(id, &batch).await {
                Ok(()) => {
                    shared.metrics.apply.observe(started.elapsed());
                    break;
                }
                // Left in the log: the next start replays it and those after it.
                Err(e) => {
                    if retry.give_up(e, stop.is_cancelled()).await {
                        return;
                    }
                }
            }
        }
        shared.applied_through.fetch_max(id, Ordering::AcqRel);
        // Their last save is in the tables: forget them (a later join reloads it).
        for session in &unloaded {
            shared.finish_unload(session, true);
        }
        if !unloaded.is_empty() {
            tracing::debug!(
                sessions = unloaded.len(),
                "idle sessions saved and unloaded"
            );
        }
    }
}
