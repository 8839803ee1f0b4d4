//! A lock-free latency histogram with fixed bucket bounds (Prometheus style), shared by
//! the tick figures and the game channel's durability figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bounds, in seconds, for latencies from 100 µs to 1 s.
pub const LATENCY_BOUNDS: [f64; 13] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Counts observations per bucket; cheap enough to record on any hot path (two relaxed
/// atomic adds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is +Inf.
    buckets: Box<[AtomicU64]>,
    total_ns: AtomicU64,
}

/// A cumulative view of a [`Histogram`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or below it)`, ending with `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// A histogram with the given upper bounds (ascending, in seconds) and +Inf.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            total_ns: AtomicU64::new(0),
        }
    }

    /// A histogram with [`LATENCY_BOUNDS`].
    pub fn latency() -> Self {
        Self::new(&LATENCY_BOUNDS)
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let bound = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        HistogramSnapshot {
            buckets,
            count: cumulative,
            sum_seconds: self.total_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

impl HistogramSnapshot {
    /// Appends the histogram in the Prometheus text format (0.0.4), with its `# HELP`
    /// and `# TYPE` lines.
    pub fn write_prometheus(&self, out: &mut String, name: &str, help: &str) {
        use std::fmt::Write as _;
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, count) in &self.buckets {
            if bound.is_infinite() {
                let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
            } else {
                let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
            }
        }
        let _ = writeln!(out, "{name}_sum {}", self.sum_seconds);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1); `None` when empty.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        self.buckets
            .iter()
            .find(|(_, c)| *c >= rank)
            .map(|(b, _)| *b)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_accumulate() {
        let h = Histogram::latency();
        h.observe(Duration::from_micros(50)); // ≤ 100 µs
        h.observe(Duration::from_micros(100)); // on the bound: same bucket
        h.observe(Duration::from_millis(3)); // ≤ 5 ms
        h.observe(Duration::from_secs(2)); // +Inf
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets.len(), LATENCY_BOUNDS.len() + 1);
        assert_eq!(s.buckets[0], (0.000_1, 2));
        let at = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.002_5), 2);
        assert_eq!(at(0.005), 3);
        assert_eq!(at(1.0), 3);
        assert_eq!(s.buckets.last().unwrap(), &(f64::INFINITY, 4));
        assert!((s.sum_seconds - 2.00315).abs() < 1e-9);
        assert_eq!(s.quantile_bound(0.5), Some(0.000_1));
        assert_eq!(s.quantile_bound(0.75), Some(0.005));
        assert_eq!(s.quantile_bound(1.0), Some(f64::INFINITY));
        assert_eq!(Histogram::latency().snapshot().quantile_bound(0.5), None);
        let mut text = String::new();
        s.write_prometheus(&mut text, "x_seconds", "Help.");
        assert!(text.starts_with("# HELP x_seconds Help.\n# TYPE x_seconds histogram\n"));
        assert!(text.contains("x_seconds_bucket{le=\"0.0001\"} 2\n"));
        assert!(text.contains(
            "x_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 2.00315\nx_seconds_count 4\n"
        ));
    }
}
