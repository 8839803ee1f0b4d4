//! Tick-cost benchmarks (`cargo bench -p sim --bench tick`).
//!
//! - `idle_tick/100k`: one tick with 100,000 loaded sessions and no commands
//!   (target: <= 20 ns per idle session per tick).
//! - `tick_100k_loaded_1pct_active`: 100,000 loaded sessions, 1,000 commands per tick.
//! - `tick_10k_all_active`: 10,000 sessions, every one sends a command in the same tick
//!   (target: <= 5 us per processed command).
//!
//! Memory per idle session (target <= 4 KiB) is measured with a counting global allocator
//! and printed before the criterion runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use bevy_app::App;
use criterion::Criterion;
use sim::{Command, SessionId, SimCommand, SimConfig};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);
/// Counting is only switched on while measuring memory, so timings are not skewed.
static COUNT: AtomicBool = AtomicBool::new(false);

// SAFETY: delegates to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNT.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNT.load(Ordering::Relaxed) {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Process CPU time (robust against other processes competing for the cores).
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn app_with(content_dir: &str, sessions: u64) -> App {
    let content = Arc::new(content::load_dir(dir(content_dir)).unwrap());
    let mut app = sim::build_app(content, SimConfig::default());
    let batch = 10_000;
    let mut next = 0;
    while next < sessions {
        let end = (next + batch).min(sessions);
        let cmds = (next..end).map(|i| SimCommand {
            session: SessionId::from_u128(u128::from(i)),
            command: Command::Start {
                scene: None,
                seed: i,
            },
        });
        tick_drop(&mut app, cmds);
        next = end;
    }
    assert_eq!(sim::session_count(&app), sessions as usize);
    app
}

/// One tick; events are drained and dropped one by one (as a server serializing them would).
fn tick_drop(app: &mut App, cmds: impl IntoIterator<Item = SimCommand>) {
    app.world_mut()
        .resource_mut::<sim::Inbox>()
        .commands
        .extend(cmds);
    sim::step(app);
    for ev in app.world_mut().resource_mut::<sim::Outbox>().drain() {
        black_box(ev);
    }
}

fn go(i: u64) -> SimCommand {
    SimCommand {
        session: SessionId::from_u128(u128::from(i)),
        command: Command::Choose { edge: "go".into() },
    }
}

fn memory_per_session(content_dir: &str, n: u64) -> f64 {
    let content = Arc::new(content::load_dir(dir(content_dir)).unwrap());
    let mut app = sim::build_app(content, SimConfig::default());
    sim::step(&mut app);
    COUNT.store(true, Ordering::Relaxed);
    let before = LIVE.load(Ordering::Relaxed);
    for chunk in 0..(n / 10_000) {
        let cmds = (chunk * 10_000..(chunk + 1) * 10_000).map(|i| SimCommand {
            session: SessionId::from_u128(u128::from(i)),
            command: Command::Start {
                scene: None,
                seed: i,
            },
        });
        drop(sim::tick(&mut app, cmds));
    }
    drop(sim::tick(&mut app, []));
    let after = LIVE.load(Ordering::Relaxed);
    COUNT.store(false, Ordering::Relaxed);
    let per = (after - before) as f64 / n as f64;
    drop(app);
    per
}

fn benches(c: &mut Criterion) {
    // 100k loaded, idle.
    let mut app = app_with("benches/content", 100_000);
    c.bench_function("idle_tick/100k_sessions", |b| {
        b.iter(|| tick_drop(&mut app, []));
    });
    // 100k loaded, 1% (1,000) act per tick; cycle through sessions.
    let mut cursor = 0u64;
    c.bench_function("tick/100k_loaded_1pct_active", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cmds: Vec<SimCommand> =
                    (0..1_000).map(|k| go((cursor + k) % 100_000)).collect();
                cursor = (cursor + 1_000) % 100_000;
                let t = Instant::now();
                tick_drop(&mut app, cmds);
                total += t.elapsed();
            }
            total
        });
    });
    drop(app);
    // 10k sessions, all act in one tick.
    let mut app = app_with("benches/content", 10_000);
    c.bench_function("tick/10k_all_active", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cmds: Vec<SimCommand> = (0..10_000).map(go).collect();
                let t = Instant::now();
                tick_drop(&mut app, cmds);
                total += t.elapsed();
            }
            total
        });
    });
}

fn main() {
    if let Some(ticks) = std::env::var_os("PIXSIM_PROFILE_ONE_PCT") {
        // Profiling aid: only the 1%-active loop, for a fixed number of ticks.
        let ticks: u64 = ticks.to_str().and_then(|t| t.parse().ok()).unwrap_or(300);
        let mut app = app_with("benches/content", 100_000);
        for r in 0..ticks {
            let cmds: Vec<SimCommand> = (0..1_000).map(|k| go((r * 1_000 + k) % 100_000)).collect();
            tick_drop(&mut app, cmds);
        }
        println!("{ticks} ticks");
        return;
    }
    {
        // Allocations per processed command in steady state.
        let mut app = app_with("benches/content", 10_000);
        tick_drop(&mut app, (0..10_000).map(go));
        let cmds: Vec<SimCommand> = (0..10_000).map(go).collect();
        COUNT.store(true, Ordering::Relaxed);
        let before = ALLOCS.load(Ordering::Relaxed);
        tick_drop(&mut app, cmds);
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        COUNT.store(false, Ordering::Relaxed);
        println!(
            "allocations per processed command: {:.1}",
            allocs as f64 / 10_000.0
        );
    }
    let demo = memory_per_session("../../scenes", 100_000);
    let lp = memory_per_session("benches/content", 100_000);
    println!(
        "memory per idle session: demo story {demo:.0} B, bench loop {lp:.0} B (target <= 4096 B)"
    );

    // Direct per-unit figures (one timed run each), printed for the report.
    let mut app = app_with("benches/content", 100_000);
    for _ in 0..10 {
        tick_drop(&mut app, []);
    }
    let n: u32 = 200;
    let t = Instant::now();
    for _ in 0..n {
        tick_drop(&mut app, []);
    }
    let idle = t.elapsed().as_nanos() as f64 / f64::from(n) / 100_000.0;
    let (t, c) = (Instant::now(), cpu_now());
    for r in 0..n {
        let cmds: Vec<SimCommand> = (0..1_000)
            .map(|k| go((u64::from(r) * 1_000 + k) % 100_000))
            .collect();
        tick_drop(&mut app, cmds);
    }
    let one_pct = t.elapsed().as_nanos() as f64 / f64::from(n);
    let one_pct_cpu = (cpu_now() - c).as_nanos() as f64 / f64::from(n);
    drop(app);
    let mut app = app_with("benches/content", 10_000);
    let (t, c) = (Instant::now(), cpu_now());
    let rounds: u32 = 20;
    for _ in 0..rounds {
        let cmds: Vec<SimCommand> = (0..10_000).map(go).collect();
        tick_drop(&mut app, cmds);
    }
    let all = t.elapsed().as_nanos() as f64 / f64::from(rounds);
    let all_cpu = (cpu_now() - c).as_nanos() as f64 / f64::from(rounds);
    println!("idle tick, 100k sessions: {idle:.3} ns per idle session per tick (target <= 20 ns)");
    println!(
        "100k loaded, 1,000 commands per tick: {:.1} us per tick, {:.2} us per command wall, {:.2} us CPU (target <= 5 us)",
        one_pct / 1000.0,
        one_pct / 1000.0 / 1000.0,
        one_pct_cpu / 1000.0 / 1000.0
    );
    println!(
        "10k sessions all acting: {:.1} ms per tick, {:.2} us per command wall, {:.2} us CPU (target <= 5 us)",
        all / 1e6,
        all / 10_000.0 / 1000.0,
        all_cpu / 10_000.0 / 1000.0
    );
    drop(app);

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
}
