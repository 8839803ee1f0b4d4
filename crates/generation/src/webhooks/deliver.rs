//! The webhook loops of a process: the outbox writer, the refresh of the users with
//! endpoints, and the dispatcher that claims, sends, logs and reschedules messages.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use store::webhooks::{self as store_webhooks, AttemptResult, ClaimedMessage, NewEvent};
use tokio::sync::{Semaphore, mpsc};

use super::{message_id, sign};
use crate::guard::{Guard, GuardedClient, redact};
use crate::model::DeliveryStatus;
use crate::service::GenerationService;
use crate::shared::Shared;

/// Events written per outbox statement.
const WRITE_BATCH: usize = 512;
/// Messages claimed per query.
const CLAIM_BATCH: usize = 64;
/// Longest error text kept per attempt.
const MAX_ERROR_CHARS: usize = 300;
/// Attempt results waiting to be recorded, and recorded per statement.
const RECORD_QUEUE: usize = 4096;
const RECORD_BATCH: usize = 256;

impl GenerationService {
    /// Runs this process's webhook delivery until `shutdown` resolves: events of users
    /// with endpoints are written to the outbox from now on, and due messages are sent.
    /// Every process that emits events (servers, `pixsim-server worker`) runs it; any
    /// number may, they share the outbox. Calling it twice is a no-op the second time.
    pub fn run_webhooks(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        let cfg = shared.cfg.webhooks.clone();
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let first = shared.webhooks.tx.set(tx).is_ok();
        async move {
            if !first {
                return;
            }
            let client = match Guard::new(shared.cfg.guard.clone()).client(
                reqwest::Client::builder()
                    .timeout(cfg.timeout)
                    .connect_timeout(cfg.timeout)
                    .user_agent("PixSim-Webhooks/1"),
            ) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("webhooks disabled: no HTTP client: {e}");
                    return;
                }
            };
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let (results_tx, results_rx) = mpsc::channel(RECORD_QUEUE);
            let writer = tokio::spawn(write_outbox(shared.clone(), rx, stop_rx.clone()));
            let refresher = tokio::spawn(refresh_users(shared.clone(), stop_rx.clone()));
            let recorder = tokio::spawn(record_results(shared.clone(), results_rx));
            let dispatcher = tokio::spawn(dispatch(shared.clone(), client, results_tx, stop_rx));
            shutdown.await;
            let _ = stop_tx.send(true);
            // The dispatcher ends after its attempts in flight; then the recorder has
            // every result (its channel closes) and ends once they are written.
            for t in [writer, refresher, dispatcher, recorder] {
                let _ = t.await;
            }
        }
    }
}

async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Reads the users with endpoints now and every `refresh`.
async fn refresh_users(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = shared.cfg.webhooks.refresh;
    loop {
        match store_webhooks::users_with_endpoints(&shared.pool).await {
            Ok(users) => shared
                .webhooks
                .set_users(users.into_iter().collect::<HashSet<_>>()),
            Err(e) => tracing::warn!("reading webhook endpoints failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Writes queued events to the outbox in batches, in their order. A failed write is
/// retried (the events stay queued meanwhile); at shutdown what is queued is written.
async fn write_outbox(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<NewEvent>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut batch: Vec<NewEvent> = Vec::with_capacity(WRITE_BATCH);
    let mut stopping = false;
    loop {
        if batch.is_empty() {
            if stopping {
                while let Ok(ev) = rx.try_recv() {
                    batch.push(ev);
                    if batch.len() == WRITE_BATCH {
                        break;
                    }
                }
                if batch.is_empty() {
                    return;
                }
            } else {
                tokio::select! {
                    n = rx.recv_many(&mut batch, WRITE_BATCH) => if n == 0 { return },
                    _ = stopped(&mut stop) => { stopping = true; continue; }
                }
            }
        }
        match store_webhooks::enqueue(&shared.pool, &batch).await {
            Ok(n) => {
                batch.clear();
                if n > 0 {
                    shared.webhooks.wake.notify_one();
                }
            }
            Err(e) => {
                tracing::warn!(
                    events = batch.len(),
                    "writing webhook messages failed (retrying): {e}"
                );
                if stopping {
                    tracing::error!(events = batch.len(), "webhook events lost at shutdown: {e}");
                    batch.clear();
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopped(&mut stop) => stopping = true,
                }
            }
        }
    }
}

/// Claims due messages while attempt slots are free, sends each in its own task, and
/// sleeps until woken (messages written, an attempt ended) or `poll` passes. Prunes
/// old messages hourly.
async fn dispatch(
    shared: Arc<Shared>,
    client: GuardedClient,
    results: mpsc::Sender<AttemptResult>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let cfg = shared.cfg.webhooks.clone();
    let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let lease = (cfg.timeout + Duration::from_secs(30)).as_secs_f64();
    // The first prune a minute after start (not in the middle of a start-up), then
    // hourly.
    let mut next_prune = Instant::now() + Duration::from_secs(60);
    loop {
        if *stop.borrow() {
            break;
        }
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + Duration::from_secs(3600);
            let before = Utc::now()
                - chrono::Duration::from_std(cfg.retention).unwrap_or(chrono::Duration::days(7));
            match store_webhooks::prune(&shared.pool, before).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "old webhook messages deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!("pruning webhook messages failed: {e}"),
            }
        }
        let free = slots.available_permits().min(CLAIM_BATCH);
        let mut claimed = 0;
        if free > 0 {
            match store_webhooks::claim(&shared.pool, free as i64, lease).await {
                Ok(msgs) => {
                    claimed = msgs.len();
                    for m in msgs {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let shared = shared.clone();
                        let client = client.clone();
                        let results = results.clone();
                        tokio::spawn(async move {
                            let result = attempt(&shared, &client, m).await;
                            // A full queue waits: attempts slow down to what the
                            // database records.
                            let _ = results.send(result).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!("claiming webhook messages failed: {e}"),
            }
        }
        if claimed == 0 || claimed < free {
            tokio::select! {
                _ = shared.webhooks.wake.notified() => {}
                _ = tokio::time::sleep(cfg.poll) => {}
                _ = stopped(&mut stop) => break,
            }
        }
    }
    // Let attempts in flight end (each is bounded by the timeout).
    let _ = tokio::time::timeout(
        cfg.timeout + Duration::from_secs(1),
        slots.acquire_many(cfg.concurrency.max(1) as u32),
    )
    .await;
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        s.push_str(": ");
        s.push_str(&err.to_string());
        cur = err.source();
    }
    s
}

fn truncate(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_ERROR_CHARS) {
        s.truncate(i);
    }
    s
}

/// Records attempt results in batches (one statement each), then wakes the dispatcher:
/// a recorded delivery makes the next message of its subject due. A batch that fails
/// is dropped: its messages' leases run out and they are tried again.
async fn record_results(shared: Arc<Shared>, mut rx: mpsc::Receiver<AttemptResult>) {
    let mut batch: Vec<AttemptResult> = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        if let Err(e) = store_webhooks::record_many(&shared.pool, &batch).await {
            tracing::warn!(
                results = batch.len(),
                "recording webhook attempts failed: {e}"
            );
        }
        batch.clear();
        shared.webhooks.wake.notify_one();
    }
}

/// One attempt of one message: sign, POST, and the result to record (the message's
/// next state).
async fn attempt(shared: &Shared, client: &GuardedClient, m: ClaimedMessage) -> AttemptResult {
    let started_at = Utc::now();
    let t0 = Instant::now();
    let (status_code, error) = send(shared, client, &m).await;
    let ok = error.is_none();
    let schedule = &shared.cfg.webhooks.retry_schedule;
    let (status, retry_at) = if ok {
        (DeliveryStatus::Delivered, None)
    } else {
        match schedule.get(usize::try_from(m.round_attempt - 1).unwrap_or(usize::MAX)) {
            Some(wait) => (
                DeliveryStatus::Pending,
                Some(Utc::now() + chrono::Duration::from_std(*wait).unwrap_or_default()),
            ),
            None => (DeliveryStatus::Failed, None),
        }
    };
    if ok {
        shared.webhooks.delivered.fetch_add(1, Ordering::Relaxed);
    } else {
        shared
            .webhooks
            .failed_attempts
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            endpoint = %m.endpoint_id,
            message = %m.id,
            attempt = m.attempt,
            error = error.as_deref().unwrap_or_default(),
            "webhook attempt failed"
        );
    }
    AttemptResult {
        message_id: m.id,
        attempt: m.attempt,
        started_at,
        duration_ms: i32::try_from(t0.elapsed().as_millis()).unwrap_or(i32::MAX),
        status_code,
        error,
        status,
        retry_at,
    }
}

/// Sends one message: the receiver's status, and the error when it was not a 2xx.
async fn send(
    shared: &Shared,
    client: &GuardedClient,
    m: &ClaimedMessage,
) -> (Option<i32>, Option<String>) {
    let key = match shared
        .cfg
        .secret_key
        .open(m.endpoint_id, &m.secret)
        .map_err(|e| e.to_string())
        .and_then(|s| sign::secret_key(&s).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            return (
                None,
                Some(format!("the endpoint's secret cannot be opened: {e}")),
            );
        }
    };
    let id = message_id(m.id);
    let ts = Utc::now().timestamp();
    let signature = match sign::sign(&key, &id, ts, m.body.as_bytes()) {
        Ok(s) => s,
        Err(e) => return (None, Some(e.to_string())),
    };
    let url = match reqwest::Url::parse(&m.url) {
        Ok(u) => u,
        Err(e) => return (None, Some(format!("invalid url: {e}"))),
    };
    let req = match client.request_url(Method::POST, url.clone()) {
        Ok(r) => r,
        Err(e) => return (None, Some(format!("refused by the outbound guard: {e}"))),
    };
    let sent = req
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(m.body.clone())
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if resp.status().is_success() {
                (Some(i32::from(code)), None)
            } else {
                (Some(i32::from(code)), Some(format!("HTTP {code}")))
            }
        }
        Err(e) => {
            let what = if crate::guard::refused_by_guard(&e) {
                format!(
                    "refused by the outbound guard: {} resolves to no allowed address",
                    redact(&url)
                )
            } else {
                truncate(error_chain(&e.without_url()))
            };
            (None, Some(what))
        }
    }
}
