//! Tracing events into the `log_entry` table, in batches, never blocking the caller.
//!
//! [`DbLogLayer`] (installed by `telemetry::init`) turns each event at INFO or more
//! severe into a [`LogEntry`], with the ids found on the event or its spans
//! (`request_id`, `user_id`, `session_id`, `job_id`, `provider`, `account_id`), and
//! offers it to every registered sink with `try_send`. A full sink drops the line and
//! counts it ([`dropped`]). Each running server registers one sink and drains it with
//! [`spawn_writer`], which inserts a batch per round trip.
//!
//! The admin log stays bounded: the writer purges lines past `log.retention_days` or
//! beyond `log.max_rows`, and request lines are sampled. An error answer's `response`
//! line is always kept; of the successful ones, one in `log.request_sample`. Every
//! response is counted into a summary line (`http responses`) written every
//! `log.request_summary_secs`, so a load test leaves one line a minute, not one a
//! request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};
use store::PgPool;
use store::logs::LogEntry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// The ids copied into their own columns.
const ID_FIELDS: [&str; 6] = [
    "request_id",
    "user_id",
    "session_id",
    "job_id",
    "provider",
    "account_id",
];

/// Registered sinks with their ids.
type Sinks = Vec<(u64, mpsc::Sender<LogEntry>)>;

static SINKS: LazyLock<Mutex<Sinks>> = LazyLock::new(Default::default);
static SINK_COUNT: AtomicUsize = AtomicUsize::new(0);
static NEXT_SINK: AtomicU64 = AtomicU64::new(1);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// One successful request line in this many is kept (0: none).
static REQUEST_SAMPLE: AtomicU64 = AtomicU64::new(100);
static REQUEST_SEEN: AtomicU64 = AtomicU64::new(0);
static SUMMARY: Mutex<Summary> = Mutex::new(Summary::new());

/// Responses counted since the last summary line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    /// By status class: 1xx … 5xx.
    by_class: [u64; 5],
    slowest_ms: f64,
}

impl Summary {
    const fn new() -> Self {
        Summary {
            by_class: [0; 5],
            slowest_ms: 0.0,
        }
    }

    fn total(&self) -> u64 {
        self.by_class.iter().sum()
    }
}

/// Sets how many successful request lines make one kept line (1: every line; 0: none).
/// Process-wide, like the layer.
pub fn set_request_sample(every: u32) {
    REQUEST_SAMPLE.store(u64::from(every), Ordering::Relaxed);
}

/// Counts a `response` event into the summary and says whether its line is kept.
fn keep_response(status: u64, latency_ms: f64) -> bool {
    {
        let mut s = SUMMARY.lock().unwrap_or_else(|p| p.into_inner());
        let class = (status / 100).clamp(1, 5) as usize - 1;
        s.by_class[class] += 1;
        if latency_ms > s.slowest_ms {
            s.slowest_ms = latency_ms;
        }
    }
    if status >= 400 {
        return true;
    }
    match REQUEST_SAMPLE.load(Ordering::Relaxed) {
        0 => false,
        every => REQUEST_SEEN
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(every),
    }
}

/// Takes the counts since the last call: the summary line, if anything was counted.
fn take_summary(window: Duration) -> Option<LogEntry> {
    let s = std::mem::replace(
        &mut *SUMMARY.lock().unwrap_or_else(|p| p.into_inner()),
        Summary::new(),
    );
    if s.total() == 0 {
        return None;
    }
    let mut fields = Map::new();
    fields.insert("responses".into(), Value::from(s.total()));
    for (i, n) in s.by_class.iter().enumerate() {
        if *n > 0 {
            fields.insert(format!("{}xx", i + 1), Value::from(*n));
        }
    }
    fields.insert("slowest_ms".into(), Value::from(s.slowest_ms));
    fields.insert("window_secs".into(), Value::from(window.as_secs_f64()));
    Some(LogEntry {
        id: 0,
        ts: Utc::now(),
        level: "INFO".into(),
        target: "api".into(),
        message: "http responses".into(),
        fields: Value::Object(fields),
        request_id: None,
        user_id: None,
        session_id: None,
        job_id: None,
        provider: None,
        account_id: None,
    })
}

/// Lines dropped because a sink was full, since the process started.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A registered sink; deregistered on drop.
pub struct Sink {
    id: u64,
    pub rx: mpsc::Receiver<LogEntry>,
}

impl Sink {
    pub fn register(capacity: usize) -> Sink {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = NEXT_SINK.fetch_add(1, Ordering::Relaxed);
        let mut sinks = SINKS.lock().unwrap_or_else(|p| p.into_inner());
        sinks.push((id, tx));
        SINK_COUNT.store(sinks.len(), Ordering::Relaxed);
        Sink { id, rx }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let mut sinks = SINKS.lock().unwrap_or_else(|p| p.into_inner());
        sinks.retain(|(id, _)| *id != self.id);
        SINK_COUNT.store(sinks.len(), Ordering::Relaxed);
    }
}

fn offer(entry: LogEntry) {
    let sinks = SINKS.lock().unwrap_or_else(|p| p.into_inner());
    for (_, tx) in sinks.iter() {
        if tx.try_send(entry.clone()).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Collected {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Visit for Collected {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

impl Collected {
    fn put(&mut self, field: &Field, v: Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_owned(), v);
        }
    }
}

/// Ids recorded on a span.
#[derive(Default, Clone)]
struct SpanIds(Map<String, Value>);

impl Visit for SpanIds {
    fn record_str(&mut self, field: &Field, value: &str) {
        if ID_FIELDS.contains(&field.name()) {
            self.0
                .insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if ID_FIELDS.contains(&field.name()) {
            let s = format!("{value:?}");
            self.0.insert(
                field.name().to_owned(),
                Value::String(s.trim_matches('"').to_owned()),
            );
        }
    }
}

/// Copies events to the registered sinks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbLogLayer;

impl DbLogLayer {
    /// Events and spans at INFO and more severe, except the database driver's own lines
    /// (which the writer itself would cause) and bevy's per-system spans. The ids this
    /// layer copies live on INFO spans (`http`, `quic_conn`); enabling spans of every
    /// level would make quinn build its per-packet and per-frame TRACE spans, which cost
    /// the QUIC tasks about a tenth of their CPU under load.
    pub fn filter<S>() -> impl Filter<S> + Send + Sync + 'static {
        tracing_subscriber::filter::filter_fn(|m| {
            let t = m.target();
            !t.starts_with("sqlx") && !t.starts_with("bevy_ecs") && *m.level() <= Level::INFO
        })
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for DbLogLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut ids = SpanIds::default();
        attrs.record(&mut ids);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ids);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(ids) = ext.get_mut::<SpanIds>() {
                values.record(ids);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if SINK_COUNT.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut c = Collected::default();
        event.record(&mut c);
        let mut ids: Map<String, Value> = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(s) = span.extensions().get::<SpanIds>() {
                    ids.extend(s.0.clone());
                }
            }
        }
        for k in ID_FIELDS {
            if let Some(v) = c.fields.get(k) {
                ids.insert(k.to_owned(), v.clone());
            }
        }
        let id = |k: &str| {
            ids.get(k).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let meta = event.metadata();
        if meta.target() == "api"
            && c.message.as_deref() == Some("response")
            && let Some(status) = c.fields.get("status").and_then(Value::as_u64)
        {
            let latency = c
                .fields
                .get("latency_ms")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            if !keep_response(status, latency) {
                return;
            }
        }
        offer(LogEntry {
            id: 0,
            ts: Utc::now(),
            level: meta.level().to_string(),
            target: meta.target().to_owned(),
            message: c.message.unwrap_or_default(),
            fields: Value::Object(c.fields),
            request_id: id("request_id"),
            user_id: id("user_id"),
            session_id: id("session_id"),
            job_id: id("job_id"),
            provider: id("provider"),
            account_id: id("account_id"),
        });
    }
}

/// What the writer keeps and how often it tidies up.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub retention: Duration,
    pub max_rows: u64,
    pub purge_every: Duration,
    pub summary_every: Duration,
}

impl WriterConfig {
    pub fn from_config(c: &crate::config::LogConfig) -> Self {
        let secs = |s: f64| Duration::from_secs_f64(if s.is_finite() { s.max(0.05) } else { 60.0 });
        WriterConfig {
            retention: Duration::from_secs(u64::from(c.retention_days) * 86_400),
            max_rows: c.max_rows,
            purge_every: secs(c.purge_interval_secs),
            summary_every: secs(c.request_summary_secs),
        }
    }
}

async fn purge(pool: &PgPool, cfg: &WriterConfig) {
    let older_than = Utc::now()
        - chrono::Duration::from_std(cfg.retention).unwrap_or(chrono::Duration::days(14));
    let cap = i64::try_from(cfg.max_rows).unwrap_or(i64::MAX);
    match store::logs::purge(pool, older_than, cap, 10_000).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "admin log purged"),
        Err(e) => eprintln!("log writer: purge failed: {e}"),
    }
}

/// Drains `sink` into the database in batches until `shutdown`, then flushes; writes
/// the request summary and purges old lines on the way.
pub fn spawn_writer(
    pool: PgPool,
    mut sink: Sink,
    cfg: WriterConfig,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(512);
        let mut summary = tokio::time::interval(cfg.summary_every);
        summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        summary.tick().await;
        let mut purges = tokio::time::interval(cfg.purge_every);
        purges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => None,
                line = sink.rx.recv() => line,
                _ = summary.tick() => {
                    if let Some(line) = take_summary(cfg.summary_every) {
                        batch.push(line);
                        write(&pool, &mut batch).await;
                    }
                    continue;
                }
                _ = purges.tick() => {
                    purge(&pool, &cfg).await;
                    continue;
                }
            };
            let Some(first) = first else { break };
            batch.push(first);
            // Gather what arrives within a short window, up to a batch.
            let until = tokio::time::Instant::now() + Duration::from_millis(50);
            while batch.len() < 500 {
                match tokio::time::timeout_at(until, sink.rx.recv()).await {
                    Ok(Some(line)) => batch.push(line),
                    _ => break,
                }
            }
            write(&pool, &mut batch).await;
        }
        while let Ok(line) = sink.rx.try_recv() {
            batch.push(line);
        }
        batch.extend(take_summary(cfg.summary_every));
        write(&pool, &mut batch).await;
    })
}

async fn write(pool: &PgPool, batch: &mut Vec<LogEntry>) {
    if let Err(e) = store::logs::insert_batch(pool, batch).await {
        // Not through tracing: that would feed the failure back into the sink.
        DROPPED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        eprintln!("log writer: {} lines lost: {e}", batch.len());
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LogEntry {
        LogEntry {
            id: 0,
            ts: Utc::now(),
            level: "INFO".into(),
            target: "t".into(),
            message: "m".into(),
            fields: Value::Null,
            request_id: None,
            user_id: None,
            session_id: None,
            job_id: None,
            provider: None,
            account_id: None,
        }
    }

    #[test]
    fn the_layer_wants_info_spans_but_not_quinns_per_packet_ones() {
        use tracing_subscriber::prelude::*;
        let subscriber =
            tracing_subscriber::registry().with(DbLogLayer.with_filter(DbLogLayer::filter()));
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::span_enabled!(target: "pixsim", Level::INFO));
            assert!(!tracing::span_enabled!(target: "quinn_proto::connection", Level::TRACE));
            assert!(!tracing::span_enabled!(target: "quinn::connection", Level::DEBUG));
            assert!(!tracing::event_enabled!(target: "sqlx::query", Level::WARN));
            assert!(tracing::event_enabled!(target: "pixsim", Level::WARN));
        });
    }

    #[test]
    fn request_lines_are_sampled_errors_kept_and_everything_summarized() {
        // One test touches the process-wide sample and summary, so nothing races it.
        let _ = take_summary(Duration::from_secs(1));
        set_request_sample(10);
        let kept = (0..100).filter(|_| keep_response(200, 1.0)).count();
        assert_eq!(kept, 10, "one success in ten");
        assert!((0..20).all(|_| keep_response(404, 2.0)), "4xx always kept");
        assert!(keep_response(503, 250.0), "5xx always kept");
        set_request_sample(0);
        assert!(!keep_response(204, 1.0));
        set_request_sample(1);
        assert!(keep_response(204, 1.0));
        let line = take_summary(Duration::from_secs(60)).expect("a summary");
        assert_eq!(line.message, "http responses");
        assert_eq!(line.fields["responses"], 123);
        assert_eq!(line.fields["2xx"], 102);
        assert_eq!(line.fields["4xx"], 20);
        assert_eq!(line.fields["5xx"], 1);
        assert_eq!(line.fields["slowest_ms"], 250.0);
        assert!(
            take_summary(Duration::from_secs(60)).is_none(),
            "counts reset"
        );
        set_request_sample(100);
    }

    #[test]
    fn a_full_sink_drops_and_counts_without_blocking() {
        let mut sink = Sink::register(1);
        let before = dropped();
        for _ in 0..3 {
            offer(entry());
        }
        assert!(dropped() >= before + 2);
        assert!(sink.rx.try_recv().is_ok());
        drop(sink);
        assert!(
            SINKS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .all(|(_, tx)| !tx.is_closed())
        );
    }
}
