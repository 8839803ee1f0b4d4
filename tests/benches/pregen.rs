//! Pre-generation on the demo with bots: the real `pixsim-server` binary (release
//! build, embedded PostgreSQL, its own generation worker on the offline `local`
//! provider, priced at 1 credit per second of video), and QUIC bots in this process
//! playing random valid choices with a think time.
//!
//! The demo has two generation nodes: the gallery's first node, where every session
//! starts (nothing can be made ahead of it: it is the control), and the epilogue's dawn,
//! deep in the story (winners only). Each mode runs on fresh state dirs (no media yet):
//! first with `generation.pregenerate_steps` = `BENCH_PREGEN_STEPS` (2), then with 0
//! (off). For each, from the server's `/metrics`: jobs made ahead, raised and
//! cancelled; first entries per spec by what they found (the hit rate is pregenerated /
//! (pregenerated + pregenerating + nothing)); credits spent ahead and left unused; and
//! the wait from node entry to media, for specs made ahead and for specs first asked for
//! by an entry, and per node (arrive, dawn).
//!
//! `cargo bench -p tests --bench pregen`. Environment: `BENCH_BOTS` (200),
//! `BENCH_SECS` (40), `BENCH_ROUNDS` (2: fresh servers per mode), `BENCH_THINK_MS`
//! (`500-1500`), `BENCH_PREGEN_STEPS` (2), `PIXSIM_SERVER_BIN` (default: built with the
//! bench profile).
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use game_client::Target;
use game_client::Trust;
use game_client::bots::{BotConfig, Fleet};
use support::{Hist, Running, env_num, env_or, histogram, parse_range_ms, server_binary, stop};

/// The bots allocate like `pixsim-client bots` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn serve(bin: &Path, state: &Path, steps: u64) -> Running {
    let mut cmd = support::server_command(bin, state);
    cmd.env("PIXSIM_WEBTRANSPORT__ENABLED", "false")
        .env("PIXSIM_GENERATION__WORKERS", "1")
        .env("PIXSIM_GENERATION__PREGENERATE_STEPS", steps.to_string())
        .env(
            "PIXSIM_GENERATION__PROVIDERS__LOCAL__CREDITS_PER_SECOND",
            "1",
        );
    support::launch(cmd, state)
}

/// One mode's figures, summed over its rounds.
#[derive(Default)]
struct Figures {
    jobs: f64,
    raised: f64,
    cancelled: f64,
    credits: f64,
    unused: f64,
    found: [f64; 4],
    ahead: Hist,
    on_entry: Hist,
    sessions_ended: u64,
    /// Per node (the gallery's arrive, the epilogue's dawn): entries, entries that
    /// waited, their waits summed (s).
    nodes: [(f64, f64, f64); 2],
}

const NODES: [(&str, &str); 2] = [("gallery", "arrive"), ("epilogue", "dawn")];

const FOUND: [&str; 4] = ["pregenerated", "pregenerating", "nothing", "existing"];

fn sample(m: &str, name: &str) -> f64 {
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn add(a: &Hist, b: &Hist) -> Hist {
    if a.count == 0.0 {
        return b.clone();
    }
    Hist {
        buckets: a
            .buckets
            .iter()
            .zip(&b.buckets)
            .map(|((bound, x), (_, y))| (*bound, x + y))
            .collect(),
        sum: a.sum + b.sum,
        count: a.count + b.count,
    }
}

/// Entries that waited at all (above the first bucket, 1 ms).
fn waited(h: &Hist) -> f64 {
    h.count - h.buckets.first().map_or(0.0, |b| b.1)
}

fn round(bin: &Path, rt: &tokio::runtime::Runtime, steps: u64, f: &mut Figures) {
    let state = std::env::temp_dir().join(format!(
        "pixsim-bench-pregen-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&state).unwrap();
    let mut server = serve(bin, &state, steps);
    let mut cfg = BotConfig::new(
        &server.http,
        Target::Quic {
            addr: server.quic,
            server_name: "localhost".into(),
            trust: Trust::CertFile(state.join("quic").join("cert.pem")),
        },
    );
    cfg.count = env_num("BENCH_BOTS", 200) as usize;
    cfg.accounts = 16;
    cfg.think = parse_range_ms(&env_or("BENCH_THINK_MS", "500-1500"));
    cfg.account_prefix = "pregen".into();
    let secs = env_num("BENCH_SECS", 40);
    let (report, m) = rt.block_on(async {
        let tokens = game_client::bots::login(&cfg).await.unwrap();
        let fleet = Fleet::launch(&cfg, &tokens).await.unwrap();
        let report = fleet.play(Duration::from_secs(secs)).await;
        // Let the last renders land and be counted.
        tokio::time::sleep(Duration::from_secs(3)).await;
        (report, support::metrics(&server.http).await)
    });
    stop(&mut server);
    let _ = std::fs::remove_dir_all(&state);
    eprintln!("  round: {report}");
    f.sessions_ended += report.json()["sessions_finished"].as_u64().unwrap_or(0);
    f.jobs += sample(&m, "pixsim_pregen_jobs_total");
    f.raised += sample(&m, "pixsim_pregen_raised_total");
    f.cancelled += sample(&m, "pixsim_pregen_cancelled_total");
    f.credits += sample(&m, "pixsim_pregen_credits_total");
    f.unused += sample(&m, "pixsim_pregen_unused_credits");
    for (i, label) in FOUND.iter().enumerate() {
        f.found[i] += sample(
            &m,
            &format!("pixsim_scene_media_first_entries_total{{found=\"{label}\"}}"),
        );
    }
    for (i, (scene, node)) in NODES.iter().enumerate() {
        let labels = format!("{{scene=\"{scene}\",node=\"{node}\"}}");
        f.nodes[i].0 += sample(
            &m,
            &format!("pixsim_scene_media_node_entries_total{labels}"),
        );
        f.nodes[i].1 += sample(&m, &format!("pixsim_scene_media_node_waited_total{labels}"));
        f.nodes[i].2 += sample(
            &m,
            &format!("pixsim_scene_media_node_wait_seconds_total{labels}"),
        );
    }
    f.ahead = add(
        &f.ahead,
        &histogram(&m, "pixsim_scene_media_wait_ahead_seconds"),
    );
    f.on_entry = add(
        &f.on_entry,
        &histogram(&m, "pixsim_scene_media_wait_on_entry_seconds"),
    );
}

fn main() {
    let bin = server_binary();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rounds = env_num("BENCH_ROUNDS", 2);
    let steps = env_num("BENCH_PREGEN_STEPS", 2);
    let mut modes = Vec::new();
    for s in [steps, 0] {
        eprintln!("=== pregenerate_steps = {s}: {rounds} rounds ===");
        let mut f = Figures::default();
        for _ in 0..rounds {
            round(&bin, &rt, s, &mut f);
        }
        modes.push((s, f));
    }
    println!();
    println!(
        "== pre-generation on the demo: {} bots, {} s, {rounds} fresh servers per mode ==",
        env_num("BENCH_BOTS", 200),
        env_num("BENCH_SECS", 40)
    );
    for (s, f) in &modes {
        let hits = f.found[0];
        let misses = f.found[1] + f.found[2];
        println!(
            "pregenerate_steps = {s}: {} sessions finished",
            f.sessions_ended
        );
        println!(
            "  jobs made ahead {} · raised on entry {} · cancelled unreached {} · credits ahead {} (unused {})",
            f.jobs, f.raised, f.cancelled, f.credits, f.unused
        );
        println!(
            "  first entries: pregenerated {} · pregenerating {} · nothing {} · existing {} → hit rate {}",
            f.found[0],
            f.found[1],
            f.found[2],
            f.found[3],
            if hits + misses > 0.0 {
                format!("{:.0} %", 100.0 * hits / (hits + misses))
            } else {
                "n/a".into()
            }
        );
        for (i, (scene, node)) in NODES.iter().enumerate() {
            let (entries, waited, sum) = f.nodes[i];
            println!(
                "  {scene}/{node}: {entries} entries, {waited} waited for the media, {:.0} ms each on average (total {:.1} s)",
                if waited > 0.0 {
                    sum / waited * 1e3
                } else {
                    0.0
                },
                sum
            );
        }
        println!(
            "  entry→media, specs made ahead: {}; entries that waited {}",
            f.ahead.line("entries"),
            waited(&f.ahead)
        );
        println!(
            "  entry→media, specs asked for by an entry: {}; entries that waited {}",
            f.on_entry.line("entries"),
            waited(&f.on_entry)
        );
    }
}
