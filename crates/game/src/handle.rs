//! [`GameHandle`]: the async side of the game, shared by QUIC and REST; what
//! [`GameHandle::new`] makes ([`Game`]), commands, shutdown and figures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::narrative::Content;
use protocol::v2::GameCommand;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::media::{MEDIA_QUEUE, WHEREABOUTS_QUEUE};
use crate::{
    CommandOutcome, ContentCell, DurabilityMetrics, GameConfig, GameError, GamePlugin, Inbound,
    LiveSession, Shared, Slot, events, persist,
};

/// One of a user's sessions as a list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: Uuid,
    /// The scene it stands in (its start scene until its first save).
    pub scene: String,
    /// The node it stands at; `None` before its first save.
    pub node: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub ended: bool,
}

impl SessionSummary {
    /// From its row: the position is the top frame of its last stored save.
    fn of(r: store::game::SessionRow, start_scene: &str) -> Self {
        let top = r
            .save
            .as_deref()
            .and_then(|json| serde_json::from_str::<domain::narrative::SessionSave>(json).ok())
            .and_then(|save| save.stack.last().map(|f| (f.scene.clone(), f.node.clone())));
        let ended = r.ended();
        let (scene, node) = match top {
            Some((scene, node)) => (scene, Some(node)),
            None => (r.scene.unwrap_or_else(|| start_scene.to_owned()), None),
        };
        SessionSummary {
            id: r.id,
            scene,
            node,
            created_at: r.created_at,
            updated_at: r.updated_at,
            ended,
        }
    }
}

/// The game service shared by QUIC and REST. Cheap to clone.
#[derive(Clone)]
pub struct GameHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pool: PgPool,
    pub(crate) content: ContentCell,
    pub(crate) to_tick: mpsc::Sender<Inbound>,
    pub(crate) accepting: Arc<AtomicBool>,
    pub(crate) load_lock: Arc<tokio::sync::Mutex<()>>,
    /// Sessions being created or loaded per user, counted against their cap.
    pub(crate) reserved: Arc<Mutex<HashMap<Uuid, usize>>>,
    /// Rung after every message to the tick: a tick loop run with it
    /// ([`tick::CommandPhase`]) takes the message in a command step at once instead of
    /// at the next tick.
    pub(crate) bell: tick::Bell,
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

impl GameHandle {
    /// Creates the handle, the plugin to add to the tick app and the persister to spawn.
    // Returns the handle with its two companions, which only exist together.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(pool: PgPool, content: ContentCell, cfg: GameConfig) -> Game {
        let (tx, rx) = mpsc::channel(cfg.inbound_capacity.max(1));
        let (media_wanted, media_requests) = mpsc::channel(MEDIA_QUEUE);
        let (whereabouts, whereabouts_rx) = mpsc::channel(WHEREABOUTS_QUEUE);
        let shared = Arc::new(Shared {
            sessions: Mutex::new(HashMap::new()),
            slot: Slot::new(),
            cfg: cfg.clone(),
            clock: Mutex::new(None),
            evicted: tokio::sync::Notify::new(),
            evictions: AtomicU64::new(0),
            media_wanted,
            media_requests: Mutex::new(Some(media_requests)),
            whereabouts,
            whereabouts_rx: Mutex::new(Some(whereabouts_rx)),
            whereabouts_taken: AtomicBool::new(false),
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
            bell: tick::Bell::default(),
        };
        Game {
            handle,
            plugin: GamePlugin::new(rx, Arc::clone(&shared)),
            persister: persist::Persister::new(pool, shared, tx),
        }
    }

    /// The bell to run the tick loop's command steps with ([`tick::CommandPhase`]).
    pub fn bell(&self) -> &tick::Bell {
        &self.bell
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

    pub(crate) fn check_accepting(&self) -> Result<(), GameError> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(GameError::ShuttingDown);
        }
        if self.shared.slot.backlog() > self.shared.cfg.max_pending_ticks {
            return Err(GameError::Busy);
        }
        Ok(())
    }

    pub(crate) fn send(&self, msg: Inbound) -> Result<(), GameError> {
        self.to_tick.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => GameError::Busy,
            mpsc::error::TrySendError::Closed(_) => GameError::ShuttingDown,
        })?;
        self.bell.ring();
        Ok(())
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

    /// A page of a user's stored sessions, newest first, each with where it stands
    /// (as last stored).
    pub async fn list_sessions(
        &self,
        user: Uuid,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<SessionSummary>, GameError> {
        let rows = store::game::list_for_user(&self.pool, user, offset, limit).await?;
        let start = self.content.get().world.start_scene.clone();
        Ok(rows
            .into_iter()
            .map(|r| SessionSummary::of(r, &start))
            .collect())
    }
}
