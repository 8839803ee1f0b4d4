//! Two nodes (two services on one database) joined by a real Redis: wake-ups, events
//! and cancels cross nodes. Workers poll the queue only once an hour here, so only a
//! wake-up can explain a quick pickup.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use generation::fakes::instant::InstantProvider;
use generation::model::JobStatus;
use generation::{GenerationEvent, GenerationService, PipelineConfig, RedisBridge};
use tokio::sync::broadcast::Receiver;
use tokio::sync::watch;
use uuid::Uuid;

struct Redis {
    server: embedded::redis::EmbeddedRedis,
    work: std::path::PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.server.kill_now();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

async fn redis() -> Redis {
    let work = std::env::temp_dir().join(format!("pixsim-gen-redis-{}", Uuid::new_v4().simple()));
    let w = work.clone();
    let server = tokio::task::spawn_blocking(move || {
        embedded::redis::EmbeddedRedis::start(&embedded::default_cache_dir(), &w, 0)
    })
    .await
    .unwrap()
    .unwrap();
    Redis { server, work }
}

/// Polls once an hour; cancels reach a running attempt only by signal (heartbeats are
/// an hour apart too).
fn sleepy_config() -> PipelineConfig {
    let mut cfg = fast_config();
    cfg.idle_poll = Duration::from_secs(3600);
    cfg.reclaim_interval = Duration::from_secs(3600);
    cfg.reconcile_interval = Duration::from_secs(3600);
    cfg.lease = Duration::from_secs(7200);
    cfg.heartbeat = Duration::from_secs(3600);
    cfg
}

fn node(e: &Env, providers: Vec<Arc<InstantProvider>>) -> GenerationService {
    let cfg = sleepy_config();
    let reg = registry_with(
        &cfg,
        providers
            .into_iter()
            .map(|p| p as Arc<dyn generation::provider::Provider>)
            .collect(),
    );
    GenerationService::with_providers(e.db.pool.clone(), cfg, reg).unwrap()
}

async fn connect(svc: &GenerationService, url: &str, stop: &watch::Receiver<bool>) -> RedisBridge {
    let mut rx = stop.clone();
    let bridge = svc
        .connect_redis(url, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .unwrap();
    assert!(bridge.wait_subscribed(Duration::from_secs(10)).await);
    bridge
}

/// The events of job `id` as `kind:status`, read until one of `kind` (20 s at most),
/// then whatever else arrives within `settle`.
async fn events_until(
    rx: &mut Receiver<GenerationEvent>,
    id: Uuid,
    kind: &str,
    settle: Duration,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut done_at: Option<Instant> = None;
    loop {
        let until = done_at.map_or(deadline, |d| d + settle);
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(ev)) => {
                if let Some(g) = ev.generation().filter(|g| g.id == id) {
                    seen.push(format!("{}:{}", ev.kind(), g.status.as_str()));
                    if ev.kind() == kind && done_at.is_none() {
                        done_at = Some(Instant::now());
                    }
                }
            }
            Ok(Err(e)) => panic!("event stream: {e}"),
            Err(_) if done_at.is_some() => return seen,
            Err(_) => panic!("no {kind} for {id}; saw {seen:?}"),
        }
    }
}

fn times(seen: &[String], what: &str) -> usize {
    seen.iter().filter(|s| s.as_str() == what).count()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn jobs_wake_other_nodes_and_events_and_cancels_cross() {
    let r = redis().await;
    let url = r.server.url();
    let e = env().await;
    let instant = InstantProvider::new("instant", false, Duration::ZERO);
    let slow = InstantProvider::new("slow", false, Duration::from_secs(3600));
    let a = node(&e, vec![instant.clone(), slow.clone()]);
    let b = node(&e, vec![instant.clone(), slow.clone()]);
    assert_ne!(a.node_id(), b.node_id());
    let (stop_tx, stop) = watch::channel(false);
    let bridge_a = connect(&a, &url, &stop).await;
    let bridge_b = connect(&b, &url, &stop).await;

    // Only node B has a worker. Wait until it idles: its first look at the queue is
    // done, and its next poll is an hour away.
    let mut wstop = stop.clone();
    let worker = tokio::spawn(b.worker_named("node-b").run(async move {
        let _ = wstop.wait_for(|s| *s).await;
    }));
    until("node B's worker to idle", || b.idle_workers() == 1).await;

    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();
    let g = a.create(e.user, t2v("instant", "across")).await.unwrap();

    // Node B's worker ran it (node A has none), and node A saw B's completion.
    let settle = Duration::from_millis(300);
    let seen_a = events_until(&mut on_a, g.id, "job:completed", settle).await;
    let seen_b = events_until(&mut on_b, g.id, "job:completed", settle).await;
    let stored = a.get(e.user, g.id).await.unwrap();
    assert_eq!(stored.status, JobStatus::Completed);
    assert!(stored.asset_id.is_some());
    assert_eq!(instant.submits.load(Ordering::SeqCst), 1);
    // Each event once on each node: the own ones locally, the others' through Redis,
    // and no echo of a node's own events.
    for (node, seen) in [("A", &seen_a), ("B", &seen_b)] {
        assert_eq!(times(seen, "job:created:pending"), 1, "{node}: {seen:?}");
        assert_eq!(times(seen, "job:updated:processing"), 1, "{node}: {seen:?}");
        assert_eq!(
            times(seen, "job:completed:completed"),
            1,
            "{node}: {seen:?}"
        );
    }

    // A cancel on node A stops the attempt running on node B at once (its heartbeat
    // is an hour away).
    let g2 = a.create(e.user, t2v("slow", "forever")).await.unwrap();
    until("node B to run it", || b.running_jobs() == 1).await;
    a.cancel(e.user, g2.id).await.unwrap();
    until("node B to stop it", || b.running_jobs() == 0).await;
    let g2 = b.get(e.user, g2.id).await.unwrap();
    assert_eq!((g2.status, g2.asset_id), (JobStatus::Cancelled, None));

    assert_eq!(a.redis_dropped() + b.redis_dropped(), 0);
    stop_tx.send(true).unwrap();
    worker.await.unwrap();
    bridge_a.join().await;
    bridge_b.join().await;
    drop(r);
}
