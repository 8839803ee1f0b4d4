//! Game channel benchmark: the real `pixsim-server` binary (a child process, on its
//! embedded PostgreSQL, with durable acknowledgement) and load bots in this process,
//! each with its own connection and game session, playing random valid choices; once
//! per transport (QUIC, WebSocket binary, WebSocket JSON, WebTransport), each on a
//! fresh state dir, measured the same way.
//!
//! Prints, per transport, connections held, commands per second, command→event and
//! command→ack latency percentiles, the server's memory per connected session and
//! errors, against the targets:
//! 2,000 clients, p99 command→event ≤ one tick period (50 ms at 20 Hz) + 5 ms, zero
//! errors; then a table of every transport side by side.
//!
//! Per transport, two server runs on one state dir: first the memory phase, on a server whose allocator
//! returns freed pages at once (`MIMALLOC_PURGE_DELAY=0`) so that VmRSS follows live
//! memory (with the bots connected, minus the idle baseline, over the bots; then, the
//! bots gone, with their sessions still loaded and idle, and once these are evicted,
//! against the idle targets of issue #24); then play,
//! on the server as it ships. Purging at once faults freed pages back in, zeroed, on
//! every tick, which is not how the server runs, so play never runs so (in interleaved
//! runs its effect on p99 command→event was within the machine's noise).
//!
//! `cargo bench -p tests --bench game_channel`. Environment:
//! - `BENCH_TRANSPORTS` (all: `quic,websocket,websocket-json,webtransport`): the
//!   transports measured, in order (`pixsim-client --transport` names);
//! - `BENCH_BOTS` (2000), `BENCH_SECS` (30): bots and play time (per transport);
//! - `BENCH_IDLE` (8000 over QUIC, 0 over the others): more bots connected during
//!   play (each with its session), idle with heartbeats: over QUIC, issue #24's 10,000
//!   connections, 2,000 of them playing;
//! - `BENCH_THINK_MS` (`500-1500`): think time before each choice, uniform;
//! - `BENCH_ACCOUNTS` (16): the bots' shared accounts;
//! - `BENCH_TICK_HZ`: the server's tick rate (default: its own, 20 Hz);
//! - `BENCH_PG_SET`: `name=value,...` PostgreSQL settings applied (ALTER SYSTEM,
//!   reload) before the run, for experiments such as `synchronous_commit=off`;
//!   the figures then say so, since acknowledgements are no longer durable;
//! - `BENCH_SERVER_ENV`: `NAME=value,...` extra environment for the server, for
//!   experiments such as `MIMALLOC_ALLOW_THP=0`;
//! - `BENCH_KEEP_STATE=1`: keep the server's state dir (its PostgreSQL log is
//!   `postgres.log` there; with `BENCH_PG_SET=log_min_duration_statement=0` it times
//!   every statement);
//! - `PIXSIM_SERVER_BIN`: the server binary to run (default: built with
//!   `cargo build --profile bench -p pixsim-server` into this bench's target dir).
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use game_client::bots::{BotConfig, Fleet};
use game_client::{Target, Transport, Trust, WsEncoding};
use support::{Running, cpu_secs, env_num, env_or, histogram, parse_range_ms, server_binary, stop};

/// The `n` ECS systems with the highest mean time per run, from the server's
/// Prometheus text (`pixsim_system_duration_seconds_{sum,count}`).
fn slowest_systems(metrics: &str, n: usize) -> Vec<(String, f64)> {
    use std::collections::HashMap;
    let mut sums: HashMap<&str, (f64, f64)> = HashMap::new();
    for line in metrics.lines() {
        let (kind, rest) = if let Some(r) =
            line.strip_prefix("pixsim_system_duration_seconds_sum{system=\"")
        {
            (0, r)
        } else if let Some(r) = line.strip_prefix("pixsim_system_duration_seconds_count{system=\"")
        {
            (1, r)
        } else {
            continue;
        };
        let Some((name, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        let e = sums.entry(name).or_default();
        if kind == 0 { e.0 = v } else { e.1 = v }
    }
    let mut out: Vec<(String, f64)> = sums
        .into_iter()
        .filter(|(_, (_, c))| *c > 0.0)
        .map(|(k, (s, c))| (k.to_owned(), s / c * 1e6))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.truncate(n);
    out
}

/// The bots allocate like `pixsim-client bots` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Starts the server on `state`. `memory`, for the memory phase only: mimalloc returns
/// freed pages at once (`MIMALLOC_PURGE_DELAY=0`), so VmRSS follows live memory, and
/// idle sessions are evicted after [`EVICT_IDLE_SECS`]; otherwise the server runs as it
/// ships (its allocator keeps freed pages for a second, instead of faulting fresh zeroed
/// ones in on every tick).
fn serve(bin: &Path, state: &Path, memory: bool) -> Running {
    let mut cmd = support::server_command(bin, state);
    cmd.env("PIXSIM_WEBTRANSPORT__ADDR", "127.0.0.1:0")
        .env("PIXSIM_QUIC__MAX_CONNECTIONS", "20000")
        // WebSocket bots are HTTP connections, all from one address.
        .env("PIXSIM_HTTP__MAX_CONNECTIONS", "20000")
        .env("PIXSIM_HTTP__MAX_CONNECTIONS_PER_IP", "20000")
        .env("PIXSIM_GENERATION__WORKERS", "0")
        .envs(
            std::env::var("BENCH_TICK_HZ")
                .ok()
                .map(|hz| ("PIXSIM_TICK__RATE_HZ", hz)),
        )
        .env_remove("MIMALLOC_PURGE_DELAY")
        .envs(memory.then_some(("MIMALLOC_PURGE_DELAY", "0".to_owned())))
        .envs(memory.then(|| {
            (
                "PIXSIM_GAME__EVICT_IDLE_AFTER_SECS",
                EVICT_IDLE_SECS.to_string(),
            )
        }))
        .envs(server_env());
    support::launch(cmd, state)
}

/// On the memory phase's server, idle sessions are evicted this long after their last
/// follower left (600 s as shipped).
const EVICT_IDLE_SECS: u64 = 6;

/// What the memory phase measured (VmRSS in KiB).
struct Memory {
    baseline: u64,
    connected_rss: u64,
    connected: usize,
    /// Sessions loaded once the bots had left, and VmRSS then.
    loaded: u64,
    loaded_rss: u64,
    /// Sessions still loaded after the eviction wait, and VmRSS then.
    left: u64,
    evicted_rss: u64,
}

/// `pixsim_game_sessions_loaded` from the server's metrics (0 when absent).
async fn sessions_loaded(http: &str) -> u64 {
    support::metrics(http)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("pixsim_game_sessions_loaded "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// `BENCH_SERVER_ENV` (`NAME=value,...`): extra environment for the server, for
/// experiments (the figures then say so).
fn server_env() -> Vec<(String, String)> {
    env_or("BENCH_SERVER_ENV", "")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .expect("BENCH_SERVER_ENV is NAME=value,...");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Applies `BENCH_PG_SET` and turns WAL I/O timing on (for [`wal_stats`]).
async fn tune_postgres(url: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut applied = Vec::new();
    let mut settings = vec![("track_wal_io_timing".to_owned(), "on".to_owned())];
    for kv in env_or("BENCH_PG_SET", "")
        .split(',')
        .filter(|s| !s.trim().is_empty())
    {
        let (k, v) = kv.split_once('=').expect("BENCH_PG_SET is name=value,...");
        settings.push((k.trim().to_owned(), v.trim().to_owned()));
        applied.push(format!("{}={}", k.trim(), v.trim()));
    }
    for (k, v) in settings {
        sqlx::query(&format!("ALTER SYSTEM SET {k} = '{v}'"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut conn)
        .await
        .unwrap();
    applied
}

/// (commits, WAL fsyncs, WAL fsync time in ms) so far, from the statistics views.
async fn wal_stats(url: &str) -> (i64, i64, f64) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let commits: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap_or(0);
    // PostgreSQL 18 reports WAL I/O in pg_stat_io.
    let (fsyncs, time): (Option<i64>, Option<f64>) = sqlx::query_as(
        "SELECT sum(fsyncs)::int8, sum(fsync_time)::float8 FROM pg_stat_io WHERE object = 'wal'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap_or((None, None));
    (commits, fsyncs.unwrap_or(0), time.unwrap_or(0.0))
}

/// Times a small durable transaction (BEGIN, one-row UPDATE, COMMIT: the shape of the
/// server's group commit, minus its payload) on the server's PostgreSQL every 20 ms
/// until `until`, on a thread of its own (so the bots' load does not skew it);
/// returns the samples in µs, sorted.
fn commit_probe(url: String, until: Instant) -> std::thread::JoinHandle<Vec<i64>> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(probe_loop(url, until))
    })
}

async fn probe_loop(url: String, until: Instant) -> Vec<i64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_probe (id int PRIMARY KEY, n bigint)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO bench_probe VALUES (1, 0) ON CONFLICT DO NOTHING")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut samples = Vec::new();
    while Instant::now() < until {
        let t = Instant::now();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("UPDATE bench_probe SET n = n + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        samples.push(t.elapsed().as_micros() as i64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples.sort_unstable();
    samples
}

fn pct_ms(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Busy and total jiffies of the whole machine.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = cpu.iter().sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Pids of the embedded PostgreSQL processes of the server (its children).
fn children_of(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or_default();
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(name.clone());
            out.extend(children_of(name.parse().unwrap_or(0)));
        }
    }
    out
}

/// What one transport's run is measured with.
struct Params {
    bots: usize,
    secs: u64,
    think: (Duration, Duration),
    accounts: usize,
    /// Bots idle with heartbeats beside the players during play (`None`: 8,000 over
    /// QUIC, none over the other transports).
    idle: Option<usize>,
}

/// One transport's figures, for the summary table.
struct Row {
    transport: Transport,
    bots: usize,
    held: usize,
    per_second: f64,
    event: (f64, f64),
    ack: (f64, f64),
    per_connection_kib: f64,
    errors: u64,
}

/// `BENCH_TRANSPORTS` (`quic,websocket,...`): the transports to measure, in order
/// (default: all).
fn bench_transports() -> Vec<Transport> {
    match std::env::var("BENCH_TRANSPORTS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|t| {
                t.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("BENCH_TRANSPORTS: {e}"))
            })
            .collect(),
        _ => Transport::ALL.to_vec(),
    }
}

/// Where the bots reach `server` over `transport`.
async fn target(server: &Running, state: &Path, transport: Transport) -> Target {
    match transport {
        Transport::Quic => Target::Quic {
            addr: server.quic,
            server_name: "localhost".into(),
            trust: Trust::CertFile(state.join("quic").join("cert.pem")),
        },
        Transport::WebSocket => Target::websocket(&server.http, WsEncoding::Binary).unwrap(),
        Transport::WebSocketJson => Target::websocket(&server.http, WsEncoding::Json).unwrap(),
        Transport::WebTransport => {
            let rest = game_client::rest::Rest::new(&server.http).unwrap();
            Target::webtransport(&rest).await.unwrap()
        }
    }
}

fn main() {
    let params = Params {
        bots: env_num("BENCH_BOTS", 2000) as usize,
        secs: env_num("BENCH_SECS", 30),
        think: parse_range_ms(&env_or("BENCH_THINK_MS", "500-1500")),
        accounts: env_num("BENCH_ACCOUNTS", 16) as usize,
        idle: std::env::var("BENCH_IDLE")
            .ok()
            .and_then(|v| v.parse().ok()),
    };
    let transports = bench_transports();
    let bin = server_binary();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for transport in transports {
        rows.push(measure(&bin, &rt, &params, transport));
    }
    print_table(&params, &rows);
}

/// The summary: one line per transport.
fn print_table(params: &Params, rows: &[Row]) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "== game channel per transport: {} bots, {} s, think {:?} (load average {}) ==",
        params.bots,
        params.secs,
        params.think,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<15} {:>11} {:>10} {:>22} {:>22} {:>14} {:>7}",
        "transport",
        "connections",
        "commands/s",
        "command→event p50/p99",
        "command→ack p50/p99",
        "server KiB/conn",
        "errors"
    );
    for r in rows {
        println!(
            "{:<15} {:>11} {:>10.0} {:>22} {:>22} {:>14.1} {:>7}",
            r.transport.name(),
            format!("{}/{}", r.held, r.bots),
            r.per_second,
            format!("{:.1} / {:.1} ms", r.event.0, r.event.1),
            format!("{:.1} / {:.1} ms", r.ack.0, r.ack.1),
            r.per_connection_kib,
            r.errors
        );
    }
}

/// One transport, measured as the QUIC-only benchmark always was, on a state dir of
/// its own: the memory phase on a purging server, then play on the server as it
/// ships; prints the details and returns the summary.
fn measure(bin: &Path, rt: &tokio::runtime::Runtime, params: &Params, transport: Transport) -> Row {
    let Params {
        bots,
        secs,
        think,
        accounts,
        idle,
    } = *params;
    let idle = idle.unwrap_or(if transport == Transport::Quic {
        8000
    } else {
        0
    });
    eprintln!("=== {transport}: {bots} bots ===");
    let state = std::env::temp_dir().join(format!(
        "pixsim-bench-game-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&state).unwrap();
    let bot_config = |server: &Running| {
        let target = rt.block_on(target(server, &state, transport));
        let mut cfg = BotConfig::new(&server.http, target);
        cfg.count = bots;
        cfg.accounts = accounts;
        cfg.think = think;
        cfg.account_prefix = "bench".into();
        cfg
    };

    // Memory: a server of its own whose allocator returns freed pages at once, so
    // VmRSS follows live memory. The idle baseline (logged in, nothing connected),
    // then the bots connect and create their sessions.
    // Once the bots have left, their sessions stay loaded (idle, nobody following)
    // until evicted: then RSS is measured again, loaded, and after the eviction.
    let mut server = serve(bin, &state, true);
    let pid = server.child.id();
    let cfg = bot_config(&server);
    let mem = rt.block_on(async {
        let tokens = game_client::bots::login(&cfg).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let baseline = rss_kib(pid);
        eprintln!("memory: baseline VmRSS {baseline} KiB; connecting {bots} bots…");
        let fleet = Fleet::launch(&cfg, &tokens).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let connected_rss = rss_kib(pid);
        let connected = fleet.connected();
        eprintln!("memory: {connected} connected; VmRSS {connected_rss} KiB");
        fleet.play(Duration::ZERO).await;
        // The connections close; the sessions stay until EVICT_IDLE_SECS have passed.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let loaded = sessions_loaded(&cfg.http).await;
        let loaded_rss = rss_kib(pid);
        eprintln!("memory: bots gone, {loaded} sessions loaded; VmRSS {loaded_rss} KiB");
        let deadline = Instant::now() + Duration::from_secs(60);
        while sessions_loaded(&cfg.http).await > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let left = sessions_loaded(&cfg.http).await;
        let evicted_rss = rss_kib(pid);
        eprintln!("memory: evicted ({left} left); VmRSS {evicted_rss} KiB");
        Memory {
            baseline,
            connected_rss,
            connected,
            loaded,
            loaded_rss,
            left,
            evicted_rss,
        }
    });
    stop(&mut server);
    let Memory {
        baseline,
        connected_rss,
        connected,
        ..
    } = mem;

    // Latency and throughput: the server as it ships, on the same state dir.
    let mut server = serve(bin, &state, false);
    let pid = server.child.id();
    let cfg = bot_config(&server);
    let database = server.database.clone();
    let (report, end_rss, cpu, health, probe) = rt.block_on(async {
        let applied = tune_postgres(&database).await;
        if !applied.is_empty() {
            eprintln!("EXPERIMENT: PostgreSQL settings {applied:?}");
        }
        let tokens = game_client::bots::login(&cfg).await.unwrap();
        let idle_fleet = if idle > 0 {
            eprintln!("connecting {idle} idle bots…");
            let mut icfg = cfg.clone();
            icfg.count = idle;
            let f = Fleet::launch(&icfg, &tokens).await.unwrap();
            eprintln!(
                "{} idle connected in {:.1} s ({} failed)",
                f.connected(),
                f.connect_time().as_secs_f64(),
                f.failed()
            );
            Some(f)
        } else {
            None
        };
        eprintln!("connecting {bots} bots…");
        let fleet = Fleet::launch(&cfg, &tokens).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!(
            "{} connected in {:.1} s ({} failed); playing {secs} s…",
            fleet.connected(),
            fleet.connect_time().as_secs_f64(),
            fleet.failed(),
        );
        let kids = children_of(pid);
        let pid_s = pid.to_string();
        let (server_cpu0, pg_cpu0) = (cpu_secs(&pid_s), kids.iter().map(cpu_secs).sum::<f64>());
        let bench_cpu0 = cpu_secs("self");
        let machine0 = machine_jiffies();
        let probe = commit_probe(database.clone(), Instant::now() + Duration::from_secs(secs));
        let wal0 = wal_stats(&database).await;
        let metrics0 = support::metrics(&cfg.http).await;
        let report = fleet.play(Duration::from_secs(secs)).await;
        let idle_rss = rss_kib(pid);
        let idle_report = match idle_fleet {
            Some(f) => Some(f.play(Duration::ZERO).await),
            None => None,
        };
        let wal1 = wal_stats(&database).await;
        let probe = probe.join().unwrap();
        let wal = (wal1.0 - wal0.0, wal1.1 - wal0.1, wal1.2 - wal0.2);
        let machine1 = machine_jiffies();
        let wall = report.elapsed.as_secs_f64();
        let kids = children_of(pid);
        let cpu = (
            (cpu_secs(&pid_s) - server_cpu0) / wall,
            (kids.iter().map(cpu_secs).sum::<f64>() - pg_cpu0) / wall,
            (cpu_secs("self") - bench_cpu0) / wall,
            (machine1.0 - machine0.0) as f64 / (machine1.1 - machine0.1).max(1) as f64,
        );
        let end_rss = rss_kib(pid);
        let health: serde_json::Value = reqwest::get(format!("{}/health", cfg.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        let metrics = support::metrics(&cfg.http).await;
        (
            report,
            end_rss,
            cpu,
            (health, metrics, metrics0),
            (probe, wal, idle_report, idle_rss),
        )
    });
    let (probe, wal, idle_report, idle_rss) = probe;

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let per_session = connected_rss.saturating_sub(baseline) as f64 / connected.max(1) as f64;
    let p99 = report.command_to_event.percentile_ms(0.99);
    // The target: one tick period + 5 ms (55 ms at the default 20 Hz).
    let rate: f64 = env_or("BENCH_TICK_HZ", "20").parse().unwrap_or(20.0);
    let target = 1000.0 / rate + 5.0;
    let ok = |b: bool| if b { "ok" } else { "MISSED" };
    println!();
    println!("== game channel over {transport}: {bots} bots, {secs} s, think {think:?} ==");
    println!(
        "machine: {cores} cores, shared (load average {}); server and bots on the same machine",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("{report}");
    println!(
        "connections held      {} of {bots} (target 2,000) [{}]",
        report.held,
        if bots < 2000 {
            "fewer bots than the target"
        } else {
            ok(report.held == bots)
        }
    );
    if let Some(r) = &idle_report {
        println!(
            "idle connections      {} of {idle} held through play, {} errors; with the players: {} connections (target 10,000, 2,000 playing) [{}] · server VmRSS at the end of play {idle_rss} KiB",
            r.held,
            r.error_count(),
            r.held + report.held,
            ok(r.held + report.held >= 10_000 && r.error_count() == 0)
        );
    }
    println!("commands per second   {:.0}", report.per_second());
    println!(
        "command→event         p50 {:.1} ms · p99 {:.1} ms (target p99 ≤ tick period + 5 ms = {target:.0} ms at {rate} Hz) [{}]",
        report.command_to_event.percentile_ms(0.5),
        p99,
        ok(p99 <= target)
    );
    println!(
        "server memory         baseline {baseline} KiB · {connected} connected {connected_rss} KiB → {per_session:.1} KiB per connected session (target 16 KiB) [{}] (allocator purging at once) · after play {end_rss} KiB (as shipped)",
        ok(per_session <= 16.0)
    );
    let per_loaded = mem.loaded_rss.saturating_sub(baseline) as f64 / mem.loaded.max(1) as f64;
    println!(
        "loaded idle sessions  {} loaded, none connected: VmRSS {} KiB → {per_loaded:.2} KiB per session (target 2 KiB) [{}]",
        mem.loaded,
        mem.loaded_rss,
        ok(mem.loaded > 0 && per_loaded <= 2.0)
    );
    let above = mem.evicted_rss as i64 - baseline as i64;
    println!(
        "after eviction        {} sessions left loaded; VmRSS {} KiB, {above} KiB above the baseline (target 16 MiB) [{}]",
        mem.left,
        mem.evicted_rss,
        ok(mem.left == 0 && above <= 16 * 1024)
    );
    println!(
        "errors                {} [{}] · rejected {}",
        report.error_count(),
        ok(report.error_count() == 0),
        report.rejected_count()
    );
    println!(
        "cpu during play       server {:.0}% · its PostgreSQL {:.0}% · bots {:.0}% (of one core) · whole machine {:.0}% busy",
        cpu.0 * 100.0,
        cpu.1 * 100.0,
        cpu.2 * 100.0,
        cpu.3 * 100.0
    );
    println!(
        "durable commit probe  p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms ({} small transactions on the server's PostgreSQL during play)",
        pct_ms(&probe, 0.5),
        pct_ms(&probe, 0.99),
        pct_ms(&probe, 1.0),
        probe.len()
    );
    let secs_f = report.elapsed.as_secs_f64().max(0.001);
    println!(
        "server PostgreSQL     {:.0} commits/s · {:.0} WAL fsyncs/s · {} per fsync",
        wal.0 as f64 / secs_f,
        wal.1 as f64 / secs_f,
        if wal.1 > 0 {
            format!("{:.2} ms", wal.2 / wal.1 as f64)
        } else {
            "-".to_owned()
        }
    );
    let server_set = env_or("BENCH_SERVER_ENV", "");
    if !server_set.is_empty() {
        println!("EXPERIMENT: server environment {server_set}");
    }
    let pg_set = env_or("BENCH_PG_SET", "");
    if !pg_set.is_empty() {
        println!("EXPERIMENT: PostgreSQL settings {pg_set} (acknowledgements may not be durable)");
    }
    let (health, metrics, metrics0) = health;
    for (name, label, unit) in [
        (
            "pixsim_tick_duration_seconds",
            "tick duration       ",
            "ticks",
        ),
        (
            "pixsim_game_commit_seconds",
            "game state commit   ",
            "batches",
        ),
        (
            "pixsim_game_handoff_to_ack_seconds",
            "tick handoff→ack    ",
            "batches",
        ),
    ] {
        let h = histogram(&metrics, name).since(&histogram(&metrics0, name));
        println!("{label}  {} (server, during play)", h.line(unit));
    }
    let tick = &health["tick"];
    println!(
        "server tick           {} Hz actual · p99 {} µs over the last 1,200 ticks (connecting included) · overruns {}",
        tick["actual_rate_hz"], tick["p99_us"], tick["overruns"]
    );
    let systems = slowest_systems(&metrics, 14);
    if !systems.is_empty() {
        println!("slowest tick systems  (mean per run since start)");
        for (name, mean_us) in systems {
            println!("  {mean_us:>8.1} µs  {name}");
        }
    }

    stop(&mut server);
    if std::env::var_os("BENCH_KEEP_STATE").is_some() {
        println!("state dir kept: {}", state.display());
    } else {
        let _ = std::fs::remove_dir_all(&state);
    }
    Row {
        transport,
        bots,
        held: report.held,
        per_second: report.per_second(),
        event: (
            report.command_to_event.percentile_ms(0.5),
            report.command_to_event.percentile_ms(0.99),
        ),
        ack: (
            report.command_to_ack.percentile_ms(0.5),
            report.command_to_ack.percentile_ms(0.99),
        ),
        per_connection_kib: per_session,
        errors: report.error_count(),
    }
}
