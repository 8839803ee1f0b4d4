//! An idle server (issue #24): the real `pixsim-server` binary (release build, demo
//! content, embedded PostgreSQL, no sessions). First a start on a fresh state dir (the
//! database cluster is created: not timed against the target), then `BENCH_STARTS` (5)
//! starts on that existing state dir, each timed from spawn to a 200 from `/ready`, and
//! its memory read `BENCH_SETTLE_SECS` (3) after it is ready: VmRSS, split into
//! anonymous memory (heap, stacks) and file-backed pages (the binary's code and data,
//! shared libraries), from `/proc/<pid>/status`.
//!
//! Targets: start to `/ready` under 1 s; idle RSS at most 32 MB.
//!
//! `cargo bench -p tests --bench idle`. Environment: `BENCH_STARTS`,
//! `BENCH_SETTLE_SECS`, `BENCH_SERVER_ENV` (`NAME=value,...` for the server, e.g.
//! `MIMALLOC_ALLOW_THP=1` to compare), `PIXSIM_SERVER_BIN`.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{env_num, env_or, server_binary, stop};

/// A `/proc/<pid>/status` field (`VmRSS`, …) in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    tests::status_kib(pid, &format!("{field}:"))
}

/// Whether `GET /ready` on `http://host:port` answers 200 (one plain HTTP/1.0 request).
fn ready(base: &str) -> bool {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /ready HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let starts = env_num("BENCH_STARTS", 5).max(1) as usize;
    let settle = Duration::from_secs(env_num("BENCH_SETTLE_SECS", 3));
    let bin = server_binary();
    let state = std::env::temp_dir().join(format!("pixsim-idle-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let extra = env_or("BENCH_SERVER_ENV", "");
    let command = || {
        let mut cmd = support::server_command(&bin, &state);
        cmd.env("PIXSIM_WEBTRANSPORT__ADDR", "127.0.0.1:0");
        for kv in extra.split(',').filter(|s| !s.is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k.trim(), v.trim());
            }
        }
        cmd
    };
    // The first start creates the database cluster.
    let t = Instant::now();
    let mut first = support::launch(command(), &state);
    println!(
        "== idle server: {} ==\nfirst start (fresh state dir, initdb): {:.0} ms",
        bin.display(),
        t.elapsed().as_secs_f64() * 1e3
    );
    stop(&mut first);
    let (mut ready_ms, mut rss, mut anon, mut file) = (vec![], vec![], vec![], vec![]);
    for _ in 0..starts {
        let t = Instant::now();
        let mut server = support::launch(command(), &state);
        while !ready(&server.http) {
            std::thread::sleep(Duration::from_millis(2));
        }
        ready_ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(settle);
        let pid = server.child.id();
        rss.push(status_kb(pid, "VmRSS") as f64 / 1024.0);
        anon.push(status_kb(pid, "RssAnon") as f64 / 1024.0);
        file.push(status_kb(pid, "RssFile") as f64 / 1024.0);
        stop(&mut server);
    }
    println!(
        "start to /ready (existing state dir): median {:.0} ms, slowest {:.0} ms over {starts} starts (target < 1000 ms)",
        median(ready_ms.clone()),
        ready_ms.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "idle RSS {} s after ready: median {:.1} MB (anonymous {:.1} MB, file-backed {:.1} MB; target ≤ 32 MB)",
        settle.as_secs(),
        median(rss),
        median(anon),
        median(file)
    );
    let _ = std::fs::remove_dir_all(&state);
}
