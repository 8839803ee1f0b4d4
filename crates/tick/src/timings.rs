//! Per-system timings from bevy's system spans.
//!
//! With bevy_ecs's `trace` feature every system run enters a span named `system` with
//! a `name` field. [`SystemTimingLayer`] (installed in the process's tracing
//! subscriber) times each enter→exit and adds it to a process-wide table that
//! [`system_timings`] reads. Without the layer installed the table stays empty and
//! the spans cost only a disabled-callsite check.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    runs: u64,
    total_ns: u64,
    max_ns: u64,
    last_ns: u64,
}

static TABLE: LazyLock<Mutex<HashMap<String, Timing>>> = LazyLock::new(Default::default);

/// Figures of one system since the process started.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SystemTiming {
    pub name: String,
    pub runs: u64,
    pub total_seconds: f64,
    pub mean_us: f64,
    pub max_us: f64,
    pub last_us: f64,
}

/// All systems seen so far, slowest total first.
pub fn system_timings() -> Vec<SystemTiming> {
    let table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<SystemTiming> = table
        .iter()
        .map(|(name, t)| SystemTiming {
            name: name.clone(),
            runs: t.runs,
            total_seconds: t.total_ns as f64 / 1e9,
            mean_us: if t.runs == 0 {
                0.0
            } else {
                t.total_ns as f64 / t.runs as f64 / 1e3
            },
            max_us: t.max_ns as f64 / 1e3,
            last_us: t.last_ns as f64 / 1e3,
        })
        .collect();
    out.sort_by(|a, b| {
        b.total_seconds
            .total_cmp(&a.total_seconds)
            .then(a.name.cmp(&b.name))
    });
    out
}

struct SystemName(String);
struct Entered(Instant);

struct NameVisitor(Option<String>);

impl tracing::field::Visit for NameVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "name" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" && self.0.is_none() {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

/// Times bevy system spans. Add it to the subscriber with [`SystemTimingLayer::filter`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTimingLayer;

impl SystemTimingLayer {
    /// Only bevy's `system` spans: pair with `.with_filter(SystemTimingLayer::filter())`.
    pub fn filter<S>() -> impl Filter<S> + Send + Sync + 'static {
        tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.name() == "system" && m.target().starts_with("bevy_ecs")
        })
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SystemTimingLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = NameVisitor(None);
        attrs.record(&mut v);
        if let (Some(name), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(SystemName(name));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().replace(Entered(Instant::now()));
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(Entered(start)) = ext.remove::<Entered>() else {
            return;
        };
        let Some(SystemName(name)) = ext.get_mut::<SystemName>() else {
            return;
        };
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
        let t = match table.get_mut(name.as_str()) {
            Some(t) => t,
            None => table.entry(name.clone()).or_default(),
        };
        t.runs += 1;
        t.total_ns = t.total_ns.saturating_add(ns);
        t.max_ns = t.max_ns.max(ns);
        t.last_ns = ns;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bevy_app::{App, FixedUpdate};
    use tracing_subscriber::prelude::*;

    fn busy_system_for_timing_test() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }

    #[test]
    fn times_each_system_run() {
        let subscriber = tracing_subscriber::registry()
            .with(SystemTimingLayer.with_filter(SystemTimingLayer::filter()));
        tracing::subscriber::with_default(subscriber, || {
            let mut app = App::new();
            app.add_plugins(crate::TickPlugin {
                period: std::time::Duration::from_millis(10),
            })
            .add_systems(FixedUpdate, busy_system_for_timing_test);
            for n in 1..=3 {
                crate::run_tick(&mut app, n);
            }
        });
        let t = system_timings()
            .into_iter()
            .find(|t| t.name.contains("busy_system_for_timing_test"))
            .unwrap();
        assert_eq!(t.runs, 3);
        assert!(t.mean_us >= 1000.0 && t.max_us >= t.mean_us, "{t:?}");
    }
}
