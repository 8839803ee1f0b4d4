//! Pipeline benchmark: an instant in-process provider (a no-op job: it answers at once
//! with a one-frame GIF and its poster) against a PostgreSQL of its own, started with
//! the server's durable settings (`fsync` and `synchronous_commit` on), or
//! `BENCH_DATABASE_URL`.
//!
//! Phase 1 (throughput): creators and workers run together; jobs/s from the first
//! create to the last completion. Phase 2 (latency): jobs created at a steady rate below
//! capacity; enqueue→dispatch latency (`started_at - created_at`) p50/p99.
//!
//! Where the time goes: before phase 1, jobs are created with no worker running, then
//! processed with no creator running; for each of these and for phase 1 the bench
//! prints database transactions and rows written per job (`pg_stat_database`,
//! `pg_stat_user_tables`) and CPU per job of this process and of its PostgreSQL
//! backends (`/proc`, so the database must run on this machine).
//!
//! `cargo bench -p generation --bench pipeline` (env: BENCH_JOBS, 5,000; BENCH_RATE,
//! 1,000; BENCH_SLOTS for `PipelineConfig::write_slots`; BENCH_COALESCE_MS for
//! `PipelineConfig::wake_coalesce`). Prints each figure beside its issue #24 target.
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

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat` (0 when unreadable).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Counters of this database: (transactions committed, generation rows inserted +
/// updated, CPU seconds of its backends, CPU seconds of this process).
type Counters = (i64, i64, f64, f64);

async fn counters(pool: &sqlx::PgPool) -> Counters {
    // A backend publishes its statistics when it goes idle a second or more after its
    // last report: wait, then run a statement on every pooled connection.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut held = Vec::new();
    for _ in 0..pool.size() {
        let mut c = pool.acquire().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *c).await.unwrap();
        held.push(c);
    }
    drop(held);
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await
        .unwrap();
    let xact: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0)::bigint FROM pg_stat_user_tables
         WHERE relname IN ('generations', 'assets', 'provider_submissions')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let backends = pids.iter().map(|p| cpu_secs(&p.to_string())).sum();
    (xact, rows, backends, cpu_secs("self"))
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

/// Workers of the service, running until stopped.
struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    fn start(svc: &GenerationService, n: usize) -> Self {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let handles = (0..n)
            .map(|i| {
                let mut rx = rx.clone();
                tokio::spawn(svc.worker_named(format!("bench-{i}")).run(async move {
                    let _ = rx.wait_for(|v| *v).await;
                }))
            })
            .collect();
        Workers { stop, handles }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        for h in self.handles {
            h.await.unwrap();
        }
    }
}

/// Creates `n` jobs through `creators` concurrent callers of the public create.
async fn create_all(svc: &Arc<GenerationService>, actor: Actor, creators: u64, n: u64, base: u64) {
    let per = n / creators;
    let mut hs = Vec::new();
    for c in 0..creators {
        let s = svc.clone();
        hs.push(tokio::spawn(async move {
            for i in 0..per {
                s.create(actor, request(base + c * per + i)).await.unwrap();
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
}

/// One line of where the time went in a phase of `n` jobs.
fn report(phase: &str, n: u64, took: Duration, before: Counters, after: Counters) {
    let per_job = |a: f64, b: f64| (a - b) / n as f64;
    println!(
        "{phase}: {n} jobs in {:.2}s = {:.0} jobs/s; per job {:.2} transactions, \
         {:.2} rows written, CPU {:.3} ms here + {:.3} ms in PostgreSQL backends \
         (wall {:.3} ms on {} cores)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        per_job(after.0 as f64, before.0 as f64),
        per_job(after.1 as f64, before.1 as f64),
        per_job(after.3, before.3) * 1000.0,
        per_job(after.2, before.2) * 1000.0,
        took.as_secs_f64() * 1000.0 / n as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
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
    let rate = env_num("BENCH_RATE", 1000);
    let dir = std::env::temp_dir().join(format!("pixsim-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // The cluster is stopped when `pg_guard` is dropped.
    let (url, pg_guard) = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let pg = store::testing::durable_cluster(dir.join("pg"))
                .await
                .unwrap();
            (pg.url("postgres"), Some(pg))
        }
    };
    let pool = store::connect(&store::PoolConfig {
        url,
        max_connections: 24,
        acquire_timeout: Duration::from_secs(30),
    })
    .await
    .unwrap();
    store::MIGRATOR.run(&pool).await.unwrap();
    println!(
        "PostgreSQL: {}",
        store::testing::durability(&pool).await.unwrap()
    );
    let mut cfg = PipelineConfig::new(dir.join("media"));
    cfg.user_active_limit = None;
    cfg.worker_concurrency = 64;
    cfg.claim_batch = 64;
    cfg.idle_poll = Duration::from_millis(20);
    cfg.wake_coalesce = Duration::from_millis(env_num("BENCH_COALESCE_MS", 0));
    cfg.reclaim_interval = Duration::from_secs(5);
    if let Ok(v) = std::env::var("BENCH_SLOTS") {
        cfg.write_slots = v.parse().unwrap();
    }
    let mut reg = GenerationService::default_providers(&cfg).unwrap();
    reg.register(InstantProvider::new("instant", false, Duration::ZERO));
    let svc = GenerationService::with_providers(pool.clone(), cfg, reg).unwrap();
    let actor = Actor::user(user(&pool).await);
    // Warm-up.
    let workers = Workers::start(&svc, 2);
    for i in 0..200 {
        svc.create(actor, request(1_000_000 + i)).await.unwrap();
    }
    wait_done(&pool, 200).await;
    workers.stop().await;
    let svc_arc = Arc::new(svc.clone());
    let creators = 16;

    // Where the time goes: creating alone, then processing alone.
    let split = jobs / 2 / creators * creators;
    let before = counters(&pool).await;
    let t0 = Instant::now();
    create_all(&svc_arc, actor, creators, split, 20_000_000).await;
    let took = t0.elapsed();
    let after = counters(&pool).await;
    report("create only", split, took, before, after);
    let before = counters(&pool).await;
    let t0 = Instant::now();
    let workers = Workers::start(&svc, 2);
    wait_done(&pool, 200 + split as i64).await;
    let took = t0.elapsed();
    let after = counters(&pool).await;
    report("process only", split, took, before, after);
    let done_so_far = 200 + split as i64;

    // Phase 1: throughput, 16 concurrent creators.
    let before = counters(&pool).await;
    let since = chrono::Utc::now();
    let t0 = Instant::now();
    let n = jobs / creators * creators;
    create_all(&svc_arc, actor, creators, n, 0).await;
    let created_in = t0.elapsed();
    wait_done(&pool, done_so_far + n as i64).await;
    let elapsed = t0.elapsed();
    let after = counters(&pool).await;
    let (p50, p99, _) = latencies(&pool, since).await;
    let per_second = n as f64 / elapsed.as_secs_f64();
    println!(
        "throughput: {n} jobs create→completed in {:.2}s = {per_second:.0} jobs/s \
         (target 10,000) [{}] (creates alone {:.0}/s); \
         dispatch latency under backlog p50 {p50:.1} ms, p99 {p99:.1} ms",
        elapsed.as_secs_f64(),
        if per_second >= 10_000.0 {
            "ok"
        } else {
            "MISSED"
        },
        n as f64 / created_in.as_secs_f64()
    );
    report("create→completed", n, elapsed, before, after);

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
        "latency: {count} jobs at {rate}/s; enqueue→dispatch p50 {p50:.2} ms, p99 {p99:.2} ms \
         (target at 1,000/s: p99 5 ms) [{}]",
        if rate >= 1000 && p99 <= 5.0 {
            "ok"
        } else {
            "MISSED"
        }
    );

    workers.stop().await;
    pool.close().await;
    drop(pg_guard);
    let _ = std::fs::remove_dir_all(&dir);
}
