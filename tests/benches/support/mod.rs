//! What the benchmarks that run the real server binary share: building and starting
//! it on a state dir of its own, stopping it, reading its Prometheus text and the CPU
//! time of processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus histogram read from the server's text: cumulative `(bound, count)`,
/// sum and count.
#[derive(Default, Clone)]
pub struct Hist {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

pub fn histogram(metrics: &str, name: &str) -> Hist {
    let mut h = Hist::default();
    let bucket = format!("{name}_bucket{{le=\"");
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix(&bucket) {
            if let Some((le, v)) = rest.split_once("\"} ") {
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                h.buckets.push((le, v.trim().parse().unwrap_or(0.0)));
            }
        } else if let Some(v) = line.strip_prefix(&format!("{name}_sum ")) {
            h.sum = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix(&format!("{name}_count ")) {
            h.count = v.trim().parse().unwrap_or(0.0);
        }
    }
    h
}

impl Hist {
    /// What was observed after `before`.
    pub fn since(&self, before: &Hist) -> Hist {
        Hist {
            buckets: self
                .buckets
                .iter()
                .map(|(b, c)| {
                    let old = before
                        .buckets
                        .iter()
                        .find(|(ob, _)| ob == b)
                        .map_or(0.0, |x| x.1);
                    (*b, c - old)
                })
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// Upper bound (ms) of the bucket holding quantile `q`.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let rank = (q * self.count).ceil().max(1.0);
        self.buckets
            .iter()
            .find(|(_, c)| *c >= rank)
            .map_or(f64::NAN, |(b, _)| b * 1e3)
    }

    pub fn line(&self, unit: &str) -> String {
        if self.count == 0.0 {
            return "none".into();
        }
        format!(
            "mean {:.2} ms · p50 ≤ {} ms · p99 ≤ {} ms ({} {unit})",
            self.sum / self.count * 1e3,
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.count
        )
    }
}

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn parse_range_ms(s: &str) -> (Duration, Duration) {
    let ms = |v: &str| Duration::from_millis(v.trim().parse().unwrap());
    match s.split_once('-') {
        Some((lo, hi)) => (ms(lo), ms(hi)),
        None => (ms(s), ms(s)),
    }
}

/// The server binary: `PIXSIM_SERVER_BIN`, else a build with the bench profile (the
/// release settings) in this bench's target directory (cargo is quick when it is up to
/// date).
pub fn server_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("PIXSIM_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    // target/<profile>/deps/game_channel-… → target/<profile>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(str::to_owned))
        .unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!(
        "building pixsim-server (bench profile) into {}",
        target_dir.display()
    );
    let mut build = Command::new(cargo);
    // Cargo runs this bench with the variables of the `tests` package set
    // (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, …). Build scripts that watch them (ring
    // does) would see them change, rerun, and rebuild ring, rustls, quinn and all that
    // depends on them, here and again at the next `cargo bench`: so none is passed on.
    // The user's own settings (`CARGO_HOME`, `CARGO_PROFILE_*`, …) are kept.
    const SET_BY_CARGO: [&str; 8] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    for (name, _) in std::env::vars_os() {
        let watched = name
            .to_str()
            .is_some_and(|n| SET_BY_CARGO.iter().any(|p| n.starts_with(p)));
        if watched {
            build.env_remove(&name);
        }
    }
    let status = build
        .current_dir(&workspace)
        // The bench profile (the release settings): the profile of the `cargo bench`
        // that runs this, whose artifacts it then shares.
        .args([
            "build",
            "--profile",
            "bench",
            "-p",
            "pixsim-server",
            "--bin",
            "pixsim-server",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .unwrap();
    assert!(status.success(), "building pixsim-server failed");
    let bin = target_dir.join("release").join("pixsim-server");
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

pub struct Running {
    pub child: Child,
    pub http: String,
    pub quic: std::net::SocketAddr,
    /// The server's (embedded) PostgreSQL.
    pub database: String,
}

/// The server binary on `state` with what every benchmark run needs: the embedded
/// database (no `DATABASE_URL` or `REDIS_URL` from the caller's environment), ports
/// chosen by the system, the test metrics token, rate limits out of the bots' way (one
/// address, few accounts with many sessions), the demo content without reloading, and
/// `BENCH_SERVER_LOG` (`warn`) as its log filter. Callers add their own settings.
pub fn server_command(bin: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--state-dir")
        .arg(state)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("PIXSIM_HTTP__ADDR", "127.0.0.1:0")
        .env("PIXSIM_HTTP__METRICS_TOKEN", tests::METRICS_TOKEN)
        .env("PIXSIM_QUIC__ADDR", "127.0.0.1:0")
        .env("PIXSIM_AUTH__IP_BURST", "100000")
        .env("PIXSIM_AUTH__REGISTER_IP_BURST", "100000")
        .env("PIXSIM_GAME__MAX_LIVE_SESSIONS_PER_USER", "100000")
        .env("PIXSIM_CONTENT__SCENES_DIR", tests::demo_scenes())
        .env("PIXSIM_CONTENT__RELOAD_INTERVAL_MS", "0")
        .env("RUST_LOG", env_or("BENCH_SERVER_LOG", "warn"));
    cmd
}

/// Starts the server `cmd` (its arguments and environment set, `state` its state dir)
/// and waits until it prints that it is ready: its addresses and database URL.
pub fn launch(mut cmd: Command, state: &Path) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut http, mut quic, mut database) = (None, None, None);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the server did not become ready");
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("REST") {
            http = Some(rest.trim().trim_end_matches('/').to_owned());
        }
        if let Some(addr) = t
            .strip_prefix("QUIC")
            .and_then(|r| r.trim().strip_prefix("udp://"))
        {
            quic = addr.split_whitespace().next().and_then(|a| a.parse().ok());
        }
        if let Some(url) = t.strip_prefix("Database") {
            database = Some(url.trim().to_owned());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    Running {
        child,
        http: http.unwrap(),
        quic: quic.unwrap(),
        database: with_password(&database.unwrap(), state),
    }
}

/// The server prints its database URL with the password redacted (`:***@`): the
/// embedded cluster's is in the state dir.
fn with_password(url: &str, state: &Path) -> String {
    let file = embedded::postgres::password_file(&state.join("postgres"));
    let password =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    url.replacen(":***@", &format!(":{}@", password.trim()), 1)
}

/// Stops the server (SIGTERM: it stops its PostgreSQL too), killing it after 30 s.
pub fn stop(server: &mut Running) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// The server's Prometheus text.
pub async fn metrics(http: &str) -> String {
    reqwest::Client::new()
        .get(format!("{http}/metrics"))
        .bearer_auth(tests::METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// CPU time (user + system) of a process (`self`, or a pid), in seconds; 0 when its
/// `/proc/<pid>/stat` is unreadable.
pub fn cpu_secs(pid: impl std::fmt::Display) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime, fields 11 and 12 after the command.
    let ticks: f64 = f.get(11..13).map_or(0.0, |v| {
        v.iter().filter_map(|x| x.parse::<f64>().ok()).sum()
    });
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
}
