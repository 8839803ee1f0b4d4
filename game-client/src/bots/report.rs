//! The figures of a bot run: latency samples with percentiles ([`Latencies`]), one
//! bot's counters ([`BotStats`]), and the fleet's [`BotReport`] (text and JSON).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Transport;

/// Latency samples (µs) with percentiles.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    sorted: Vec<i64>,
}

impl Latencies {
    pub(super) fn from(mut v: Vec<i64>) -> Latencies {
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
    /// The transport the bots spoke.
    pub transport: Transport,
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
            "transport": self.transport.name(),
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
            "bots {} over {} · connected {} (in {:.1} s) · held to the end {}",
            self.bots,
            self.transport,
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
pub(super) struct BotStats {
    pub(super) connected: bool,
    pub(super) held: bool,
    pub(super) commands: u64,
    pub(super) rejected: BTreeMap<String, u64>,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) started: u64,
    pub(super) finished: u64,
    pub(super) reflex: (u64, u64),
    pub(super) to_event: Vec<i64>,
    pub(super) to_ack: Vec<i64>,
    pub(super) until_tick: Vec<i64>,
    pub(super) tick_to_event: Vec<i64>,
}

impl BotStats {
    pub(super) fn error(&mut self, kind: &str, e: &dyn std::fmt::Display) {
        tracing::warn!(error = %e, kind, "bot error");
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }
}

/// The fleet's figures while its bots finish: counters summed, latency samples pooled.
pub(super) struct Tally {
    report: BotReport,
    to_event: Vec<i64>,
    to_ack: Vec<i64>,
    until_tick: Vec<i64>,
    tick_to_event: Vec<i64>,
}

impl Tally {
    /// Starts from `report` (its run figures: bots, connected, connect time).
    pub(super) fn new(report: BotReport) -> Tally {
        Tally {
            report,
            to_event: Vec::new(),
            to_ack: Vec::new(),
            until_tick: Vec::new(),
            tick_to_event: Vec::new(),
        }
    }

    /// Adds one bot's figures.
    pub(super) fn add(&mut self, s: BotStats) {
        let report = &mut self.report;
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
        self.to_event.extend(s.to_event);
        self.to_ack.extend(s.to_ack);
        self.until_tick.extend(s.until_tick);
        self.tick_to_event.extend(s.tick_to_event);
    }

    /// The report of a run that played for `elapsed`.
    pub(super) fn finish(self, elapsed: Duration) -> BotReport {
        let mut report = self.report;
        report.elapsed = elapsed;
        report.command_to_event = Latencies::from(self.to_event);
        report.command_to_ack = Latencies::from(self.to_ack);
        report.until_tick = Latencies::from(self.until_tick);
        report.tick_to_event = Latencies::from(self.tick_to_event);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_in_ms() {
        let l = Latencies::from((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!(l.count(), 100);
        assert_eq!(l.percentile_ms(0.5), 50.0);
        assert_eq!(l.percentile_ms(0.99), 99.0);
        assert_eq!(l.percentile_ms(1.0), 100.0);
        assert_eq!(Latencies::default().percentile_ms(0.5), 0.0);
    }

    #[test]
    fn a_tally_sums_bots_and_pools_their_samples() {
        let bot = |errors: u64, sample: i64| {
            let mut s = BotStats {
                held: errors == 0,
                commands: 2,
                to_event: vec![sample],
                to_ack: vec![sample],
                ..BotStats::default()
            };
            if errors > 0 {
                s.errors.insert("connection lost".into(), errors);
            }
            s
        };
        let mut tally = Tally::new(BotReport {
            bots: 2,
            connected: 2,
            ..BotReport::default()
        });
        tally.add(bot(0, 1000));
        tally.add(bot(1, 3000));
        let report = tally.finish(Duration::from_secs(2));
        assert_eq!((report.held, report.commands), (1, 4));
        assert_eq!(report.error_count(), 1);
        assert_eq!(report.per_second(), 2.0);
        assert_eq!(report.command_to_event.count(), 2);
        assert_eq!(report.command_to_ack.percentile_ms(1.0), 3.0);
        let json = report.json();
        assert_eq!(json["errors_total"], 1);
        assert!(report.to_string().contains("errors 1 (connection lost 1)"));
    }
}
