//! The load runner: [`Fleet`] connects every bot (each its own task), starts them
//! together, and gathers their figures into a [`BotReport`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};

use super::BotConfig;
use super::BotError;
use super::bot::bot;
use super::report::{BotReport, BotStats, Tally};
use crate::Transport;

/// Connected bots, idling until [`Fleet::play`].
pub struct Fleet {
    bots: usize,
    transport: Transport,
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
        let mut endpoints = Vec::new();
        if let Some(local) = cfg.target.local_udp_addr()? {
            for _ in 0..cfg.endpoints.min(cfg.count) {
                endpoints.push(quinn::Endpoint::client(local)?);
            }
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
            transport: cfg.target.transport(),
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
        let report = BotReport {
            bots: self.bots,
            transport: self.transport,
            connected: self.connected,
            connect_time: self.connect_time,
            ..BotReport::default()
        };
        let mut tally = Tally::new(report);
        for t in self.tasks {
            let s = match t.await {
                Ok(s) => s,
                Err(e) => {
                    let mut s = BotStats::default();
                    s.error("bot task", &e);
                    s
                }
            };
            tally.add(s);
        }
        tally.finish(started.elapsed())
    }
}
