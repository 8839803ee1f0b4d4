//! Load bots: each bot has its own connection (over the [`Target`]'s transport) and
//! game session, plays random
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
//!
//! Files: `mod.rs` the settings ([`BotConfig`]) and the account pool ([`login`]);
//! `fleet.rs` the load runner ([`Fleet`]); `bot.rs` one bot's task (connect, idle,
//! play loop); `behaviour.rs` what a bot knows of its session and what it does next;
//! `report.rs` the latency statistics and the run's [`BotReport`].

mod behaviour;
mod bot;
mod fleet;
mod report;

pub use fleet::Fleet;
pub use report::{BotReport, Latencies};

use std::time::Duration;

use crate::Target;
use crate::rest::{Rest, RestError};

/// Bot run settings.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// REST base URL, e.g. `http://127.0.0.1:8080`.
    pub http: String,
    /// Where the game channel is, over which transport.
    pub target: Target,
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
    /// QUIC and WebTransport: bots share this many client UDP endpoints (0: one per
    /// bot).
    pub endpoints: usize,
    /// Start scene (the world's start scene when `None`).
    pub scene: Option<String>,
}

impl BotConfig {
    /// Defaults for everything but the addresses.
    pub fn new(http: &str, target: Target) -> BotConfig {
        BotConfig {
            http: http.trim_end_matches('/').to_owned(),
            target,
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
    /// The target is unusable (a bad URL).
    #[error(transparent)]
    Target(#[from] crate::ClientError),
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

/// All three phases: log in, connect, play for `duration`.
pub async fn run(cfg: &BotConfig, duration: Duration) -> Result<BotReport, BotError> {
    let tokens = login(cfg).await?;
    let fleet = Fleet::launch(cfg, &tokens).await?;
    Ok(fleet.play(duration).await)
}
