//! The built-in reflex game: rounds that open after a random delay, each answered by an
//! input inside its window (plus a grace for the network), driven by [`Timer`]s; the
//! game succeeds when enough rounds were hit.

use domain::narrative::MiniGameSpec;
use domain::narrative::minigame::{MiniGameRules, REFLEX, ReflexRules};
use domain::narrative::scene::{REFLEX_DEFAULT_ROUNDS, REFLEX_DEFAULT_WINDOW_MS};
use domain::narrative::state::SceneTypes;

use super::{Input, MiniGame, Play, Turn};
use crate::components::{MiniGameRun, RoundPhase};
use crate::protocol::{ErrorReason, Event, Outcome};
use crate::resources::Timer;

/// The reflex game (`game = "reflex"`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reflex;

impl MiniGameRules for Reflex {
    fn id(&self) -> &str {
        REFLEX
    }
    fn check(&self, spec: &MiniGameSpec, env: &SceneTypes<'_>) -> Vec<String> {
        ReflexRules.check(spec, env)
    }
}

impl MiniGame for Reflex {
    fn start(&self, play: &mut Play<'_, '_, '_, '_>, spec: &MiniGameSpec) -> Result<Turn, String> {
        self.resume(play, spec, 1, 0)?;
        Ok(Turn::Wait)
    }

    fn resume(
        &self,
        play: &mut Play<'_, '_, '_, '_>,
        spec: &MiniGameSpec,
        round: u32,
        hits: u32,
    ) -> Result<(), String> {
        let rounds = spec.rounds.unwrap_or(REFLEX_DEFAULT_ROUNDS).max(1);
        let timer = schedule_round(play);
        play.set_run(Some(MiniGameRun {
            game: spec.game.clone(),
            round: round.min(rounds),
            rounds,
            hits: hits.min(rounds),
            need: spec.need.unwrap_or(rounds).clamp(1, rounds),
            window_ms: spec.window_ms.unwrap_or(REFLEX_DEFAULT_WINDOW_MS).max(1),
            phase: RoundPhase::Waiting,
            timer,
        }));
        Ok(())
    }

    /// Every kind is listed; a timer for a phase it does not end changes nothing.
    fn on_timer(&self, play: &mut Play<'_, '_, '_, '_>, timer: Timer) -> Result<Turn, String> {
        let Some(run) = play.run() else {
            return Ok(Turn::Wait);
        };
        match (timer, &run.phase) {
            (Timer::RoundOpens, RoundPhase::Waiting) => {
                open_round(play);
                Ok(Turn::Wait)
            }
            (Timer::WindowCloses, RoundPhase::Open { .. }) => Ok(round_done(
                play,
                false,
                Some("no input before the window closed".into()),
            )),
            // A token names one timer, scheduled for the phase it ends: never reached.
            (Timer::RoundOpens, RoundPhase::Open { .. })
            | (Timer::WindowCloses, RoundPhase::Waiting) => Ok(Turn::Wait),
        }
    }

    /// Errors (stale or forged inputs) change nothing; timing failures count as a miss.
    fn on_input(&self, play: &mut Play<'_, '_, '_, '_>, input: Input) -> Result<Turn, String> {
        let Some(run) = play.run() else {
            return Ok(Turn::Wait);
        };
        let (want, opens_at_ms, closes_at_ms) = match run.phase {
            RoundPhase::Open {
                nonce,
                opens_at_ms,
                closes_at_ms,
            } => (nonce, opens_at_ms, closes_at_ms),
            RoundPhase::Waiting => {
                let detail = format!("round {} is not open yet", run.round);
                play.reject("minigame_input", ErrorReason::StaleInput { detail });
                return Ok(Turn::Wait);
            }
        };
        if input.round != run.round || input.nonce != want {
            let detail = if input.round != run.round {
                format!(
                    "input for round {}, current round is {}",
                    input.round, run.round
                )
            } else {
                format!("wrong nonce for round {}", input.round)
            };
            play.reject("minigame_input", ErrorReason::StaleInput { detail });
            return Ok(Turn::Wait);
        }
        let miss = judge(play, input.client_time_ms, opens_at_ms, closes_at_ms);
        Ok(round_done(play, miss.is_none(), miss))
    }
}

/// Schedules the next round's opening after a random delay; returns its token.
fn schedule_round(play: &mut Play<'_, '_, '_, '_>) -> u64 {
    let (lo, hi) = play.config().reflex_delay_ms;
    let delay = play.rng().range(lo, hi.max(lo));
    let due = play.now() + delay;
    play.schedule(due, Timer::RoundOpens)
}

/// Opens the current round's window and prompts the player.
fn open_round(play: &mut Play<'_, '_, '_, '_>) {
    let nonce = play.rng().next_u64() & ((1 << 53) - 1);
    let now = play.now();
    let grace = play.config().input_grace_ms;
    let Some(run) = play.run_mut() else {
        return;
    };
    let closes = now + run.window_ms as i64;
    run.phase = RoundPhase::Open {
        nonce,
        opens_at_ms: now,
        closes_at_ms: closes,
    };
    let timer = play.schedule(closes + grace, Timer::WindowCloses);
    let Some(run) = play.run_mut() else {
        return;
    };
    run.timer = timer;
    let ev = Event::MiniGamePrompt {
        game: run.game.clone(),
        round: run.round,
        rounds: run.rounds,
        nonce,
        opens_at_ms: now,
        closes_at_ms: closes,
    };
    play.emit(ev);
}

/// Why an input for the open window counts as a miss, if it does.
fn judge(
    play: &Play<'_, '_, '_, '_>,
    client_ms: i64,
    opens_at_ms: i64,
    closes_at_ms: i64,
) -> Option<String> {
    let now = play.now();
    let max_latency = play.config().max_input_latency_ms;
    if client_ms < opens_at_ms {
        Some(format!(
            "input claims {client_ms} ms, before the window opened at {opens_at_ms} ms"
        ))
    } else if client_ms > closes_at_ms {
        Some(format!(
            "input claims {client_ms} ms, after the window closed at {closes_at_ms} ms"
        ))
    } else if client_ms > now + play.clock_slack_ms() {
        // The server's clock moves a tick at a time and a client's estimate moves
        // continuously (and runs ahead while a loaded server's ticks run late): a claim
        // within one tick of it is within the clock's resolution (two between ticks,
        // where the clock is the last tick's).
        Some(format!(
            "input claims {client_ms} ms, ahead of the server clock ({now} ms)"
        ))
    } else if now - client_ms > max_latency {
        Some(format!(
            "input arrived {} ms after its claimed time (max {max_latency} ms)",
            now - client_ms,
        ))
    } else {
        None
    }
}

/// Ends a round: the next one waits, or the game is over with its outcome.
fn round_done(play: &mut Play<'_, '_, '_, '_>, hit: bool, reason: Option<String>) -> Turn {
    let Some(run) = play.run_mut() else {
        return Turn::Wait;
    };
    if hit {
        run.hits += 1;
    }
    let round = run.round;
    play.emit(Event::MiniGameRound { round, hit, reason });
    let Some(run) = play.run_mut() else {
        return Turn::Wait;
    };
    if run.round < run.rounds {
        run.round += 1;
        run.phase = RoundPhase::Waiting;
        let timer = schedule_round(play);
        if let Some(run) = play.run_mut() {
            run.timer = timer;
        }
        return Turn::Wait;
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
    play.emit(ev);
    Turn::Done(outcome)
}
