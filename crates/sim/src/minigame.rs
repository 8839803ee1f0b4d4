//! Mini-games: the skill check (a stat plus a die roll against a difficulty, resolved at
//! once) and the reflex game (rounds that open after a random delay, each answered by an
//! input inside its window, driven by [`Timer`]s). Nothing here advances: a resolved game
//! returns [`Next::Moved`] and the caller hands it to [`crate::advance::after`].

use domain::narrative::MiniGameSpec;
use domain::narrative::scene::{REFLEX_DEFAULT_ROUNDS, REFLEX_DEFAULT_WINDOW_MS};
use domain::narrative::state::stat_value;

use crate::components::{MiniGameRun, Phase, RoundPhase};
use crate::cx::{Cx, Next, Res, S, wrong_state};
use crate::edges;
use crate::protocol::{ErrorReason, Event, Outcome};
use crate::resources::Timer;

/// The reflex game's id in content.
pub(crate) const REFLEX: &str = "reflex";
/// The skill check's id in content.
pub(crate) const SKILL_CHECK: &str = "skill_check";

/// Rolls a skill check and reports it.
pub(crate) fn skill_check(s: S<'_, '_, '_>, cx: &mut Cx<'_>, spec: &MiniGameSpec) -> Res<Outcome> {
    let stat = spec.stat.clone().unwrap_or_default();
    let entity = spec.entity.clone().unwrap_or_else(|| "player".into());
    let axis = spec.axis.clone().unwrap_or_else(|| "value".into());
    let die = i64::from(spec.die.unwrap_or(20).max(1));
    let difficulty = spec.difficulty.unwrap_or(0);
    let value = stat_value(&cx.content.world, &s.progress.0, &stat, &entity, &axis)?;
    let roll = s.rng.0.range(1, die);
    let total = value.saturating_add(roll);
    let outcome = if total >= difficulty {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    cx.emit(Event::MiniGameResult {
        game: SKILL_CHECK.into(),
        outcome,
        score: total,
        detail: format!("{stat} {value} + d{die} roll {roll} = {total} vs difficulty {difficulty}"),
    });
    Ok(outcome)
}

/// Schedules the next reflex round's opening after a random delay; returns its token.
fn schedule_round(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> u64 {
    let (lo, hi) = cx.cfg.reflex_delay_ms;
    let delay = s.rng.0.range(lo, hi.max(lo));
    cx.timers
        .schedule(cx.now + delay, cx.entity, Timer::RoundOpens)
}

/// Starts a reflex game at its first round.
pub(crate) fn start_reflex(s: S<'_, '_, '_>, cx: &mut Cx<'_>, spec: &MiniGameSpec) {
    resume_reflex(s, cx, spec, 1, 0);
}

/// Starts a reflex game at `round` with `hits` so far (a resumed save).
pub(crate) fn resume_reflex(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    spec: &MiniGameSpec,
    round: u32,
    hits: u32,
) {
    let rounds = spec.rounds.unwrap_or(REFLEX_DEFAULT_ROUNDS).max(1);
    let timer = schedule_round(s, cx);
    s.minigame.0 = Some(MiniGameRun {
        game: spec.game.clone(),
        round: round.min(rounds),
        rounds,
        hits: hits.min(rounds),
        need: spec.need.unwrap_or(rounds).clamp(1, rounds),
        window_ms: spec.window_ms.unwrap_or(REFLEX_DEFAULT_WINDOW_MS).max(1),
        phase: RoundPhase::Waiting,
        timer,
    });
    *s.phase = Phase::MiniGame;
}

/// A timer fired. Every kind is listed: a stale one (its run is over or was replaced)
/// changes nothing.
pub(crate) fn on_timer(s: S<'_, '_, '_>, cx: &mut Cx<'_>, token: u64, timer: Timer) -> Res<Next> {
    let Some(run) = s.minigame.0.as_ref() else {
        return Ok(Next::Stop); // stale: the mini-game is over
    };
    if run.timer != token || *s.phase != Phase::MiniGame {
        return Ok(Next::Stop); // stale timer
    }
    match (timer, &run.phase) {
        (Timer::RoundOpens, RoundPhase::Waiting) => {
            open_round(s, cx);
            Ok(Next::Stop)
        }
        (Timer::WindowCloses, RoundPhase::Open { .. }) => round_done(
            s,
            cx,
            false,
            Some("no input before the window closed".into()),
        ),
        // A token names one timer, scheduled for the phase it ends: never reached.
        (Timer::RoundOpens, RoundPhase::Open { .. })
        | (Timer::WindowCloses, RoundPhase::Waiting) => Ok(Next::Stop),
    }
}

/// Opens the current round's window and prompts the player.
fn open_round(s: S<'_, '_, '_>, cx: &mut Cx<'_>) {
    let nonce = s.rng.0.next_u64() & ((1 << 53) - 1);
    let Some(run) = s.minigame.0.as_mut() else {
        return;
    };
    let closes = cx.now + run.window_ms as i64;
    run.phase = RoundPhase::Open {
        nonce,
        opens_at_ms: cx.now,
        closes_at_ms: closes,
    };
    let due = closes + cx.cfg.input_grace_ms;
    run.timer = cx.timers.schedule(due, cx.entity, Timer::WindowCloses);
    let ev = Event::MiniGamePrompt {
        game: run.game.clone(),
        round: run.round,
        rounds: run.rounds,
        nonce,
        opens_at_ms: cx.now,
        closes_at_ms: closes,
    };
    cx.emit(ev);
}

/// A reflex input. Errors (stale/forged) change nothing; timing failures count as a miss.
pub(crate) fn on_input(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    round: u32,
    nonce: u64,
    client_ms: i64,
) -> Res<Next> {
    let Some(run) = s
        .minigame
        .0
        .as_ref()
        .filter(|_| *s.phase == Phase::MiniGame)
    else {
        cx.reject("minigame_input", wrong_state("minigame_input", *s.phase));
        return Ok(Next::Stop);
    };
    let (want, opens_at_ms, closes_at_ms) = match run.phase {
        RoundPhase::Open {
            nonce,
            opens_at_ms,
            closes_at_ms,
        } => (nonce, opens_at_ms, closes_at_ms),
        RoundPhase::Waiting => {
            let detail = format!("round {} is not open yet", run.round);
            cx.reject("minigame_input", ErrorReason::StaleInput { detail });
            return Ok(Next::Stop);
        }
    };
    if round != run.round || nonce != want {
        let detail = if round != run.round {
            format!("input for round {round}, current round is {}", run.round)
        } else {
            format!("wrong nonce for round {round}")
        };
        cx.reject("minigame_input", ErrorReason::StaleInput { detail });
        return Ok(Next::Stop);
    }
    let miss = judge(cx, client_ms, opens_at_ms, closes_at_ms);
    round_done(s, cx, miss.is_none(), miss)
}

/// Why an input for the open window counts as a miss, if it does.
fn judge(cx: &Cx<'_>, client_ms: i64, opens_at_ms: i64, closes_at_ms: i64) -> Option<String> {
    let now = cx.now;
    if client_ms < opens_at_ms {
        Some(format!(
            "input claims {client_ms} ms, before the window opened at {opens_at_ms} ms"
        ))
    } else if client_ms > closes_at_ms {
        Some(format!(
            "input claims {client_ms} ms, after the window closed at {closes_at_ms} ms"
        ))
    } else if client_ms > now {
        Some(format!(
            "input claims {client_ms} ms, ahead of the server clock ({now} ms)"
        ))
    } else if now - client_ms > cx.cfg.max_input_latency_ms {
        Some(format!(
            "input arrived {} ms after its claimed time (max {} ms)",
            now - client_ms,
            cx.cfg.max_input_latency_ms
        ))
    } else {
        None
    }
}

/// Ends a round: the next one waits, or the game resolves and the session takes the edge
/// of its outcome ([`Next::Moved`]: the caller advances).
fn round_done(s: S<'_, '_, '_>, cx: &mut Cx<'_>, hit: bool, reason: Option<String>) -> Res<Next> {
    let Some(run) = s.minigame.0.as_mut() else {
        return Ok(Next::Stop);
    };
    if hit {
        run.hits += 1;
    }
    let round = run.round;
    cx.emit(Event::MiniGameRound { round, hit, reason });
    let Some(run) = s.minigame.0.as_mut() else {
        return Ok(Next::Stop);
    };
    if run.round < run.rounds {
        run.round += 1;
        run.phase = RoundPhase::Waiting;
        let timer = schedule_round(s, cx);
        if let Some(run) = s.minigame.0.as_mut() {
            run.timer = timer;
        }
        return Ok(Next::Stop);
    }
    let outcome = if run.hits >= run.need {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let ev = Event::MiniGameResult {
        game: run.game.clone(),
        outcome,
        score: i64::from(run.hits),
        detail: format!(
            "{} of {} rounds hit, {} needed",
            run.hits, run.rounds, run.need
        ),
    };
    s.minigame.0 = None;
    cx.emit(ev);
    edges::follow(s, cx, Some(outcome.as_str()))?;
    Ok(Next::Moved)
}
