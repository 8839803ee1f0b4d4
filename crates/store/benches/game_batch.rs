//! Game write-behind benchmark: one tick's batch ([`store::game::Writer::write_batch`]) against
//! an embedded PostgreSQL with durable settings (fsync and synchronous commit on, as the
//! server runs it), shaped like the `game_channel` bench's ticks under 2,000 bots:
//! about 100 sessions touched per tick, each with a save (the binary form the tick
//! writes, of a demo save of about 700 bytes as JSON) and 3–4 events.
//!
//! `BENCH_MODE=log` (the default, as the server runs it): each batch is made durable as
//! one batch-log row ([`store::game::Writer::log`], the acknowledgement path) and
//! applied to the tables by a second connection in the background
//! ([`store::game::Writer::apply`]); `BENCH_MODE=direct`: each batch is written straight
//! into the tables ([`store::game::Writer::write_batch`], durable), the server's path
//! before the batch log.
//!
//! Prints the acknowledgement-path latency (p50/p90/p99/max), the apply latency, and rows
//! per second.
//!
//! `cargo bench -p store --bench game_batch`. Environment: `BENCH_TICKS` (1000),
//! `BENCH_SESSIONS` (2000 sessions in the table), `BENCH_TOUCHED` (100 per tick),
//! `BENCH_EVENTS` (3.5 events per touched session, as tenths: 35), `BENCH_PACED=1`
//! (one batch every 50 ms instead of back to back), `BENCH_MODE`.
//!
//! Sessions past a 256-event window are trimmed every 64 events. With few sessions
//! (`BENCH_SESSIONS=500 BENCH_TICKS=3000`) most batches trim: that is how the trim's
//! plan was caught hashing a scan of the whole chunk table (p50 16.0 ms; through the
//! primary key, 4.1 ms).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rand::Rng;
use store::game::{Batch, EventWrite, Save, SessionWrite};
use uuid::Uuid;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A save as the tick writes it: the binary form of a demo save mid-story.
fn save(rng: &mut impl Rng, tick: u64) -> Save {
    let json = save_json(rng, tick);
    let save: domain::narrative::SessionSave =
        serde_json::from_str(&json).expect("the bench's save is valid");
    let mut bin = Vec::new();
    save.encode_binary(&mut bin)
        .expect("the bench's save has a position");
    Save::Binary(bin)
}

fn save_json(rng: &mut impl Rng, tick: u64) -> String {
    // The shape of a demo save mid-story (see sim transcripts), about 700 bytes of JSON.
    format!(
        r#"{{"version":1,"content_version":"4cbf8d66f77b511f","rng":{},"stack":[{{"scene":"gallery","node":"to_vault"}},{{"scene":"vault","node":"door","args":{{"alarm":{}}}}}],"elapsed_in_node_ms":{},"wait":{{"type":"choices","offered":["try_crack","back_off"]}},"vars":{{"approach":"charm","clues":["patrol"],"met_mara":true}},"visits":{{"scenes":{{"gallery":1,"vault":1}},"nodes":{{"gallery":{{"arrive":1,"charm_check":1,"got_card":1,"mara_talk":1,"plan":2,"study":1,"to_vault":1}},"vault":{{"door":1}}}}}},"progress":{{"stats":{{"courage.player.value":4,"relationship.guard.affinity":10,"relationship.mara.trust":5}},"items":{{"coin":2,"keycard":1}},"quests":{{"heist":{{"status":"active","objectives":{{"get_keycard":1}}}}}},"xp":20,"level":1}},"cooldowns":{{"gallery/go_study":{}}}}}"#,
        rng.random::<u64>(),
        tick % 3,
        rng.random_range(0..5000),
        rng.random_range(0..10_000)
    )
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

/// `p50 … · p90 … · p99 … · max …` of sorted latencies, in ms.
fn percentiles(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.2} ms · p90 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
        pct(sorted, 0.5),
        pct(sorted, 0.9),
        pct(sorted, 0.99),
        pct(sorted, 1.0)
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let ticks = env_num("BENCH_TICKS", 1000);
    let n_sessions = env_num("BENCH_SESSIONS", 2000) as usize;
    let touched = env_num("BENCH_TOUCHED", 100) as usize;
    let events_tenths = env_num("BENCH_EVENTS", 35);
    let paced = std::env::var("BENCH_PACED").is_ok_and(|v| v == "1");

    let dir = std::env::temp_dir().join(format!("pixsim-batch-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pg = store::testing::durable_cluster(dir.join("pg"))
        .await
        .unwrap();
    let url = pg.url("postgres");
    let pool = store::connect(&store::PoolConfig {
        url: url.clone(),
        max_connections: 8,
        acquire_timeout: Duration::from_secs(30),
    })
    .await
    .unwrap();
    store::MIGRATOR.run(&pool).await.unwrap();
    let durability = store::testing::durability(&pool).await.unwrap();

    let user = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, email, password_hash, display_name, role) VALUES ($1, 'bench@example.com', 'x', 'bench', 'user')")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();

    let mut rng = rand::rng();
    let mut sessions = Vec::with_capacity(n_sessions);
    for _ in 0..n_sessions {
        let id = Uuid::new_v4();
        store::game::create(&pool, id, user, "default", Some("gallery"), 1)
            .await
            .unwrap();
        sessions.push((id, 0i64));
    }
    let direct = std::env::var("BENCH_MODE").is_ok_and(|v| v == "direct");
    let mut writer = store::game::Writer::new(&pool);
    let (to_apply, mut logged) = tokio::sync::mpsc::channel::<(i64, Batch)>(256);
    let applier = {
        let mut applier = store::game::Writer::applier(&pool);
        tokio::spawn(async move {
            let mut took = Vec::new();
            while let Some((id, batch)) = logged.recv().await {
                let started = Instant::now();
                applier.apply(id, &batch).await.unwrap();
                took.push(started.elapsed());
            }
            took
        })
    };

    let mut lat = Vec::with_capacity(ticks as usize);
    let (mut rows_s, mut rows_e) = (0usize, 0usize);
    let window = 256i64;
    let started = Instant::now();
    let mut next = tokio::time::Instant::now();
    for tick in 0..ticks {
        let mut batch = Batch::default();
        for _ in 0..touched {
            let i = rng.random_range(0..n_sessions);
            let (id, seq) = &mut sessions[i];
            if batch.sessions.iter().any(|s| s.id == *id) {
                continue;
            }
            let n = (events_tenths / 10) + u64::from(rng.random_range(0..10) < events_tenths % 10);
            for _ in 0..n {
                let len = rng.random_range(20..200);
                batch.events.push(EventWrite {
                    session: *id,
                    seq: *seq,
                    at_ms: tick as i64 * 50,
                    event: (0..len).map(|_| rng.random()).collect::<Vec<u8>>().into(),
                });
                *seq += 1;
                if *seq > window && *seq % 64 == 0 {
                    batch.trim.push((*id, *seq - window));
                }
            }
            batch.sessions.push(SessionWrite {
                id: *id,
                save: Some(save(&mut rng, tick)),
                ended: false,
                final_view: None,
                next_seq: *seq,
            });
        }
        rows_s += batch.sessions.len();
        rows_e += batch.events.len();
        let t = Instant::now();
        if direct {
            writer.write_batch(&batch).await.unwrap();
            lat.push(t.elapsed());
        } else {
            let id = writer.log(&batch).await.unwrap();
            lat.push(t.elapsed());
            to_apply.send((id, batch)).await.unwrap();
        }
        if paced {
            next += Duration::from_millis(50);
            tokio::time::sleep_until(next).await;
        }
    }
    drop(to_apply);
    let mut applied = applier.await.unwrap();
    let wall = started.elapsed();
    lat.sort_unstable();
    applied.sort_unstable();
    println!(
        "== game batch ({}): {ticks} batches, {:.0} sessions + {:.0} events each, {} ({durability}) ==",
        if direct { "direct" } else { "log, then apply" },
        rows_s as f64 / ticks as f64,
        rows_e as f64 / ticks as f64,
        if paced {
            "one per 50 ms"
        } else {
            "back to back"
        }
    );
    println!("durable (ack path) {}", percentiles(&lat));
    if !applied.is_empty() {
        println!("apply (background) {}", percentiles(&applied));
    }
    println!(
        "throughput {:.0} batches/s · {:.0} session rows/s · {:.0} event rows/s",
        ticks as f64 / wall.as_secs_f64(),
        rows_s as f64 / wall.as_secs_f64(),
        rows_e as f64 / wall.as_secs_f64()
    );
    drop(writer);
    pool.close().await;
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
