//! Webhook delivery benchmark against the embedded PostgreSQL and a receiver on
//! loopback (HTTP/1.1 keep-alive, answering 200 at once).
//!
//! Phase 1 (dispatch): BENCH_MESSAGES events (default 20,000) over 2,000 subjects are
//! written to the outbox first; then the dispatcher runs: deliveries/s from its start to
//! the last delivery recorded.
//! Phase 2 (end to end): BENCH_JOBS jobs (default 2,000) of an instant provider with
//! workers running, every event of them to one endpoint: deliveries/s, and the time
//! from an event to its delivery (`delivered_at - occurred_at`) p50/p99.
//!
//! `cargo bench -p generation --bench webhooks`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::user::{Role, UserId};
use generation::fakes::instant::InstantProvider;
use generation::model::{Actor, CreateGeneration, GenerationParams, Operation};
use generation::webhooks::NewWebhook;
use generation::{GenerationService, PipelineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A receiver answering every request 200; returns its URL and the request count.
async fn receiver() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = [0u8; 16384];
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    seen.fetch_add(1, Ordering::Relaxed);
                    if sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

async fn user(pool: &sqlx::PgPool) -> UserId {
    store::users::create(
        pool,
        store::users::NewUser {
            email: &format!("{}@bench.test", uuid::Uuid::new_v4().simple()),
            password_hash: "x",
            display_name: None,
            role: Role::User,
        },
    )
    .await
    .unwrap()
    .id
}

async fn count(pool: &sqlx::PgPool, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM webhook_messages WHERE status = $1")
        .bind(status)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until no message is pending and `at_least` are delivered.
async fn wait_delivered(pool: &sqlx::PgPool, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if count(pool, "pending").await == 0 && count(pool, "delivered").await >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "benchmark timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let messages = env_num("BENCH_MESSAGES", 20_000);
    let jobs = env_num("BENCH_JOBS", 2_000);
    let db = store::testing::fresh_database().await.unwrap();
    let pool = store::connect(&store::PoolConfig {
        url: db.url.clone(),
        max_connections: 24,
        acquire_timeout: Duration::from_secs(30),
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("pixsim-bench-{}", uuid::Uuid::new_v4().simple()));
    let mut cfg = PipelineConfig::new(&dir);
    cfg.user_active_limit = None;
    cfg.worker_concurrency = 64;
    cfg.claim_batch = 64;
    cfg.guard.allow_private = true;
    let mut reg = GenerationService::default_providers(&cfg).unwrap();
    reg.register(InstantProvider::new("instant", false, Duration::ZERO));
    let svc = GenerationService::with_providers(pool.clone(), cfg, reg).unwrap();
    let (url, received) = receiver().await;

    // Phase 1: the outbox full before the dispatcher starts.
    let u1 = user(&pool).await;
    svc.create_webhook(
        Actor::user(u1),
        NewWebhook {
            url: url.clone(),
            events: vec!["*".into()],
            description: String::new(),
        },
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let subjects: Vec<uuid::Uuid> = (0..2000).map(|_| uuid::Uuid::new_v4()).collect();
    let body =
        serde_json::json!({"type": "job:updated", "data": {"pad": "x".repeat(1200)}}).to_string();
    let events: Vec<store::webhooks::NewEvent> = (0..messages)
        .map(|i| store::webhooks::NewEvent {
            user_id: u1.0,
            event_type: "job:updated".into(),
            subject_id: subjects[i as usize % subjects.len()],
            occurred_at: now + chrono::Duration::microseconds(i as i64),
            body: body.clone(),
        })
        .collect();
    for chunk in events.chunks(1000) {
        store::webhooks::enqueue(&pool, chunk).await.unwrap();
    }
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut rx = stop_rx.clone();
    let t0 = Instant::now();
    let running = tokio::spawn(svc.run_webhooks(async move {
        let _ = rx.wait_for(|v| *v).await;
    }));
    wait_delivered(&pool, messages as i64).await;
    let took = t0.elapsed();
    println!(
        "webhooks dispatch: {messages} messages over {} subjects in {:.2}s = {:.0} deliveries/s \
         (receiver saw {})",
        subjects.len(),
        took.as_secs_f64(),
        messages as f64 / took.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );

    // Phase 2: jobs with workers, every event delivered.
    let u2 = user(&pool).await;
    svc.create_webhook(
        Actor::user(u2),
        NewWebhook {
            url,
            events: vec!["*".into()],
            description: String::new(),
        },
    )
    .await
    .unwrap();
    // The new endpoint's user is known to this process at once (no refresh needed).
    let before = count(&pool, "delivered").await;
    let since = chrono::Utc::now();
    let (wstop, wrx) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let mut rx = wrx.clone();
            tokio::spawn(svc.worker_named(format!("bench-{i}")).run(async move {
                let _ = rx.wait_for(|v| *v).await;
            }))
        })
        .collect();
    let t0 = Instant::now();
    let actor = Actor::user(u2);
    let mut hs = Vec::new();
    for c in 0..8u64 {
        let s = svc.clone();
        hs.push(tokio::spawn(async move {
            for i in 0..jobs / 8 {
                s.create(
                    actor,
                    CreateGeneration {
                        provider: Some("instant".into()),
                        operation: Some(Operation::TextToVideo),
                        params: GenerationParams {
                            prompt: Some(format!("hook bench {c} {i}")),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    // Every job done, then every message of it delivered.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM generations WHERE status = 'completed' AND user_id = $1",
        )
        .bind(u2.0)
        .fetch_one(&pool)
        .await
        .unwrap();
        if done >= (jobs / 8 * 8) as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "jobs timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_delivered(&pool, before + 1).await;
    let took = t0.elapsed();
    let (n, p50, p99): (i64, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT count(*),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - occurred_at)),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - occurred_at))
         FROM webhook_messages WHERE created_at >= $1 AND status = 'delivered'",
    )
    .bind(since)
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "webhooks end to end: {} jobs, {n} events delivered in {:.2}s = {:.0} deliveries/s; \
         event→delivery p50 {:.1} ms, p99 {:.1} ms",
        jobs / 8 * 8,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        p50.unwrap_or(0.0) * 1000.0,
        p99.unwrap_or(0.0) * 1000.0,
    );
    wstop.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    pool.close().await;
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
