//! Pipeline benchmark: an instant in-process provider against the embedded PostgreSQL.
//!
//! Phase 1 (throughput): creators and workers run together; jobs/s from the first
//! create to the last completion. Phase 2 (latency): jobs created at a steady rate below
//! capacity; enqueue→dispatch latency (`started_at - created_at`) p50/p99.
//!
//! `cargo bench -p generation --bench pipeline` (env: BENCH_JOBS, BENCH_RATE).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::user::{Role, UserId};
use generation::fakes::instant::InstantProvider;
use generation::model::{Actor, CreateGeneration, GenerationParams, Operation};
use generation::{GenerationService, PipelineConfig};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn request(i: u64) -> CreateGeneration {
    CreateGeneration {
        provider: Some("instant".into()),
        operation: Some(Operation::TextToVideo),
        params: GenerationParams {
            prompt: Some(format!("bench {i}")),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn completed(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM generations WHERE status = 'completed'")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn latencies(pool: &sqlx::PgPool, since: chrono::DateTime<chrono::Utc>) -> (f64, f64, i64) {
    let row: (Option<f64>, Option<f64>, i64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)),
                count(*)
         FROM generations WHERE created_at >= $1 AND started_at IS NOT NULL",
    )
    .bind(since)
    .fetch_one(pool)
    .await
    .unwrap();
    (
        row.0.unwrap_or(0.0) * 1000.0,
        row.1.unwrap_or(0.0) * 1000.0,
        row.2,
    )
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

async fn wait_done(pool: &sqlx::PgPool, target: i64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while completed(pool).await < target {
        assert!(Instant::now() < deadline, "benchmark timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
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
    let jobs = env_num("BENCH_JOBS", 5000);
    let rate = env_num("BENCH_RATE", 500);
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
    cfg.idle_poll = Duration::from_millis(20);
    cfg.reclaim_interval = Duration::from_secs(5);
    let mut reg = GenerationService::default_providers(&cfg).unwrap();
    reg.register(InstantProvider::new("instant", false, Duration::ZERO));
    let svc = GenerationService::with_providers(pool.clone(), cfg, reg).unwrap();
    let actor = Actor::user(user(&pool).await);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let mut rx = stop_rx.clone();
            tokio::spawn(svc.worker_named(format!("bench-{i}")).run(async move {
                let _ = rx.wait_for(|v| *v).await;
            }))
        })
        .collect();

    // Warm-up.
    for i in 0..200 {
        svc.create(actor, request(1_000_000 + i)).await.unwrap();
    }
    wait_done(&pool, 200).await;

    // Phase 1: throughput, 16 concurrent creators.
    let since = chrono::Utc::now();
    let t0 = Instant::now();
    let creators = 16;
    let per = jobs / creators;
    let svc_arc = Arc::new(svc.clone());
    let mut hs = Vec::new();
    for c in 0..creators {
        let s = svc_arc.clone();
        hs.push(tokio::spawn(async move {
            for i in 0..per {
                s.create(actor, request(c * per + i)).await.unwrap();
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    let created_in = t0.elapsed();
    wait_done(&pool, 200 + (per * creators) as i64).await;
    let elapsed = t0.elapsed();
    let n = per * creators;
    let (p50, p99, _) = latencies(&pool, since).await;
    println!(
        "throughput: {n} jobs create→completed in {:.2}s = {:.0} jobs/s (creates alone {:.0}/s); \
         dispatch latency under backlog p50 {p50:.1} ms, p99 {p99:.1} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        n as f64 / created_in.as_secs_f64()
    );

    // Phase 2: steady rate, latency.
    let done_before = completed(&pool).await;
    let since = chrono::Utc::now();
    let total = rate * 4;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut hs = Vec::new();
    for i in 0..total {
        ticker.tick().await;
        let s = svc_arc.clone();
        hs.push(tokio::spawn(async move {
            s.create(actor, request(10_000_000 + i)).await.unwrap();
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    wait_done(&pool, done_before + total as i64).await;
    let (p50, p99, count) = latencies(&pool, since).await;
    println!(
        "latency: {count} jobs at {rate}/s; enqueue→dispatch p50 {p50:.2} ms, p99 {p99:.2} ms"
    );

    stop_tx.send(true).unwrap();
    for w in workers {
        let _ = w.await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
