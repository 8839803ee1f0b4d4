//! The persister: takes everything the tick handed over (one or more ticks), writes
//! it in one transaction, then publishes the events and releases the acknowledgements.
//! Next to it runs the sweeper, which evicts ended and idle sessions from memory.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util_free::CancelFlag;

use std::collections::{HashMap, HashSet};

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
    task: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PersisterTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersisterTask").finish_non_exhaustive()
    }
}

impl PersisterTask {
    /// Writes what is pending, then stops.
    pub async fn stop(self) {
        self.stop.cancel();
        self.sweeper.abort();
        self.shared.slot.notify.notify_one();
        let _ = self.task.await;
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

    /// Spawns the persister and the sweeper on the current runtime.
    pub fn spawn(self) -> PersisterTask {
        let stop = CancelFlag::default();
        let shared = Arc::clone(&self.shared);
        let writer = store::game::Writer::new(&self.pool);
        // The durable path gets a thread (and runtime) of its own: with the QUIC tasks
        // busy on the shared workers, a commit's reply would otherwise wait for a worker
        // before the tick's acknowledgements go out.
        let run = run(writer, Arc::clone(&self.shared), stop.clone());
        let task = tokio::task::spawn_blocking(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("pixsim-persister")
                .build()
            {
                Ok(rt) => rt.block_on(run),
                Err(e) => {
                    tracing::warn!(error = %e, "no runtime of its own for the persister; sharing the server's");
                    tokio::runtime::Handle::current().block_on(run)
                }
            }
        });
        let sweeper = tokio::spawn(sweep(Arc::clone(&self.shared), self.to_tick, stop.clone()));
        PersisterTask {
            stop,
            shared,
            task,
            sweeper,
        }
    }
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

async fn run(mut writer: store::game::Writer, shared: Arc<Shared>, stop: CancelFlag) {
    loop {
        let (pending, ticks) = {
            let mut p = shared.slot.lock();
            let ticks = shared.slot.pushed.load(Ordering::Acquire);
            (std::mem::take(&mut *p), ticks)
        };
        if pending.is_empty() {
            shared.slot.done.fetch_max(ticks, Ordering::AcqRel);
            if stop.is_cancelled() {
                return;
            }
            let notified = shared.slot.notify.notified();
            // Re-check after registering, so a notify between take and here is not lost.
            if !shared.slot.lock().is_empty() || stop.is_cancelled() {
                continue;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
            continue;
        }
        commit(&mut writer, &shared, pending, &stop).await;
        shared.slot.done.fetch_max(ticks, Ordering::AcqRel);
    }
}

async fn commit(
    writer: &mut store::game::Writer,
    shared: &Shared,
    pending: Pending,
    stop: &CancelFlag,
) {
    let batch = store::game::Batch {
        sessions: pending.sessions.into_values().collect(),
        events: pending.events,
        trim: pending.trim,
    };
    let mut delay = Duration::from_millis(20);
    let mut attempts = 0u32;
    loop {
        let started = std::time::Instant::now();
        match writer.write_batch(&batch).await {
            Ok(()) => {
                shared.metrics.commit.observe(started.elapsed());
                break;
            }
            Err(e) => {
                attempts += 1;
                shared.metrics.retries.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, attempts, events = batch.events.len(), "game state commit failed; retrying");
                if stop.is_cancelled() && attempts >= 5 {
                    tracing::error!("giving up on the final game state commit");
                    return; // Nothing is acknowledged: acks are dropped unsent.
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    // Committed: per session, publish its events (in order), then release its
    // acknowledgements, so a forwarder woken by the events usually finds the answer
    // ready too and sends both in one write.
    type Ack = (
        oneshot::Sender<crate::CommandOutcome>,
        crate::CommandOutcome,
    );
    let mut by_session: Vec<(Uuid, Vec<Arc<crate::Delivered>>, Vec<Ack>)> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    let mut entry = |id: Uuid| {
        *index.entry(id).or_insert_with(|| {
            by_session.push((id, Vec::new(), Vec::new()));
            by_session.len() - 1
        })
    };
    let slots: Vec<(usize, Arc<crate::Delivered>)> = pending
        .deliveries
        .into_iter()
        .map(|(id, d)| (entry(id), d))
        .collect();
    let acks: Vec<(usize, Ack)> = pending
        .acks
        .into_iter()
        .map(|(id, reply, outcome)| (entry(id), (reply, outcome)))
        .collect();
    let ended: HashSet<Uuid> = pending.ended.into_iter().collect();
    for id in &ended {
        entry(*id);
    }
    for (i, d) in slots {
        if let Some(e) = by_session.get_mut(i) {
            e.1.push(d);
        }
    }
    for (i, ack) in acks {
        if let Some(e) = by_session.get_mut(i) {
            e.2.push(ack);
        }
    }
    for (id, evs, acks) in by_session {
        let is_ended = ended.contains(&id);
        if (!evs.is_empty() || is_ended)
            && let Some(s) = shared.session(&id)
        {
            s.publish(evs, is_ended);
        }
        for (reply, outcome) in acks {
            let _ = reply.send(outcome);
        }
    }
    if let Some(at) = pending.handed_at {
        shared.metrics.handoff_to_ack.observe(at.elapsed());
    }
    // Their last save is committed: forget them (a later join reloads it).
    for id in &pending.unloaded {
        shared.finish_unload(id, true);
    }
    for id in &pending.unload_refused {
        shared.finish_unload(id, false);
    }
    if !pending.unloaded.is_empty() {
        tracing::debug!(
            sessions = pending.unloaded.len(),
            "idle sessions saved and unloaded"
        );
    }
}
