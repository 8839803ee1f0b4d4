//! Game sessions between the network and the simulation tick.
//!
//! ```text
//!  QUIC / REST ──GameHandle──► inbound (bounded mpsc) ──PreUpdate──► sim::Inbox
//!                                                                      │ FixedUpdate
//!  clients ◄── forwarders ◄── session logs ◄── persister ◄── slot ◄──PostUpdate (events + saves)
//!                                   (after COMMIT)        (1 tx per batch)
//! ```
//!
//! * **Inbound**: [`GameHandle`] sends starts, resumes and commands over one bounded
//!   channel; a full channel or a persister that lags is reported as *busy*, never
//!   queued without bound. The tick takes at most one command per session per tick, so
//!   the events of that session in that tick are the command's answer.
//! * **Outbound**: in `PostUpdate` the bridge drains `sim::Outbox`, numbers events per
//!   session (its own dense sequence, stable across restarts), builds a save of every
//!   session that changed and appends everything to the pending batch (a mutex-guarded
//!   slot; the tick never awaits). Sessions whose command waited longest
//!   ([`GameConfig::urgent_wait`]) are handed over first, as a batch of their own,
//!   while the tick builds the rest. The persister takes what waits (that urgent part
//!   alone, else one or more ticks: group commit) and writes it in **one
//!   transaction**, in hand-over order. Only after `COMMIT`
//!   are the events published to the sessions' in-memory logs (bounded resend window)
//!   and the commands' acknowledgements released.
//! * **Reload**: a session not in memory is loaded on join from its last committed
//!   save (or restarted from its seed when it never committed a tick), with the
//!   retained events for resend.
//! * **Eviction**: a sweeper drops ended sessions from memory
//!   [`GameConfig::evict_ended_after`] after their end was committed, and unloads
//!   sessions nobody follows (no event subscription) that were idle for
//!   [`GameConfig::evict_idle_after`]: the tick writes a fresh save and despawns the
//!   entity, and only once that save is committed is the session forgotten (a join
//!   meanwhile waits, then reloads it from the database).
//! * **Clock**: the bridge publishes the simulation's world clock after every tick;
//!   [`GameHandle::clock`] extrapolates it to "now" for time-sync replies.
//! * **Content**: [`ContentCell`] holds the content currently loaded; the narrative
//!   reload swaps it in the same place the simulation gets it from, so listing scenes
//!   and creating sessions follow hot reloads.

mod bridge;
pub mod events;
mod persist;
pub mod quic_handler;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use domain::narrative::{Content, SessionSave};
use protocol::v1::{GameCommand, GameEvent};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

pub use bridge::{GamePlugin, GameSystems};
pub use quic_handler::GameConnectionHandler;

/// Tunables.
#[derive(Clone, Debug)]
pub struct GameConfig {
    /// Events kept per session for resend after a reconnect.
    pub resend_window: usize,
    /// Inbound channel capacity (commands between two ticks, all sessions).
    pub inbound_capacity: usize,
    /// Commands queued per session in the tick (beyond: busy).
    pub per_session_queue: usize,
    /// Ticks waiting for the persister beyond which new commands are refused (busy).
    pub max_pending_ticks: u64,
    /// Commands awaiting their durable answer on one QUIC connection; more are
    /// answered `busy` at once.
    pub max_inflight: usize,
    /// How long a connection's event forwarder waits for room in the connection's
    /// send queue before the client counts as a slow consumer and is closed.
    pub send_wait: Duration,
    /// Ended sessions stay in memory this long after their end was committed.
    pub evict_ended_after: Duration,
    /// Sessions with no subscriber (no connection or event stream attached) and no
    /// activity for this long are saved and unloaded from the tick and from memory.
    pub evict_idle_after: Duration,
    /// How long after a batch is logged (and its events published) the applier waits
    /// before writing it into the session and event tables. The write costs the
    /// database a few milliseconds of CPU; made at once, it competes with the
    /// delivery of the events that follows the commit. A backlog is applied without
    /// waiting. Set it to about a third of the tick period.
    pub apply_delay: Duration,
    /// Sessions whose command waited at least this long for its tick are handed to the
    /// persister first, in a smaller batch of their own, committed while the tick
    /// builds the rest: the commands that waited longest, the closest to the latency
    /// bound, are answered sooner; the others, with time to spare, a commit later.
    /// `None`: one batch per tick. Set it to about four fifths of the tick period.
    pub urgent_wait: Option<Duration>,
    /// Sessions one user may have live (in memory and not ended) at once; creating or
    /// reloading one more is refused with [`GameError::SessionLimit`].
    pub max_live_sessions_per_user: usize,
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig {
            resend_window: 1000,
            inbound_capacity: 16 * 1024,
            per_session_queue: 8,
            max_pending_ticks: 20,
            max_inflight: 32,
            send_wait: Duration::from_secs(2),
            evict_ended_after: Duration::from_secs(60),
            evict_idle_after: Duration::from_secs(600),
            apply_delay: Duration::from_millis(15),
            urgent_wait: Some(Duration::from_millis(40)),
            max_live_sessions_per_user: 16,
        }
    }
}

impl GameConfig {
    /// How often the sweeper looks for sessions to evict.
    fn sweep_interval(&self) -> Duration {
        (self.evict_ended_after.min(self.evict_idle_after) / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(5))
    }
}

/// The narrative content currently loaded, shared by the game handle (scene lists,
/// session creation) and the content reload. Cheap to clone.
#[derive(Clone)]
pub struct ContentCell(Arc<RwLock<Arc<Content>>>);

impl std::fmt::Debug for ContentCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ContentCell")
            .field(&self.get().version)
            .finish()
    }
}

impl ContentCell {
    /// A cell holding `content`.
    pub fn new(content: Arc<Content>) -> Self {
        ContentCell(Arc::new(RwLock::new(content)))
    }

    /// The content loaded now.
    pub fn get(&self) -> Arc<Content> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the content (after a reload).
    pub fn set(&self, content: Arc<Content>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = content;
    }
}

/// The world clock as published by the tick after each tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClockSample {
    /// World time after the tick's clock advance (ms).
    pub now_ms: i64,
    /// The simulation's tick number.
    pub tick: u64,
    /// When the tick began (its `PreUpdate`).
    pub started: Instant,
    /// World ms per 1,000 real ms; 0 while paused or turn-based.
    pub rate_permille: u32,
    /// World ms one tick adds at scale 1.
    pub tick_ms: i64,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// No such session, or not the caller's (indistinguishable on purpose).
    #[error("no such session")]
    NotFound,
    /// Unknown or invalid scene/world.
    #[error("{0}")]
    Invalid(String),
    /// The session has ended.
    #[error("the session has ended")]
    Ended,
    /// Too much work queued; retry later.
    #[error("the server is busy, retry later")]
    Busy,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The user has [`GameConfig::max_live_sessions_per_user`] live sessions already.
    #[error("too many live game sessions (at most {max}); end one or leave one idle first")]
    SessionLimit { max: usize },
    /// A database failure.
    #[error("storage: {0}")]
    Store(#[from] store::StoreError),
    /// Stored data cannot be read.
    #[error("stored session is corrupt: {0}")]
    Corrupt(String),
}

impl GameError {
    /// Code used in `Rejected` and REST errors.
    pub fn code(&self) -> &'static str {
        match self {
            GameError::NotFound => "not_found",
            GameError::Invalid(_) => "invalid_request",
            GameError::Ended => "session_ended",
            GameError::Busy => "busy",
            GameError::ShuttingDown => "shutting_down",
            GameError::SessionLimit { .. } => "session_limit",
            GameError::Store(_) | GameError::Corrupt(_) => "internal",
        }
    }
}

/// The answer to a command, released after its effect is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Applied; its events end at `through_seq` (none when it produced no event).
    Accepted { through_seq: Option<u64> },
    /// Refused (nothing changed).
    Rejected { code: String, message: String },
}

/// One committed event. It is kept encoded: the bytes the batch log holds are the bytes
/// a QUIC frame carries ([`protocol::v1::EncodedEventRef`]), so no forwarder encodes it
/// again, and a retained event costs its encoded size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub seq: u64,
    pub at_ms: i64,
    encoded: bytes::Bytes,
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

/// Inbound messages to the tick.
pub(crate) enum Inbound {
    Start {
        session: Uuid,
        scene: Option<String>,
        seed: u64,
        next_seq: u64,
    },
    Resume {
        session: Uuid,
        save: Box<SessionSave>,
        next_seq: u64,
    },
    Command {
        session: Uuid,
        command: sim::Command,
        reply: oneshot::Sender<CommandOutcome>,
        /// When the command was received (the tick answers the longest-waiting first).
        received: Instant,
    },
    /// Save the session and unload it from the tick (it is idle and detached).
    Unload { session: Uuid },
    /// Generated scene media is ready (world input).
    MediaReady(sim::MediaReady),
}

/// Scene media a session was shown as a generation spec: the simulation has no asset for
/// it yet. Sent once per node entry; the receiver (the server's media task) deduplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaWanted {
    /// Scene of the node.
    pub scene: String,
    /// Node.
    pub node: String,
    /// Spec: operation.
    pub operation: String,
    /// Spec: prompt.
    pub prompt: String,
    /// Spec: parameters (canonical JSON text).
    pub params: String,
}

/// Pending media requests beyond which new ones are dropped (the next entry asks again).
const MEDIA_QUEUE: usize = 256;

struct LogState {
    events: VecDeque<Arc<Delivered>>,
    /// Seq of the next event (all below are committed).
    next_seq: u64,
    ended: bool,
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
    subscribers: AtomicUsize,
    /// Last activity ([`mono_ms`]): join, command, committed event.
    last_active: AtomicU64,
    /// Being unloaded by the sweeper: joins wait, commands are refused as busy.
    evicting: AtomicBool,
    /// The last logged batch that wrote this session: until it is applied, the stored
    /// rows are behind and the session stays in memory.
    pub(crate) last_batch: AtomicI64,
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
    fn new(
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
            }),
            committed: watch::Sender::new(next_seq),
            window,
            subscribers: AtomicUsize::new(0),
            last_active: AtomicU64::new(mono_ms()),
            evicting: AtomicBool::new(false),
            last_batch: AtomicI64::new(0),
        }
    }

    fn touch(&self) {
        self.last_active.fetch_max(mono_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the last join, command or committed event.
    fn idle_ms(&self) -> u64 {
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

    /// Publishes committed events (called by the persister only).
    fn publish(&self, events: Vec<Arc<Delivered>>, ended: bool) {
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

    /// The session.
    pub fn session(&self) -> &Arc<LiveSession> {
        &self.session
    }
}

/// What the persister still has to write, filled by the tick.
#[derive(Default)]
pub(crate) struct Pending {
    pub sessions: HashMap<Uuid, store::game::SessionWrite>,
    pub events: Vec<store::game::EventWrite>,
    pub trim: Vec<(Uuid, i64)>,
    pub deliveries: Vec<(Uuid, Arc<Delivered>)>,
    pub ended: Vec<Uuid>,
    /// Answers to commands, by session.
    pub acks: Vec<(Uuid, oneshot::Sender<CommandOutcome>, CommandOutcome)>,
    /// Sessions the tick unloaded (their last save is in `sessions`).
    pub unloaded: Vec<Uuid>,
    /// Sessions the tick refused to unload (they were busy).
    pub unload_refused: Vec<Uuid>,
    /// When the oldest hand-over in here was made.
    pub handed_at: Option<std::time::Instant>,
    /// The ticks handed over in all (`Slot::pushed`) once the last tick in here was
    /// complete: committed, this is how far `Slot::done` may go. `None` for a tick's
    /// urgent part, which completes no tick.
    pub completes: Option<u64>,
}

impl Pending {
    /// Appends `later` (handed over after everything in here).
    fn merge(&mut self, mut later: Pending) {
        for (id, w) in later.sessions {
            match self.sessions.get_mut(&id) {
                Some(old) => {
                    if w.save.is_some() {
                        old.save = w.save;
                    }
                    old.ended |= w.ended;
                    old.next_seq = old.next_seq.max(w.next_seq);
                }
                None => {
                    self.sessions.insert(id, w);
                }
            }
        }
        self.events.append(&mut later.events);
        self.trim.append(&mut later.trim);
        self.deliveries.append(&mut later.deliveries);
        self.ended.append(&mut later.ended);
        self.acks.append(&mut later.acks);
        self.unloaded.append(&mut later.unloaded);
        self.unload_refused.append(&mut later.unload_refused);
        self.handed_at = self.handed_at.or(later.handed_at);
        self.completes = self.completes.max(later.completes);
    }

    fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.events.is_empty()
            && self.acks.is_empty()
            && self.trim.is_empty()
            && self.unloaded.is_empty()
            && self.unload_refused.is_empty()
    }
}

/// What waits for the persister, in hand-over order: the urgent part of a tick, kept
/// apart while the persister has nothing older to write, then everything handed over
/// after it, merged (group commit).
#[derive(Default)]
pub(crate) struct Waiting {
    urgent: Option<Pending>,
    rest: Pending,
}

impl Waiting {
    /// Takes the oldest hand-over: the urgent one alone, else all the rest.
    pub(crate) fn take(&mut self) -> Option<Pending> {
        self.urgent.take().or_else(|| {
            self.rest
                .handed_at
                .is_some()
                .then(|| std::mem::take(&mut self.rest))
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.urgent.is_none() && self.rest.handed_at.is_none()
    }

    /// Queues a hand-over of the tick. `urgent`: the tick's first part (its sessions'
    /// commands waited longest); it stays a batch of its own unless something older
    /// than it is waiting, after which it must be written.
    pub(crate) fn hand_over(&mut self, mut pending: Pending, urgent: bool) {
        let now = std::time::Instant::now();
        let into = if urgent && self.rest.handed_at.is_none() {
            match &mut self.urgent {
                Some(u) => u,
                None => {
                    pending.handed_at = Some(now);
                    self.urgent = Some(pending);
                    return;
                }
            }
        } else {
            &mut self.rest
        };
        // Empty (the usual case; every hand-over sets `handed_at`): this one moves in
        // whole, with no second copy of its vectors.
        if into.handed_at.is_none() {
            pending.handed_at = Some(now);
            *into = pending;
        } else {
            into.merge(pending);
        }
    }
}

/// Hand-over point between the tick (producer) and the persister (consumer).
pub(crate) struct Slot {
    pending: Mutex<Waiting>,
    notify: tokio::sync::Notify,
    /// Ticks handed over / committed and published.
    pushed: AtomicU64,
    done: AtomicU64,
}

impl Slot {
    fn new() -> Self {
        Slot {
            pending: Mutex::new(Waiting::default()),
            notify: tokio::sync::Notify::new(),
            pushed: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn backlog(&self) -> u64 {
        self.pushed
            .load(Ordering::Acquire)
            .saturating_sub(self.done.load(Ordering::Acquire))
    }
}

pub(crate) struct Shared {
    pub(crate) sessions: Mutex<HashMap<Uuid, Arc<LiveSession>>>,
    pub(crate) slot: Slot,
    pub(crate) cfg: GameConfig,
    /// The latest world clock (written once per tick; the tick never waits for it).
    pub(crate) clock: Mutex<Option<ClockSample>>,
    /// Signalled when an eviction finished (or was refused).
    pub(crate) evicted: tokio::sync::Notify,
    /// Sessions evicted since start (ended and idle).
    pub(crate) evictions: AtomicU64,
    /// Media requests from the tick (never waits: `try_send`).
    pub(crate) media_wanted: mpsc::Sender<MediaWanted>,
    /// Their receiver, until the server takes it.
    media_requests: Mutex<Option<mpsc::Receiver<MediaWanted>>>,
    pub(crate) metrics: DurabilityMetrics,
    /// Every logged batch up to this id is applied to the tables.
    pub(crate) applied_through: AtomicI64,
}

/// How long durability takes, for `/metrics`.
#[derive(Debug)]
pub(crate) struct DurabilityMetrics {
    /// One batch made durable in the batch log (the acknowledgement path).
    pub(crate) commit: tick::Histogram,
    /// One logged batch written into the session and event tables.
    pub(crate) apply: tick::Histogram,
    /// From the tick handing a batch over to its events published and its commands
    /// acknowledged (waiting for the writer, writing, publishing).
    pub(crate) handoff_to_ack: tick::Histogram,
    /// Batch writes (log or apply) that failed and were retried.
    pub(crate) retries: AtomicU64,
    /// Batches that held a tick's urgent part alone (see [`GameConfig::urgent_wait`]).
    pub(crate) urgent: AtomicU64,
}

/// Bounds, in seconds, of the durability histograms: fine below a tick period, where the
/// acknowledgement latency target lies.
const DURABILITY_BOUNDS: [f64; 18] = [
    0.000_25, 0.000_5, 0.001, 0.001_5, 0.002, 0.002_5, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01,
    0.015, 0.025, 0.05, 0.1, 0.25, 1.0,
];

impl Default for DurabilityMetrics {
    fn default() -> Self {
        DurabilityMetrics {
            commit: tick::Histogram::new(&DURABILITY_BOUNDS),
            apply: tick::Histogram::new(&DURABILITY_BOUNDS),
            handoff_to_ack: tick::Histogram::new(&DURABILITY_BOUNDS),
            retries: AtomicU64::new(0),
            urgent: AtomicU64::new(0),
        }
    }
}

impl Shared {
    fn session(&self, id: &Uuid) -> Option<Arc<LiveSession>> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// After the tick's unload of `id` is committed (or refused): forget the session
    /// (or keep it), and wake joins waiting on it.
    pub(crate) fn finish_unload(&self, id: &Uuid, unloaded: bool) {
        {
            let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = map.get(id) {
                if unloaded {
                    if s.is_evicting() {
                        map.remove(id);
                        self.evictions.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    s.evicting.store(false, Ordering::Release);
                    s.touch();
                }
            }
        }
        self.evicted.notify_waiters();
    }

    /// One sweep: drops ended sessions past their grace period and asks the tick to
    /// unload idle detached ones. Returns the sessions to unload.
    pub(crate) fn sweep(&self) -> Vec<Uuid> {
        let ended_ms = self.cfg.evict_ended_after.as_millis() as u64;
        let idle_ms = self.cfg.evict_idle_after.as_millis() as u64;
        let mut unload = Vec::new();
        let mut dropped = 0u64;
        let applied_through = self.applied_through.load(Ordering::Acquire);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, s| {
                if s.is_evicting() {
                    return true;
                }
                if s.ended() {
                    // `ended` is set only after the end was committed: every event of
                    // the session is durable. It leaves memory once its rows are applied
                    // too (a later join reads them). Subscribers keep their own `Arc`.
                    let applied = s.last_batch.load(Ordering::Acquire) <= applied_through;
                    let keep = s.idle_ms() < ended_ms || !applied;
                    if !keep {
                        dropped += 1;
                    }
                    return keep;
                }
                if s.subscribers.load(Ordering::Acquire) == 0 && s.idle_ms() >= idle_ms {
                    s.evicting.store(true, Ordering::Release);
                    unload.push(*id);
                }
                true
            });
        if dropped > 0 {
            self.evictions.fetch_add(dropped, Ordering::Relaxed);
            tracing::debug!(sessions = dropped, "ended sessions dropped from memory");
        }
        unload
    }
}

/// The game service shared by QUIC and REST. Cheap to clone.
#[derive(Clone)]
pub struct GameHandle {
    shared: Arc<Shared>,
    pool: PgPool,
    content: ContentCell,
    to_tick: mpsc::Sender<Inbound>,
    accepting: Arc<AtomicBool>,
    load_lock: Arc<tokio::sync::Mutex<()>>,
    /// Sessions being created or loaded per user, counted against their cap.
    reserved: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// A session counted against its user's cap while it is being created or loaded.
struct Reservation {
    reserved: Arc<Mutex<HashMap<Uuid, usize>>>,
    user: Uuid,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = r.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                r.remove(&self.user);
            }
        }
    }
}

impl std::fmt::Debug for GameHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GameHandle").finish_non_exhaustive()
    }
}

/// Everything [`GameHandle::new`] makes: the handle, the tick plugin and the persister.
pub struct Game {
    pub handle: GameHandle,
    pub plugin: GamePlugin,
    pub persister: persist::Persister,
}

impl std::fmt::Debug for Game {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Game").finish_non_exhaustive()
    }
}

pub use persist::{Persister, PersisterTask};

impl GameHandle {
    /// Creates the handle, the plugin to add to the tick app and the persister to spawn.
    // Returns the handle with its two companions, which only exist together.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(pool: PgPool, content: ContentCell, cfg: GameConfig) -> Game {
        let (tx, rx) = mpsc::channel(cfg.inbound_capacity.max(1));
        let (media_wanted, media_requests) = mpsc::channel(MEDIA_QUEUE);
        let shared = Arc::new(Shared {
            sessions: Mutex::new(HashMap::new()),
            slot: Slot::new(),
            cfg: cfg.clone(),
            clock: Mutex::new(None),
            evicted: tokio::sync::Notify::new(),
            evictions: AtomicU64::new(0),
            media_wanted,
            media_requests: Mutex::new(Some(media_requests)),
            metrics: DurabilityMetrics::default(),
            applied_through: AtomicI64::new(0),
        });
        let handle = GameHandle {
            shared: Arc::clone(&shared),
            pool: pool.clone(),
            content,
            to_tick: tx.clone(),
            accepting: Arc::new(AtomicBool::new(true)),
            load_lock: Arc::new(tokio::sync::Mutex::new(())),
            reserved: Arc::default(),
        };
        Game {
            handle,
            plugin: GamePlugin::new(rx, Arc::clone(&shared)),
            persister: persist::Persister::new(pool, shared, tx),
        }
    }

    /// The content loaded now (follows hot reloads).
    pub fn content(&self) -> Arc<Content> {
        self.content.get()
    }

    /// The shared content cell (the reload writes it).
    pub fn content_cell(&self) -> &ContentCell {
        &self.content
    }

    /// The tunables.
    pub fn config(&self) -> &GameConfig {
        &self.shared.cfg
    }

    /// The simulation's world time now: the last tick's world time plus the scaled
    /// real time since that tick began (at most one tick's worth, so a stalled tick
    /// is not run ahead of). `None` before the first tick.
    pub fn clock(&self) -> Option<quic::ClockReading> {
        let sample = (*self.shared.clock.lock().unwrap_or_else(|p| p.into_inner()))?;
        let elapsed = i64::try_from(sample.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let elapsed = elapsed.min(sample.tick_ms.saturating_mul(1000));
        let ahead = elapsed.saturating_mul(i64::from(sample.rate_permille)) / 1_000_000;
        Some(quic::ClockReading {
            world_time_ms: sample.now_ms.saturating_add(ahead),
            tick: sample.tick,
        })
    }

    /// Sessions dropped from memory since start (ended or idle).
    pub fn evictions(&self) -> u64 {
        self.shared.evictions.load(Ordering::Relaxed)
    }

    /// The durability figures in the Prometheus text format:
    /// `pixsim_game_commit_seconds`, `pixsim_game_apply_seconds`,
    /// `pixsim_game_handoff_to_ack_seconds` (histograms)
    /// `pixsim_game_commit_retries_total` and `pixsim_game_urgent_batches_total`.
    pub fn durability_metrics(&self) -> String {
        let m = &self.shared.metrics;
        let mut out = String::new();
        m.commit.snapshot().write_prometheus(
            &mut out,
            "pixsim_game_commit_seconds",
            "Durable write of one batch of game state (one tick or more) to the batch log.",
        );
        m.apply.snapshot().write_prometheus(
            &mut out,
            "pixsim_game_apply_seconds",
            "Write of one logged batch into the session and event tables.",
        );
        m.handoff_to_ack.snapshot().write_prometheus(
            &mut out,
            "pixsim_game_handoff_to_ack_seconds",
            "From a tick handing its state over to its events published and commands acknowledged.",
        );
        out.push_str(
            "# HELP pixsim_game_commit_retries_total Game state batch writes (log or apply) that failed and were retried.\n\
             # TYPE pixsim_game_commit_retries_total counter\n",
        );
        out.push_str(&format!(
            "pixsim_game_commit_retries_total {}\n",
            m.retries.load(Ordering::Relaxed)
        ));
        out.push_str(
            "# HELP pixsim_game_urgent_batches_total Batches logged ahead of the rest of their tick, holding the sessions whose command waited longest.\n\
             # TYPE pixsim_game_urgent_batches_total counter\n",
        );
        out.push_str(&format!(
            "pixsim_game_urgent_batches_total {}\n",
            m.urgent.load(Ordering::Relaxed)
        ));
        out
    }

    /// Refuses new sessions and commands from now on (shutdown, first step).
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    /// Waits until every tick handed over so far is committed and published.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let target = self.shared.slot.pushed.load(Ordering::Acquire);
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared.slot.done.load(Ordering::Acquire) < target {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            self.shared.slot.notify.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Messages (commands, joins, unloads) sent to the tick and not yet taken by it:
    /// while the loop is paused, a command counts here from its arrival until a step.
    pub fn inbound_queued(&self) -> usize {
        self.to_tick.max_capacity() - self.to_tick.capacity()
    }

    /// Sessions currently loaded in memory.
    pub fn loaded_sessions(&self) -> usize {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Counts one more live session for `user` until the reservation is dropped (once
    /// the session is in memory, where it counts itself), or refuses it when the user
    /// is at the cap. Live: in memory and not ended.
    fn reserve_session(&self, user: Uuid) -> Result<Reservation, GameError> {
        let max = self.shared.cfg.max_live_sessions_per_user.max(1);
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let pending = reserved.get(&user).copied().unwrap_or(0);
        // The map's lock is let go before a session's own lock is taken.
        let mine: Vec<Arc<LiveSession>> = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| s.owner == user)
            .cloned()
            .collect();
        let live = mine.iter().filter(|s| !s.ended()).count();
        if live + pending >= max {
            return Err(GameError::SessionLimit { max });
        }
        *reserved.entry(user).or_insert(0) += 1;
        Ok(Reservation {
            reserved: Arc::clone(&self.reserved),
            user,
        })
    }

    fn check_accepting(&self) -> Result<(), GameError> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(GameError::ShuttingDown);
        }
        if self.shared.slot.backlog() > self.shared.cfg.max_pending_ticks {
            return Err(GameError::Busy);
        }
        Ok(())
    }

    /// The stream of [`MediaWanted`] requests; `None` after the first call.
    pub fn take_media_requests(&self) -> Option<mpsc::Receiver<MediaWanted>> {
        self.shared
            .media_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Hands generated scene media to the simulation: sessions standing in a node with
    /// that spec get a `media_ready` event, later entries show the asset.
    pub fn media_ready(&self, ready: sim::MediaReady) -> Result<(), GameError> {
        self.send(Inbound::MediaReady(ready))
    }

    fn send(&self, msg: Inbound) -> Result<(), GameError> {
        self.to_tick.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => GameError::Busy,
            mpsc::error::TrySendError::Closed(_) => GameError::ShuttingDown,
        })
    }

    /// Creates a session for `user` at `scene` (the world's start scene when `None`).
    pub async fn create_session(
        &self,
        user: Uuid,
        scene: Option<String>,
        world: Option<String>,
    ) -> Result<Arc<LiveSession>, GameError> {
        self.check_accepting()?;
        if let Some(w) = world.as_deref()
            && w != "default"
        {
            return Err(GameError::Invalid(format!("unknown world '{w}'")));
        }
        let _reserved = self.reserve_session(user)?;
        if let Some(s) = scene.as_deref() {
            let content = self.content.get();
            if !content.scenes.contains_key(s) {
                return Err(GameError::Invalid(format!("unknown scene '{s}'")));
            }
            if content.world.locked_scenes.iter().any(|l| l == s) {
                return Err(GameError::Invalid(format!("scene '{s}' is locked")));
            }
        }
        let id = Uuid::now_v7();
        let seed: u64 = rand::random();
        let row = store::game::create(
            &self.pool,
            id,
            user,
            "default",
            scene.as_deref(),
            seed as i64,
        )
        .await?;
        let live = Arc::new(LiveSession::new(
            id,
            user,
            row.scene.clone(),
            row.created_at.timestamp_millis(),
            0,
            false,
            VecDeque::new(),
            self.shared.cfg.resend_window,
        ));
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&live));
        self.send(Inbound::Start {
            session: id,
            scene,
            seed,
            next_seq: 0,
        })?;
        Ok(live)
    }

    /// One of `user`'s sessions, loading (and resuming) it when not in memory.
    /// Another user's session is [`GameError::NotFound`], like a missing one.
    pub async fn join(&self, user: Uuid, id: Uuid) -> Result<Arc<LiveSession>, GameError> {
        if let Some(s) = self.loaded(user, &id).await? {
            return Ok(s);
        }
        let _guard = self.load_lock.lock().await;
        if let Some(s) = self.loaded(user, &id).await? {
            return Ok(s);
        }
        let Some(row) = store::game::get(&self.pool, id).await? else {
            return Err(GameError::NotFound);
        };
        if row.user_id != user {
            return Err(GameError::NotFound);
        }
        let next_seq = u64::try_from(row.next_seq).unwrap_or(0);
        let window = self.shared.cfg.resend_window;
        let from = row.next_seq.saturating_sub(window as i64).max(0);
        let rows = store::game::events_from(&self.pool, id, from, window as i64).await?;
        let mut events = VecDeque::with_capacity(rows.len());
        for r in rows {
            // Checked once here: what is retained decodes.
            postcard::from_bytes::<GameEvent>(&r.event)
                .map_err(|e| GameError::Corrupt(format!("event {}: {e}", r.seq)))?;
            events.push_back(Arc::new(Delivered {
                seq: u64::try_from(r.seq).unwrap_or(0),
                at_ms: r.at_ms,
                encoded: r.event,
            }));
        }
        let ended = row.ended();
        if !ended {
            self.check_accepting()?;
        }
        let _reserved = if ended {
            None
        } else {
            Some(self.reserve_session(user)?)
        };
        let live = Arc::new(LiveSession::new(
            id,
            user,
            row.scene.clone(),
            row.created_at.timestamp_millis(),
            next_seq,
            ended,
            events,
            window,
        ));
        if !ended {
            let msg = match &row.save {
                Some(json) => {
                    let save: SessionSave = serde_json::from_str(json)
                        .map_err(|e| GameError::Corrupt(format!("save: {e}")))?;
                    Inbound::Resume {
                        session: id,
                        save: Box::new(save),
                        next_seq,
                    }
                }
                None => Inbound::Start {
                    session: id,
                    scene: row.scene.clone(),
                    seed: row.seed as u64,
                    next_seq,
                },
            };
            self.send(msg)?;
            tracing::debug!(session = %id, next_seq, "session reloaded from the database");
        }
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&live));
        Ok(live)
    }

    /// The session if it is in memory, waiting out an eviction in progress (after
    /// which it is not in memory any more).
    async fn loaded(&self, user: Uuid, id: &Uuid) -> Result<Option<Arc<LiveSession>>, GameError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.shared.evicted.notified();
            let Some(s) = self.shared.session(id) else {
                return Ok(None);
            };
            if s.owner != user {
                return Err(GameError::NotFound);
            }
            if !s.is_evicting() {
                s.touch();
                return Ok(Some(s));
            }
            // Bounded: an unload is one tick and one commit away; poll as a backstop.
            let wait = Duration::from_millis(100);
            let _ = tokio::time::timeout(wait, notified).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(GameError::Busy);
            }
        }
    }

    /// Submits a command; the receiver resolves once its effect is committed.
    pub fn command(
        &self,
        session: &LiveSession,
        command: GameCommand,
    ) -> Result<oneshot::Receiver<CommandOutcome>, GameError> {
        self.check_accepting()?;
        if session.ended() {
            return Err(GameError::Ended);
        }
        if session.is_evicting() {
            return Err(GameError::Busy);
        }
        session.touch();
        let (tx, rx) = oneshot::channel();
        self.send(Inbound::Command {
            session: session.id,
            command: events::to_sim(command),
            reply: tx,
            received: Instant::now(),
        })?;
        Ok(rx)
    }

    /// A user's stored sessions (newest first).
    pub async fn list_sessions(
        &self,
        user: Uuid,
        limit: i64,
    ) -> Result<Vec<store::game::SessionRow>, GameError> {
        Ok(store::game::list_for_user(&self.pool, user, limit).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A hand-over holding one event of `session` with `seq`.
    fn part(session: u128, seq: i64) -> Pending {
        Pending {
            events: vec![store::game::EventWrite {
                session: Uuid::from_u128(session),
                seq,
                at_ms: 0,
                event: bytes::Bytes::new(),
            }],
            ..Pending::default()
        }
    }

    fn seqs(p: &Pending) -> Vec<(u128, i64)> {
        p.events
            .iter()
            .map(|e| (e.session.as_u128(), e.seq))
            .collect()
    }

    fn completing(mut p: Pending, ticks: u64) -> Pending {
        p.completes = Some(ticks);
        p
    }

    #[test]
    fn an_urgent_part_handed_to_an_idle_persister_is_a_batch_of_its_own() {
        let mut w = Waiting::default();
        assert!(w.is_empty() && w.take().is_none());
        w.hand_over(part(1, 7), true);
        w.hand_over(completing(part(2, 3), 1), false);
        let first = w.take().unwrap();
        assert_eq!(seqs(&first), [(1, 7)]);
        assert_eq!(first.completes, None, "the urgent part completes no tick");
        assert!(first.handed_at.is_some());
        let second = w.take().unwrap();
        assert_eq!(seqs(&second), [(2, 3)]);
        assert_eq!(second.completes, Some(1));
        assert!(w.is_empty() && w.take().is_none());
    }

    #[test]
    fn behind_the_persister_hand_overs_merge_in_order() {
        let mut w = Waiting::default();
        // Tick 1: urgent part apart, the rest waiting.
        w.hand_over(part(1, 0), true);
        w.hand_over(completing(part(2, 0), 1), false);
        // Tick 2 comes before the persister took anything: its urgent part goes after
        // tick 1's rest (session 2 again: its events stay in order), then its own rest.
        w.hand_over(part(2, 1), true);
        w.hand_over(completing(part(3, 0), 2), false);
        assert_eq!(seqs(&w.take().unwrap()), [(1, 0)]);
        let merged = w.take().unwrap();
        assert_eq!(seqs(&merged), [(2, 0), (2, 1), (3, 0)]);
        assert_eq!(merged.completes, Some(2));
        assert!(w.take().is_none());
    }

    #[test]
    fn an_urgent_part_never_overtakes_an_older_rest() {
        let mut w = Waiting::default();
        // The persister took tick 1's urgent part; its rest waits.
        w.hand_over(part(1, 0), true);
        w.hand_over(completing(part(1, 1), 1), false);
        assert_eq!(seqs(&w.take().unwrap()), [(1, 0)]);
        // Tick 2's urgent part comes while tick 1's rest still waits: after it.
        w.hand_over(part(1, 2), true);
        let next = w.take().unwrap();
        assert_eq!(seqs(&next), [(1, 1), (1, 2)]);
        assert_eq!(next.completes, Some(1));
        // Once all is taken, an urgent part is apart again.
        w.hand_over(part(4, 0), true);
        w.hand_over(completing(Pending::default(), 2), false);
        assert_eq!(seqs(&w.take().unwrap()), [(4, 0)]);
        assert_eq!(w.take().unwrap().completes, Some(2));
    }
}
