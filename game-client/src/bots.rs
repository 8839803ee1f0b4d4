//! Load bots: each bot has its own QUIC connection and game session, plays random
//! valid choices (and reflex inputs) with a think time, starts a new session at an
//! ending, and measures command latency.
//!
//! Bots share a small pool of accounts (`accounts`): logging in costs an argon2 hash,
//! so 2,000 bots do not need 2,000 registrations. A run has three phases, so that a
//! benchmark can look at the server between them: [`login`] (the account pool),
//! [`Fleet::launch`] (connect, authenticate, create a session; connected bots idle
//! with heartbeats until told to start) and [`Fleet::play`].
//!
//! Two latencies are measured per command, from the moment it is written:
//! *command→event*, to the first event the command caused, and *command→ack*, to its
//! `Ack`/`Rejected`. Both are sent only once the command's effect is committed, the
//! events first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::v1::{ClientMessage, GameCommand, GameEvent, ServerMessage};
use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::rest::{Rest, RestError};
use crate::{Client, ClientError, ConnectOptions, TimeSync, Trust};

/// How long a bot waits for the answer to a command before counting an error.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat period of idle bots (the server closes silent connections).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Bot run settings.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// REST base URL, e.g. `http://127.0.0.1:8080`.
    pub http: String,
    /// QUIC address of the server.
    pub quic: SocketAddr,
    /// TLS server name.
    pub server_name: String,
    /// Certificate trust.
    pub trust: Trust,
    /// Number of bots (one connection and one session each).
    pub count: usize,
    /// Accounts shared by the bots (registered when missing).
    pub accounts: usize,
    /// Account emails are `{account_prefix}-{i}@bots.pixsim.test`.
    pub account_prefix: String,
    /// Password of the bot accounts.
    pub password: String,
    /// Think time before each choice: uniform in this range.
    pub think: (Duration, Duration),
    /// Reaction time to a reflex prompt: uniform in this range.
    pub reaction: (Duration, Duration),
    /// Connections being set up at once.
    pub connect_concurrency: usize,
    /// Bots share this many client UDP endpoints (0: one per bot).
    pub endpoints: usize,
    /// Start scene (the world's start scene when `None`).
    pub scene: Option<String>,
}

impl BotConfig {
    /// Defaults for everything but the addresses and trust.
    pub fn new(http: &str, quic: SocketAddr, trust: Trust) -> BotConfig {
        BotConfig {
            http: http.trim_end_matches('/').to_owned(),
            quic,
            server_name: "localhost".into(),
            trust,
            count: 10,
            accounts: 8,
            account_prefix: "bot".into(),
            password: "bot-password-123".into(),
            think: (Duration::from_millis(500), Duration::from_millis(1500)),
            reaction: (Duration::from_millis(100), Duration::from_millis(250)),
            connect_concurrency: 64,
            endpoints: 16,
            scene: None,
        }
    }
}

/// Failures before any bot runs.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// A bot account could not log in.
    #[error("bot account {email}: {source}")]
    Account {
        /// The account.
        email: String,
        /// Why.
        source: RestError,
    },
    /// The shared client endpoints could not be opened.
    #[error("client endpoint: {0}")]
    Endpoint(#[from] std::io::Error),
}

/// Logs the account pool in (registering missing accounts) and returns one token
/// per account.
pub async fn login(cfg: &BotConfig) -> Result<Vec<String>, BotError> {
    let rest = Rest::new(&cfg.http).map_err(|source| BotError::Account {
        email: String::new(),
        source,
    })?;
    let n = cfg.accounts.clamp(1, cfg.count.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let rest = rest.clone();
        let email = format!("{}-{i}@bots.pixsim.test", cfg.account_prefix);
        let password = cfg.password.clone();
        tasks.spawn(async move {
            let r = async {
                rest.register(&email, &password).await?;
                rest.login_patiently(&email, &password, Duration::from_secs(120))
                    .await
            }
            .await;
            (i, email, r)
        });
    }
    let mut tokens = vec![String::new(); n];
    while let Some(joined) = tasks.join_next().await {
        let Ok((i, email, r)) = joined else {
            continue;
        };
        match r {
            Ok(token) => {
                if let Some(t) = tokens.get_mut(i) {
                    *t = token;
                }
            }
            Err(source) => return Err(BotError::Account { email, source }),
        }
    }
    Ok(tokens)
}

/// Latency samples (µs) with percentiles.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    sorted: Vec<i64>,
}

impl Latencies {
    fn from(mut v: Vec<i64>) -> Latencies {
        v.sort_unstable();
        Latencies { sorted: v }
    }

    /// Number of samples.
    pub fn count(&self) -> usize {
        self.sorted.len()
    }

    /// The `p` quantile (0..=1) in ms, nearest rank; 0 without samples.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p * self.sorted.len() as f64).ceil() as usize).clamp(1, self.sorted.len());
        self.sorted[rank - 1] as f64 / 1000.0
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "samples": self.count(),
            "p50_ms": self.percentile_ms(0.5),
            "p90_ms": self.percentile_ms(0.9),
            "p99_ms": self.percentile_ms(0.99),
            "max_ms": self.percentile_ms(1.0),
        })
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms ({} samples)",
            self.percentile_ms(0.5),
            self.percentile_ms(0.9),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
            self.count()
        )
    }
}

/// Figures of a run.
#[derive(Clone, Debug, Default)]
pub struct BotReport {
    /// Bots asked for.
    pub bots: usize,
    /// Bots connected with a session when play started.
    pub connected: usize,
    /// Bots whose connection was still up at the end.
    pub held: usize,
    /// Commands answered (acknowledged or rejected).
    pub commands: u64,
    /// Rejected commands by code (part of `commands`).
    pub rejected: BTreeMap<String, u64>,
    /// Errors by kind: failed connects, lost connections, unanswered commands...
    pub errors: BTreeMap<String, u64>,
    /// Sessions started (including each bot's first).
    pub sessions_started: u64,
    /// Sessions that reached an ending.
    pub sessions_finished: u64,
    /// Reflex rounds answered and hit.
    pub reflex: (u64, u64),
    /// Time to connect the fleet.
    pub connect_time: Duration,
    /// Play time.
    pub elapsed: Duration,
    /// Command → first event it caused.
    pub command_to_event: Latencies,
    /// Command → its `Ack`/`Rejected`.
    pub command_to_ack: Latencies,
    /// Where command→event goes, measured on the server's world clock (time-synced
    /// bots only, ms resolution): from the command's send to the start of the tick
    /// that ran it (waiting for the tick, including the trip to the server)...
    pub until_tick: Latencies,
    /// ...and from that tick's start to the event's arrival (the tick, the group
    /// commit, publishing, the trip back).
    pub tick_to_event: Latencies,
}

impl BotReport {
    /// Total errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Total rejections.
    pub fn rejected_count(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Answered commands per second of play.
    pub fn per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    /// The report as JSON (for `--json` and tests).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "bots": self.bots,
            "connected": self.connected,
            "held": self.held,
            "commands": self.commands,
            "commands_per_sec": self.per_second(),
            "rejected": self.rejected,
            "rejected_total": self.rejected_count(),
            "errors": self.errors,
            "errors_total": self.error_count(),
            "sessions_started": self.sessions_started,
            "sessions_finished": self.sessions_finished,
            "reflex_inputs": self.reflex.0,
            "reflex_hits": self.reflex.1,
            "connect_secs": self.connect_time.as_secs_f64(),
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "command_to_event": self.command_to_event.json(),
            "command_to_ack": self.command_to_ack.json(),
            "until_tick": self.until_tick.json(),
            "tick_to_event": self.tick_to_event.json(),
        })
    }
}

impl std::fmt::Display for BotReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "bots {} · connected {} (in {:.1} s) · held to the end {}",
            self.bots,
            self.connected,
            self.connect_time.as_secs_f64(),
            self.held
        )?;
        writeln!(
            f,
            "commands {} in {:.1} s: {:.0}/s · sessions started {} · finished {} · reflex hits {}/{}",
            self.commands,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.sessions_started,
            self.sessions_finished,
            self.reflex.1,
            self.reflex.0
        )?;
        writeln!(f, "command→event {}", self.command_to_event.line())?;
        writeln!(f, "command→ack   {}", self.command_to_ack.line())?;
        if self.until_tick.count() > 0 {
            writeln!(f, "  send→tick start   {}", self.until_tick.line())?;
            writeln!(f, "  tick start→event  {}", self.tick_to_event.line())?;
        }
        let list = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!(" ({})", parts.join(", "))
            }
        };
        writeln!(
            f,
            "rejected {}{}",
            self.rejected_count(),
            list(&self.rejected)
        )?;
        write!(f, "errors {}{}", self.error_count(), list(&self.errors))
    }
}

/// What one bot did.
#[derive(Debug, Default)]
struct BotStats {
    connected: bool,
    held: bool,
    commands: u64,
    rejected: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    started: u64,
    finished: u64,
    reflex: (u64, u64),
    to_event: Vec<i64>,
    to_ack: Vec<i64>,
    until_tick: Vec<i64>,
    tick_to_event: Vec<i64>,
}

impl BotStats {
    fn error(&mut self, kind: &str, e: &dyn std::fmt::Display) {
        tracing::warn!(error = %e, kind, "bot error");
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }
}

/// Connected bots, idling until [`Fleet::play`].
pub struct Fleet {
    bots: usize,
    tasks: Vec<tokio::task::JoinHandle<BotStats>>,
    go: watch::Sender<Option<Instant>>,
    connected: usize,
    failed: usize,
    connect_time: Duration,
    _endpoints: Vec<quinn::Endpoint>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("bots", &self.bots)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Connects `cfg.count` bots (each authenticates with a pool token and creates
    /// a session) and returns once every bot is connected or has failed.
    pub async fn launch(cfg: &BotConfig, tokens: &[String]) -> Result<Fleet, BotError> {
        let started = Instant::now();
        let local: SocketAddr = if cfg.quic.is_ipv6() {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        } else {
            (std::net::Ipv4Addr::LOCALHOST, 0).into()
        };
        let mut endpoints = Vec::new();
        for _ in 0..cfg.endpoints.min(cfg.count) {
            endpoints.push(quinn::Endpoint::client(local)?);
        }
        let (go, go_rx) = watch::channel(None);
        let (ready_tx, mut ready_rx) = mpsc::channel(cfg.count.max(1));
        let gate = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
        let mut tasks = Vec::with_capacity(cfg.count);
        for i in 0..cfg.count {
            let cfg = cfg.clone();
            let token = tokens
                .get(i % tokens.len().max(1))
                .cloned()
                .unwrap_or_default();
            let endpoint = (!endpoints.is_empty()).then(|| endpoints[i % endpoints.len()].clone());
            let go = go_rx.clone();
            let ready = ready_tx.clone();
            let gate = Arc::clone(&gate);
            tasks.push(tokio::spawn(async move {
                bot(cfg, token, endpoint, gate, ready, go).await
            }));
        }
        drop(ready_tx);
        let (mut connected, mut failed) = (0, 0);
        while let Some(ok) = ready_rx.recv().await {
            if ok {
                connected += 1;
            } else {
                failed += 1;
            }
        }
        Ok(Fleet {
            bots: cfg.count,
            tasks,
            go,
            connected,
            failed,
            connect_time: started.elapsed(),
            _endpoints: endpoints,
        })
    }

    /// Bots connected with a session.
    pub fn connected(&self) -> usize {
        self.connected
    }

    /// Bots that could not connect.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// How long connecting the fleet took.
    pub fn connect_time(&self) -> Duration {
        self.connect_time
    }

    /// Plays for `duration`, then closes every connection and reports.
    pub async fn play(self, duration: Duration) -> BotReport {
        let started = Instant::now();
        let _ = self.go.send(Some(started + duration));
        let mut report = BotReport {
            bots: self.bots,
            connected: self.connected,
            connect_time: self.connect_time,
            ..BotReport::default()
        };
        let (mut to_event, mut to_ack) = (Vec::new(), Vec::new());
        let (mut until_tick, mut tick_to_event) = (Vec::new(), Vec::new());
        for t in self.tasks {
            let s = match t.await {
                Ok(s) => s,
                Err(e) => {
                    let mut s = BotStats::default();
                    s.error("bot task", &e);
                    s
                }
            };
            report.held += usize::from(s.held);
            report.commands += s.commands;
            for (k, v) in s.rejected {
                *report.rejected.entry(k).or_default() += v;
            }
            for (k, v) in s.errors {
                *report.errors.entry(k).or_default() += v;
            }
            report.sessions_started += s.started;
            report.sessions_finished += s.finished;
            report.reflex.0 += s.reflex.0;
            report.reflex.1 += s.reflex.1;
            to_event.extend(s.to_event);
            to_ack.extend(s.to_ack);
            until_tick.extend(s.until_tick);
            tick_to_event.extend(s.tick_to_event);
        }
        report.elapsed = started.elapsed();
        report.command_to_event = Latencies::from(to_event);
        report.command_to_ack = Latencies::from(to_ack);
        report.until_tick = Latencies::from(until_tick);
        report.tick_to_event = Latencies::from(tick_to_event);
        report
    }
}

/// All three phases: log in, connect, play for `duration`.
pub async fn run(cfg: &BotConfig, duration: Duration) -> Result<BotReport, BotError> {
    let tokens = login(cfg).await?;
    let fleet = Fleet::launch(cfg, &tokens).await?;
    Ok(fleet.play(duration).await)
}

fn uniform(range: (Duration, Duration)) -> Duration {
    let (lo, hi) = range;
    if hi <= lo {
        return lo;
    }
    rand::rng().random_range(lo..=hi)
}

/// The bot's estimate of the server's world clock (for reflex input stamps).
#[derive(Default)]
struct Clock {
    sync: Option<TimeSync>,
    anchor: Option<(i64, Instant)>,
}

impl Clock {
    fn now(&self) -> i64 {
        if let Some(s) = &self.sync {
            return s.server_now_ms();
        }
        self.anchor.map_or(0, |(ms, at)| {
            ms + i64::try_from(at.elapsed().as_millis()).unwrap_or(0)
        })
    }

    fn saw(&mut self, at_ms: i64) {
        if self.sync.is_none() && self.anchor.is_none_or(|_| at_ms > self.now()) {
            self.anchor = Some((at_ms, Instant::now()));
        }
    }
}

/// What the bot will do next, and when.
enum Plan {
    Choose(String),
    React(u32, u64),
    NewSession,
}

/// A command waiting for its answer.
struct Inflight {
    id: u64,
    sent: Instant,
    evented: bool,
    reflex: bool,
}

async fn connect_bot(
    cfg: &BotConfig,
    token: &str,
    endpoint: Option<quinn::Endpoint>,
) -> Result<(Client, u64), (&'static str, ClientError)> {
    let opts = ConnectOptions {
        timeout: Duration::from_secs(30),
        endpoint,
        ..ConnectOptions::default()
    };
    let mut c = Client::connect_with(cfg.quic, &cfg.server_name, cfg.trust.clone(), opts)
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

async fn bot(
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
    let mut clock = Clock {
        sync: c.time_sync(3).await.ok(),
        anchor: None,
    };
    // Idle (reading, heartbeating) until the start signal.
    let mut state = State::default();
    let deadline = loop {
        if let Some(d) = *go.borrow_and_update() {
            break d;
        }
        tokio::select! {
            changed = go.changed() => if changed.is_err() { return stats; },
            msg = c.recv_within(HEARTBEAT) => match msg {
                Ok(msg) => state.on_message(msg, &mut clock, &mut stats),
                Err(ClientError::Timeout(_)) => {
                    if let Err(e) = c.send(&ClientMessage::Heartbeat { client_time_ms: 0 }).await {
                        stats.error("connection lost", &e);
                        return stats;
                    }
                }
                Err(e) => {
                    stats.error("connection lost", &e);
                    return stats;
                }
            },
        }
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

/// What a bot knows of its session.
#[derive(Default)]
struct State {
    /// Offered choices: edge and the local instant it is revealed.
    choices: Vec<(String, Instant)>,
    prompt: Option<(u32, u64, Instant)>,
    ended: bool,
    inflight: Option<Inflight>,
    next_request: u64,
    last_sent: Option<Instant>,
}

impl State {
    fn on_message(&mut self, msg: ServerMessage, clock: &mut Clock, stats: &mut BotStats) {
        let received = Instant::now();
        match msg {
            ServerMessage::Event { at_ms, event, .. } => {
                clock.saw(at_ms);
                if let Some(f) = self.inflight.as_mut()
                    && !f.evented
                {
                    f.evented = true;
                    stats.to_event.push(micros(received - f.sent));
                    if let Some(sync) = &clock.sync {
                        stats
                            .until_tick
                            .push((at_ms - sync.server_ms_at(f.sent)) * 1000);
                        stats
                            .tick_to_event
                            .push((sync.server_ms_at(received) - at_ms) * 1000);
                    }
                }
                match event {
                    GameEvent::NodeEntered { .. } => {
                        self.choices.clear();
                        self.prompt = None;
                    }
                    GameEvent::ChoicesOffered { choices, .. } => {
                        self.choices = choices
                            .into_iter()
                            .map(|ch| {
                                let wait = ch.available_at_ms.saturating_sub(at_ms).max(0);
                                let wait = u64::try_from(wait).unwrap_or(0);
                                (ch.edge, received + Duration::from_millis(wait))
                            })
                            .collect();
                    }
                    GameEvent::MiniGamePrompt { round, nonce, .. } => {
                        self.prompt = Some((round, nonce, received));
                    }
                    GameEvent::MiniGameRound { hit, .. } => {
                        self.prompt = None;
                        if hit {
                            stats.reflex.1 += 1;
                        }
                    }
                    GameEvent::SessionEnded { .. } => {
                        self.ended = true;
                        self.choices.clear();
                        self.prompt = None;
                        stats.finished += 1;
                    }
                    _ => {}
                }
            }
            ServerMessage::Ack { request_id, .. } => self.answered(request_id, None, stats),
            ServerMessage::Rejected {
                request_id, code, ..
            } => self.answered(request_id, Some(code), stats),
            _ => {}
        }
    }

    fn answered(&mut self, request_id: u64, rejected: Option<String>, stats: &mut BotStats) {
        let Some(f) = self.inflight.take_if(|f| f.id == request_id) else {
            return;
        };
        let took = micros(f.sent.elapsed());
        if !f.evented {
            // Nothing was caused (a rejection): the answer is the first news.
            stats.to_event.push(took);
        }
        stats.to_ack.push(took);
        stats.commands += 1;
        if f.reflex {
            stats.reflex.0 += 1;
        }
        if let Some(code) = rejected {
            *stats.rejected.entry(code).or_default() += 1;
        }
    }

    /// The next thing to do and when, unless waiting on the server.
    fn plan(&self, cfg: &BotConfig) -> Option<(Plan, Instant)> {
        if self.inflight.is_some() {
            return None;
        }
        if self.ended {
            return Some((Plan::NewSession, Instant::now()));
        }
        if let Some((round, nonce, at)) = self.prompt {
            return Some((Plan::React(round, nonce), at + uniform(cfg.reaction)));
        }
        if self.choices.is_empty() {
            return None;
        }
        let i = rand::rng().random_range(0..self.choices.len());
        let (edge, revealed) = &self.choices[i];
        let base = (*revealed).max(Instant::now());
        Some((Plan::Choose(edge.clone()), base + uniform(cfg.think)))
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

async fn play(
    cfg: &BotConfig,
    c: &mut Client,
    state: &mut State,
    clock: &mut Clock,
    deadline: tokio::time::Instant,
    stats: &mut BotStats,
) -> Result<(), (&'static str, ClientError)> {
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
                let reset = matches!(
                    &msg,
                    ServerMessage::Event { event: GameEvent::NodeEntered { .. }
                        | GameEvent::ChoicesOffered { .. }
                        | GameEvent::MiniGamePrompt { .. }
                        | GameEvent::MiniGameRound { .. }
                        | GameEvent::SessionEnded { .. }, .. }
                );
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
                match planned.take() {
                    Some((Plan::NewSession, _)) => {
                        state.ended = false;
                        c.create_session(cfg.scene.as_deref())
                            .await
                            .map_err(|e| ("create session", e))?;
                        stats.started += 1;
                        state.last_sent = Some(Instant::now());
                    }
                    Some((plan, _)) => {
                        let (command, reflex) = match plan {
                            Plan::Choose(edge) => (GameCommand::Choose { edge }, false),
                            Plan::React(round, nonce) => {
                                state.prompt = None;
                                (
                                    GameCommand::MiniGameInput {
                                        round,
                                        nonce,
                                        client_time_ms: clock.now(),
                                    },
                                    true,
                                )
                            }
                            Plan::NewSession => continue,
                        };
                        state.next_request += 1;
                        let id = state.next_request;
                        let sent = Instant::now();
                        c.command(id, command).await.map_err(|e| ("connection lost", e))?;
                        state.inflight = Some(Inflight { id, sent, evented: false, reflex });
                        state.last_sent = Some(sent);
                    }
                    None => {
                        // Idle: keep the connection alive.
                        c.send(&ClientMessage::Heartbeat { client_time_ms: 0 })
                            .await
                            .map_err(|e| ("connection lost", e))?;
                        state.last_sent = Some(Instant::now());
                    }
                }
            }
        }
    }
}
