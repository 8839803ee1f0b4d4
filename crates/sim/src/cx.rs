//! What every step of a session works with: the session's components ([`S`]), the
//! per-call context ([`Cx`]: content, tunables, the session's world and its time, the
//! mini-game registry, staging, timers), what a step leaves
//! for the advance ([`Next`]), and the ways a step ends a session or refuses a command.

use bevy_ecs::entity::Entity;

use domain::narrative::state::Ctx;
use domain::narrative::{Content, Expr, ExprText};

use crate::components::{Phase, SessionQueryItem};
use crate::minigame::MiniGames;
use crate::protocol::{EndReason, ErrorReason, Event, SessionId};
use crate::resources::{MediaLibrary, SimConfig, Staging, Timers};

/// One session's components, mutable.
pub(crate) type S<'a, 'w, 's> = &'a mut SessionQueryItem<'w, 's>;

/// A step's result: `Err` carries a runtime failure's detail (the session is aborted).
pub(crate) type Res<T> = Result<T, String>;

/// What the advance does after a step (a node's behaviour, a choice taken, a mini-game
/// resolved) ran: [`crate::advance::after`] acts on it.
#[must_use]
pub(crate) enum Next {
    /// The session waits (for a choice, a mini-game round) or has ended.
    Stop,
    /// Moved to another node of the same scene frame: enter it.
    Moved,
    /// Moved to a scene's entry node (a call): enter it as a scene entry.
    EnteredScene,
}

/// Per-call context.
pub(crate) struct Cx<'a> {
    pub content: &'a Content,
    pub cfg: &'a SimConfig,
    /// The session's world time (its scene's world's clock).
    pub now: i64,
    /// How far ahead of `now` a client's clock may be: one tick on a tick (the clock
    /// moves a tick at a time), two between ticks (a command step runs on the clock of
    /// the tick before).
    pub ahead_ms: i64,
    /// The session's world (its entity): where its timers are due.
    pub world: Entity,
    /// The mini-game registry.
    pub games: &'a MiniGames,
    pub id: SessionId,
    pub entity: Entity,
    pub staging: &'a mut Staging,
    pub timers: &'a mut Timers,
    pub media: &'a MediaLibrary,
}

impl Cx<'_> {
    /// The latest world time it may be now, for what a client sees open by its own
    /// clock (a reveal, the end of a cooldown): the clock's time on a tick, up to a tick
    /// later between ticks (a command step runs on the last tick's clock while real time
    /// has moved on).
    pub fn now_at_latest(&self) -> i64 {
        self.now
            .saturating_add(self.ahead_ms.saturating_sub(self.cfg.tick_ms).max(0))
    }

    pub fn emit(&mut self, e: Event) {
        self.staging.events.push((self.id, e));
    }

    pub fn reject(&mut self, command: &str, reason: ErrorReason) {
        let message = reason.to_string();
        self.emit(Event::Error {
            command: command.to_string(),
            reason,
            message,
        });
    }
}

/// Runs `f` with an expression/effect context over the session's state.
pub(crate) fn with_ctx<R>(
    s: S<'_, '_, '_>,
    content: &Content,
    now: i64,
    f: impl FnOnce(&mut Ctx<'_>) -> R,
) -> R {
    let mut ctx = Ctx {
        world: &content.world,
        args: &s.pos.args,
        vars: &mut s.vars.0,
        visits: &s.visits.0,
        progress: &mut s.progress.0,
        time_ms: now,
        rng: &mut s.rng.0,
    };
    f(&mut ctx)
}

/// The parsed expression (validation parses every expression; a failure is a runtime error).
pub(crate) fn parsed(t: &ExprText) -> Res<&Expr> {
    t.parsed
        .as_ref()
        .map_err(|e| format!("invalid expression '{}': {e}", t.src))
}

/// Ends the session (despawned after this tick's output).
pub(crate) fn end(s: S<'_, '_, '_>, cx: &mut Cx<'_>, reason: EndReason) {
    *s.phase = Phase::Ended;
    s.choices.0.clear();
    s.minigame.0 = None;
    cx.emit(Event::SessionEnded { reason });
    cx.staging.ended.push((cx.id, cx.entity));
}

/// Aborts a session after a runtime failure (never a silent soft-lock).
pub(crate) fn abort(s: S<'_, '_, '_>, cx: &mut Cx<'_>, command: &str, detail: String) {
    cx.reject(command, ErrorReason::Runtime { detail });
    end(s, cx, EndReason::Aborted);
}

/// The rejection of a command that does not fit the session's phase.
pub(crate) fn wrong_state(command: &str, phase: Phase) -> ErrorReason {
    let state = match phase {
        Phase::Starting => "the session is starting",
        Phase::Choosing => "waiting for a choice",
        Phase::MiniGame => "a mini-game is running",
        Phase::Playing => "waiting for the playback to continue",
        Phase::Ended => "the session has ended",
    };
    ErrorReason::WrongState {
        command: command.to_string(),
        state: state.to_string(),
    }
}
