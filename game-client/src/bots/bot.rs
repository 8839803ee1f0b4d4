//! One bot's task: connect (authenticate, create a session), idle with heartbeats
//! until the fleet starts, then play until the deadline: read events, act on its
//! [`Plan`] when due, heartbeat when idle, and count what happened in [`BotStats`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::v2::{ClientMessage, GameCommand, ServerMessage};
use tokio::sync::{Semaphore, mpsc, watch};

use super::BotConfig;
use super::behaviour::{Clock, Inflight, Plan, State, replans};
use super::report::BotStats;
use crate::{Client, ClientError, ConnectOptions};

/// How long a bot waits for the answer to a command before counting an error.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat period of idle bots (the server closes silent connections).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A failure that ends a bot: its kind (the error counter) and the error.
type BotFailure = (&'static str, ClientError);

async fn connect_bot(
    cfg: &BotConfig,
    token: &str,
    endpoint: Option<quinn::Endpoint>,
) -> Result<(Client, u64), BotFailure> {
    let opts = ConnectOptions {
        timeout: Duration::from_secs(30),
        endpoint,
        ..ConnectOptions::default()
    };
    let mut c = Client::connect_to(&cfg.target, opts)
        .await
        .map_err(|e| ("connect", e))?;
    c.authenticate(token)
        .await
        .map_err(|e| ("authenticate", e))?;
    let joined = c
        .create_session(cfg.scene.as_deref())
        .await
        .map_err(|e| ("create session", e))?;
    Ok((c, joined.next_seq))
}

/// One bot, from connecting (at most `gate`'s permits at once; the outcome is sent on
/// `ready`) to the end of play (the deadline arrives on `go`).
pub(super) async fn bot(
    cfg: BotConfig,
    token: String,
    endpoint: Option<quinn::Endpoint>,
    gate: Arc<Semaphore>,
    ready: mpsc::Sender<bool>,
    mut go: watch::Receiver<Option<Instant>>,
) -> BotStats {
    let mut stats = BotStats::default();
    let permit = gate.acquire().await;
    let connected = connect_bot(&cfg, &token, endpoint).await;
    drop(permit);
    let mut c = match connected {
        Ok((c, _)) => c,
        Err((kind, e)) => {
            stats.error(kind, &e);
            let _ = ready.send(false).await;
            return stats;
        }
    };
    stats.connected = true;
    stats.started = 1;
    let _ = ready.send(true).await;
    drop(ready);
    let mut clock = Clock::new(c.sync_clock(3).await.ok());
    let mut state = State::default();
    let Some(deadline) = idle(&mut c, &mut go, &mut state, &mut clock, &mut stats).await else {
        return stats;
    };
    let deadline = tokio::time::Instant::from_std(deadline);
    match play(&cfg, &mut c, &mut state, &mut clock, deadline, &mut stats).await {
        Ok(()) => {
            stats.held = true;
            c.close().await;
        }
        Err((kind, e)) => stats.error(kind, &e),
    }
    stats
}

/// Idles (reading, heartbeating) until the start signal; returns the play deadline,
/// or `None` when the fleet is gone or the connection was lost.
async fn idle(
    c: &mut Client,
    go: &mut watch::Receiver<Option<Instant>>,
    state: &mut State,
    clock: &mut Clock,
    stats: &mut BotStats,
) -> Option<Instant> {
    loop {
        if let Some(d) = *go.borrow_and_update() {
            return Some(d);
        }
        tokio::select! {
            changed = go.changed() => if changed.is_err() { return None; },
            msg = c.recv_within(HEARTBEAT) => match msg {
                Ok(msg) => state.on_message(msg, clock, stats),
                Err(ClientError::Timeout(_)) => {
                    if let Err(e) = c.send(&ClientMessage::Heartbeat { client_time_ms: 0 }).await {
                        stats.error("connection lost", &e);
                        return None;
                    }
                }
                Err(e) => {
                    stats.error("connection lost", &e);
                    return None;
                }
            },
        }
    }
}

/// Plays until `deadline`: `Ok` when it arrives, `Err` on a lost connection or an
/// unanswered command.
async fn play(
    cfg: &BotConfig,
    c: &mut Client,
    state: &mut State,
    clock: &mut Clock,
    deadline: tokio::time::Instant,
    stats: &mut BotStats,
) -> Result<(), BotFailure> {
    let mut planned: Option<(Plan, Instant)> = None;
    loop {
        if planned.is_none() {
            planned = state.plan(cfg);
        }
        let wake = match (&planned, &state.inflight) {
            (Some((_, at)), _) => tokio::time::Instant::from_std(*at),
            (None, Some(f)) => tokio::time::Instant::from_std(f.sent + ANSWER_TIMEOUT),
            (None, None) => {
                let last = state.last_sent.unwrap_or_else(Instant::now);
                tokio::time::Instant::from_std(last + HEARTBEAT)
            }
        }
        .min(deadline);
        tokio::select! {
            msg = c.recv() => {
                let msg = msg.map_err(|e| ("connection lost", e))?;
                let reset = match &msg {
                    ServerMessage::Event { event, .. } => event.known().is_some_and(replans),
                    ServerMessage::Welcome { .. }
                    | ServerMessage::Pong { .. }
                    | ServerMessage::Error { .. }
                    | ServerMessage::Authenticated { .. }
                    | ServerMessage::SessionJoined { .. }
                    | ServerMessage::Ack { .. }
                    | ServerMessage::Rejected { .. }
                    | ServerMessage::Heartbeat { .. } => false,
                };
                state.on_message(msg, clock, stats);
                if reset {
                    planned = None;
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(());
                }
                if let Some(f) = &state.inflight
                    && f.sent.elapsed() >= ANSWER_TIMEOUT
                {
                    return Err(("no answer", ClientError::Timeout(ANSWER_TIMEOUT)));
                }
                act(cfg, c, state, clock, planned.take().map(|(plan, _)| plan), stats).await?;
            }
        }
    }
}

/// Carries out `plan` now (a heartbeat when there is none).
async fn act(
    cfg: &BotConfig,
    c: &mut Client,
    state: &mut State,
    clock: &Clock,
    plan: Option<Plan>,
    stats: &mut BotStats,
) -> Result<(), BotFailure> {
    let (command, reflex) = match plan {
        Some(Plan::NewSession) => {
            state.ended = false;
            c.create_session(cfg.scene.as_deref())
                .await
                .map_err(|e| ("create session", e))?;
            stats.started += 1;
            state.last_sent = Some(Instant::now());
            return Ok(());
        }
        Some(Plan::Choose(edge)) => (GameCommand::Choose { edge }, false),
        Some(Plan::React(round, nonce)) => {
            state.prompt = None;
            let command = GameCommand::MiniGameInput {
                round,
                nonce,
                client_time_ms: clock.now(),
            };
            (command, true)
        }
        None => {
            // Idle: keep the connection alive.
            c.send(&ClientMessage::Heartbeat { client_time_ms: 0 })
                .await
                .map_err(|e| ("connection lost", e))?;
            state.last_sent = Some(Instant::now());
            return Ok(());
        }
    };
    state.next_request += 1;
    let id = state.next_request;
    let sent = Instant::now();
    c.command(id, command)
        .await
        .map_err(|e| ("connection lost", e))?;
    state.inflight = Some(Inflight {
        id,
        sent,
        evented: false,
        reflex,
    });
    state.last_sent = Some(sent);
    Ok(())
}
