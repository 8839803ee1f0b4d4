//! Load generator: bots that log in over REST, play random valid choices over QUIC
//! and measure command→answer latency (the answer comes after the command's events,
//! once they are durable).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protocol::v1::{GameCommand, GameEvent, ServerMessage};
use rand::Rng;

use crate::{Client, ClientError, Trust};

/// Bot run settings.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// REST base URL, e.g. `http://127.0.0.1:8080`.
    pub http: String,
    pub quic: SocketAddr,
    pub trust: Trust,
    pub count: usize,
    pub duration: Duration,
    /// Distinguishes accounts of several runs.
    pub tag: String,
}

/// Figures of a run.
#[derive(Clone, Debug, Default)]
pub struct BotReport {
    pub connected: usize,
    pub commands: u64,
    pub errors: u64,
    pub rejected: u64,
    pub sessions_finished: u64,
    pub elapsed: Duration,
    /// Command→ack latencies, sorted (µs).
    pub latencies_us: Vec<u64>,
}

impl BotReport {
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p * self.latencies_us.len() as f64).ceil() as usize)
            .clamp(1, self.latencies_us.len());
        self.latencies_us[rank - 1] as f64 / 1000.0
    }
    pub fn per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64().max(0.001)
    }
}

impl std::fmt::Display for BotReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bots connected {} | commands {} ({:.0}/s) | command→ack p50 {:.1} ms p99 {:.1} ms max {:.1} ms | rejected {} | errors {} | sessions finished {}",
            self.connected,
            self.commands,
            self.per_second(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
            self.rejected,
            self.errors,
            self.sessions_finished
        )
    }
}

#[derive(Default)]
struct Counters {
    commands: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    finished: AtomicU64,
    connected: AtomicU64,
}

/// Registers (or logs in) an account and returns its token.
pub async fn login(http: &reqwest::Client, base: &str, email: &str) -> Result<String, String> {
    let creds = serde_json::json!({"email": email, "password": "bot-password-123"});
    let _ = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&creds)
        .send()
        .await;
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&creds)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("login failed: {body}"))
}

/// Runs `count` bots for `duration` and reports.
pub async fn run(cfg: BotConfig) -> BotReport {
    let counters = Arc::new(Counters::default());
    let http = reqwest::Client::new();
    let start_barrier = Arc::new(tokio::sync::Barrier::new(cfg.count + 1));
    let mut tasks = Vec::new();
    for i in 0..cfg.count {
        let cfg = cfg.clone();
        let http = http.clone();
        let counters = Arc::clone(&counters);
        let barrier = Arc::clone(&start_barrier);
        tasks.push(tokio::spawn(async move {
            let email = format!("bot-{}-{i}@bots.example.com", cfg.tag);
            let setup = async {
                let token = login(&http, &cfg.http, &email)
                    .await
                    .map_err(ClientError::Config2)?;
                let mut c = Client::connect(cfg.quic, "localhost", cfg.trust.clone()).await?;
                c.authenticate(&token).await?;
                Ok::<_, ClientError>(c)
            };
            let client = setup.await;
            if client.is_ok() {
                counters.connected.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            barrier.wait().await;
            let mut lat = Vec::new();
            if let Ok(c) = client {
                let until = Instant::now() + cfg.duration;
                if let Err(e) = play(c, until, &counters, &mut lat).await {
                    tracing::warn!(error = %e, "bot failed");
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    start_barrier.wait().await;
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    all.sort_unstable();
    BotReport {
        connected: counters.connected.load(Ordering::Relaxed) as usize,
        commands: counters.commands.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        rejected: counters.rejected.load(Ordering::Relaxed),
        sessions_finished: counters.finished.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies_us: all,
    }
}

async fn play(
    mut c: Client,
    until: Instant,
    counters: &Counters,
    lat: &mut Vec<u64>,
) -> Result<(), ClientError> {
    let mut req = 0u64;
    'session: while Instant::now() < until {
        c.create_session(None).await?;
        let mut choices: Vec<String> = Vec::new();
        let mut prompt: Option<(u32, u64, i64)> = None;
        loop {
            if Instant::now() >= until {
                break 'session;
            }
            // Wait for something to do.
            while choices.is_empty() && prompt.is_none() {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break 'session;
                }
                match c.recv_within(left.min(Duration::from_secs(10))).await {
                    Ok(ServerMessage::Event { event, .. }) => match event {
                        GameEvent::ChoicesOffered { choices: ch, .. } => {
                            choices = ch.into_iter().map(|c| c.edge).collect();
                        }
                        GameEvent::MiniGamePrompt {
                            round,
                            nonce,
                            opens_at_ms,
                            ..
                        } => prompt = Some((round, nonce, opens_at_ms)),
                        GameEvent::SessionEnded { .. } => {
                            counters.finished.fetch_add(1, Ordering::Relaxed);
                            continue 'session;
                        }
                        _ => {}
                    },
                    Ok(_) => {}
                    Err(ClientError::Timeout(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            let command = if let Some((round, nonce, opens)) = prompt.take() {
                GameCommand::MiniGameInput {
                    round,
                    nonce,
                    client_time_ms: opens + 20,
                }
            } else {
                let i = rand::rng().random_range(0..choices.len());
                GameCommand::Choose {
                    edge: choices[i].clone(),
                }
            };
            req += 1;
            let sent = Instant::now();
            c.command(req, command).await?;
            let mut ended = false;
            loop {
                match c.recv_within(Duration::from_secs(10)).await? {
                    ServerMessage::Event { event, .. } => match event {
                        GameEvent::ChoicesOffered { choices: ch, .. } => {
                            choices = ch.into_iter().map(|c| c.edge).collect();
                        }
                        GameEvent::MiniGamePrompt {
                            round,
                            nonce,
                            opens_at_ms,
                            ..
                        } => prompt = Some((round, nonce, opens_at_ms)),
                        GameEvent::SessionEnded { .. } => ended = true,
                        GameEvent::NodeEntered { .. } => choices.clear(),
                        _ => {}
                    },
                    ServerMessage::Ack { request_id, .. } if request_id == req => {
                        lat.push(sent.elapsed().as_micros() as u64);
                        counters.commands.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    ServerMessage::Rejected {
                        request_id, code, ..
                    } if request_id == req => {
                        lat.push(sent.elapsed().as_micros() as u64);
                        counters.commands.fetch_add(1, Ordering::Relaxed);
                        if code == "not_revealed" || code == "condition_false" {
                            // Valid but early or no longer possible: wait a little.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        } else {
                            counters.rejected.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    _ => {}
                }
            }
            if ended {
                counters.finished.fetch_add(1, Ordering::Relaxed);
                continue 'session;
            }
        }
    }
    c.close().await;
    Ok(())
}
