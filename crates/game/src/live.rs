//! The registry's entries: a [`LiveSession`] (a session loaded in this process, with
//! its committed events in the resend window), its readers ([`Subscription`]), the
//! committed events themselves ([`Delivered`]) and which connection plays it
//! ([`Attachment`]: the newer join takes over, whatever its transport).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use protocol::v2::GameEvent;
use tokio::sync::watch;
use uuid::Uuid;

/// One committed event. It is kept encoded: the bytes the batch log holds are the bytes
/// a QUIC frame carries ([`protocol::v2::EncodedEventRef`]), so no forwarder encodes it
/// again, and a retained event costs its encoded size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub seq: u64,
    pub at_ms: i64,
    pub(crate) encoded: bytes::Bytes,
}

impl Delivered {
    /// The event, postcard-encoded.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// The event, decoded.
    pub fn event(&self) -> Result<GameEvent, postcard::Error> {
        postcard::from_bytes(&self.encoded)
    }
}

pub(crate) struct LogState {
    events: VecDeque<Arc<Delivered>>,
    /// Seq of the next event (all below are committed).
    next_seq: u64,
    ended: bool,
    /// The final progression, published with the end (JSON text of a
    /// `protocol::v2::ProgressionView`, as `game_sessions.final_view` stores it).
    final_view: Option<String>,
}

/// Milliseconds since the first call in this process (a monotonic clock for idle
/// times).
fn mono_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A session loaded in this process: owner and committed events.
pub struct LiveSession {
    pub id: Uuid,
    pub owner: Uuid,
    pub scene: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    log: Mutex<LogState>,
    committed: watch::Sender<u64>,
    window: usize,
    /// Live subscriptions (QUIC forwarders, event streams, REST waits).
    pub(crate) subscribers: AtomicUsize,
    /// Last activity ([`mono_ms`]): join, command, committed event.
    last_active: AtomicU64,
    /// Being unloaded by the sweeper: joins wait, commands are refused as busy.
    pub(crate) evicting: AtomicBool,
    /// The last logged batch that wrote this session: until it is applied, the stored
    /// rows are behind and the session stays in memory.
    pub(crate) last_batch: AtomicI64,
    /// Who plays the session: `(attachment number, connection)` of the latest join.
    holder: watch::Sender<(u64, u64)>,
}

impl std::fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSession")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl LiveSession {
    // Private constructor mirroring the row's columns one to one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: Uuid,
        owner: Uuid,
        scene: Option<String>,
        created_at: i64,
        next_seq: u64,
        ended: bool,
        events: VecDeque<Arc<Delivered>>,
        window: usize,
    ) -> Self {
        LiveSession {
            id,
            owner,
            scene,
            created_at_ms: created_at,
            log: Mutex::new(LogState {
                events,
                next_seq,
                ended,
                final_view: None,
            }),
            committed: watch::Sender::new(next_seq),
            window,
            subscribers: AtomicUsize::new(0),
            last_active: AtomicU64::new(mono_ms()),
            evicting: AtomicBool::new(false),
            last_batch: AtomicI64::new(0),
            holder: watch::Sender::new((0, 0)),
        }
    }

    /// Makes `connection` (an id unique among the live connections of every transport)
    /// the one that plays the session: the newer join takes over, and the previous
    /// holder's [`Attachment::superseded`] resolves (unless it is the same connection
    /// joining again).
    pub fn take_over(&self, connection: u64) -> Attachment {
        let mut number = 0;
        self.holder.send_modify(|h| {
            h.0 += 1;
            h.1 = connection;
            number = h.0;
        });
        Attachment {
            number,
            connection,
            rx: self.holder.subscribe(),
        }
    }

    /// Whether a resend from `from` is possible: no retained event older than it was
    /// dropped from the window.
    pub fn retains(&self, from: u64) -> bool {
        let log = self.lock();
        let oldest = log.events.front().map(|e| e.seq).unwrap_or(log.next_seq);
        from >= oldest
    }

    pub(crate) fn touch(&self) {
        self.last_active.fetch_max(mono_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the last join, command or committed event.
    pub(crate) fn idle_ms(&self) -> u64 {
        mono_ms().saturating_sub(self.last_active.load(Ordering::Relaxed))
    }

    /// True while the sweeper is unloading the session.
    pub fn is_evicting(&self) -> bool {
        self.evicting.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sequence number of the next event (every event below it is committed).
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// True once the end of the session is committed.
    pub fn ended(&self) -> bool {
        self.lock().ended
    }

    /// The final progression published with the end (JSON text); `None` while it runs,
    /// and when it was loaded ended (the stored row has it).
    pub(crate) fn final_view(&self) -> Option<String> {
        self.lock().final_view.clone()
    }

    /// Retained committed events with `seq >= from` (at most the resend window).
    pub fn events_from(&self, from: u64) -> Result<Vec<Arc<Delivered>>, Gap> {
        let log = self.lock();
        let oldest = log.events.front().map(|e| e.seq).unwrap_or(log.next_seq);
        if from < oldest {
            return Err(Gap { from, oldest });
        }
        // Ascending by seq: find the first wanted one rather than scanning the window.
        let first = log.events.partition_point(|e| e.seq < from);
        Ok(log.events.range(first..).cloned().collect())
    }

    /// Publishes committed events, and the end with its final view (called by the
    /// persister only): a reader that sees the end sees the view.
    pub(crate) fn publish(
        &self,
        events: Vec<Arc<Delivered>>,
        ended: bool,
        final_view: Option<String>,
    ) {
        let next = {
            let mut log = self.lock();
            for e in events {
                if e.seq < log.next_seq {
                    continue; // already published (never expected)
                }
                log.next_seq = e.seq + 1;
                log.events.push_back(e);
            }
            while log.events.len() > self.window {
                log.events.pop_front();
            }
            log.ended |= ended;
            if final_view.is_some() {
                log.final_view = final_view;
            }
            log.next_seq
        };
        self.touch();
        self.committed.send_replace(next);
    }

    /// A reader of the committed events from `from` on. While it lives, the session
    /// counts as attached and is never unloaded for idleness.
    pub fn subscribe(self: &Arc<Self>, from: u64) -> Subscription {
        self.subscribers.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Subscription {
            session: Arc::clone(self),
            next: from,
            rx: self.committed.subscribe(),
        }
    }
}

/// One connection's hold on a session ([`LiveSession::take_over`]).
#[derive(Debug)]
pub struct Attachment {
    number: u64,
    connection: u64,
    rx: watch::Receiver<(u64, u64)>,
}

impl Attachment {
    /// Whether another connection has joined the session since.
    pub fn is_superseded(&self) -> bool {
        let (number, connection) = *self.rx.borrow();
        number != self.number && connection != self.connection
    }

    /// Resolves once another connection joins the session (never, if none does).
    pub async fn superseded(&mut self) {
        let (me, conn) = (self.number, self.connection);
        if self
            .rx
            .wait_for(|(number, connection)| *number != me && *connection != conn)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

/// The client asked for events older than the resend window.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("events from {from} are no longer retained (oldest is {oldest})")]
pub struct Gap {
    pub from: u64,
    pub oldest: u64,
}

/// Committed events of one session, in order, without loss or duplicates.
pub struct Subscription {
    session: Arc<LiveSession>,
    next: u64,
    rx: watch::Receiver<u64>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("session", &self.session.id)
            .field("next", &self.next)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.session.touch();
        self.session.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Subscription {
    /// Events available now (possibly none).
    pub fn available(&mut self) -> Result<Vec<Arc<Delivered>>, Gap> {
        self.rx.borrow_and_update();
        let evs = self.session.events_from(self.next)?;
        if let Some(last) = evs.last() {
            self.next = last.seq + 1;
        }
        Ok(evs)
    }

    /// Waits for new committed events and returns them; `Ok(empty)` once the session
    /// has ended and everything was read.
    pub async fn next_batch(&mut self) -> Result<Vec<Arc<Delivered>>, Gap> {
        loop {
            let evs = self.available()?;
            if !evs.is_empty() {
                return Ok(evs);
            }
            if self.session.ended() {
                return Ok(Vec::new());
            }
            if self.rx.changed().await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// Resolves when new events may be available.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The seq the next returned event will have.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Continues from `from` instead (the next events returned start there).
    pub fn seek(&mut self, from: u64) {
        self.next = from;
    }

    /// The session.
    pub fn session(&self) -> &Arc<LiveSession> {
        &self.session
    }
}
