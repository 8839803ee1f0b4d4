//! REST throughput (issue #24): the real `pixsim-server` binary (release build, embedded
//! PostgreSQL) and a load generator in this process, `BENCH_CONNS` (32) HTTP/1.1
//! keep-alive connections, each a client task sending its next request when the last
//! answered (closed loop), for `BENCH_SECS` (5) per operation after a second of warm-up:
//!
//! - `GET /health`, `GET /api/v1/users/me`, `GET /api/v1/assets` (the first page, 50 by
//!   default, holding the user's 20 assets), `GET /api/v1/game/scenes/gallery`;
//! - `POST /api/v1/game/sessions/{id}/choose`: each connection plays its own session,
//!   taking an offered choice each time, every answer durable. The scene is
//!   `bench_loop` (added to a copy of the demo content): a choice of two actions, each
//!   changing state and leading back to the choice, so a choice is always open and the
//!   rate is the server's, not the content's pace (`BENCH_CHOOSE_SCENE=gallery` plays
//!   the demo instead, whose choices open seconds apart; a new session when one ends,
//!   those starts not counted);
//! - `POST /api/v1/auth/login`, bounded by the password hash (Argon2id, 19 MiB, 2
//!   passes: one hash per core at a time).
//!
//! Prints requests per second and latency percentiles per operation beside the targets
//! (20,000 req/s for health, 10,000 for users/me, 5,000 for the assets list and the
//! scene read, each with p99 under 15 ms at 32 connections; choose at least 4,000 per
//! second with p99 at most 34 ms), and the CPU time of the server and of this process.
//! The load generator shares the machine with the server: its CPU is reported apart.
//!
//! `cargo bench -p tests --bench rest`. Environment: `BENCH_CONNS`, `BENCH_SECS`,
//! `BENCH_OPS` (all: `health,me,assets,scene,choose,login`), `PIXSIM_SERVER_BIN`.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{cpu_secs, env_num, env_or, server_binary, stop};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PASSWORD: &str = "bench-password-1";
const BOUNDARY: &str = "pixsim-bench-boundary";

/// The choose benchmark's scene: a choice always open, each answer a state change.
const LOOP_SCENE: &str = r#"
id = "bench_loop"
title = "Left or right, forever"
entry = "hub"

[[nodes]]
id = "hub"
kind = "choice"
prompt = "Left or right?"

[[nodes]]
id = "left"
kind = "action"
effects = [{ op = "inc", var = "loot" }]

[[nodes]]
id = "right"
kind = "action"
effects = [{ op = "give", item = "coin" }, { op = "xp", amount = 1 }]

[[edges]]
id = "go_left"
from = "hub"
to = "left"
label = "Left"

[[edges]]
id = "go_right"
from = "hub"
to = "right"
label = "Right"

[[edges]]
id = "left_back"
from = "left"
to = "hub"
default = true

[[edges]]
id = "right_back"
from = "right"
to = "hub"
default = true
"#;

/// One operation's results.
#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Run {
    fn merge(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn pct(&self, q: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort();
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// CPU seconds of the server's PostgreSQL: its postmaster (`postmaster.pid` in the
/// state dir) and every process it started (backends, writers).
fn pg_cpu_secs(state: &std::path::Path) -> f64 {
    let Some(postmaster) = std::fs::read_to_string(state.join("postgres/postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return 0.0;
    };
    let mut total = cpu_secs(postmaster);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            total += cpu_secs(pid);
        }
    }
    total
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .unwrap()
}

async fn post_json(
    c: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = c.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A user and its access token.
async fn user(c: &reqwest::Client, base: &str, email: &str) -> String {
    let (s, v) = post_json(
        c,
        &format!("{base}/api/v1/auth/register"),
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 201, "register: {v}");
    let (s, v) = post_json(
        c,
        &format!("{base}/api/v1/auth/login"),
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "login: {v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// Uploads `n` small distinct PNGs as the user's assets.
async fn upload_pngs(c: &reqwest::Client, base: &str, token: &str, n: u8) {
    for i in 0..n {
        let png = generation::render::stills::encode_png_rgb(
            &[i.wrapping_mul(37), 80, 200 - i].repeat(16 * 16),
            16,
            16,
        )
        .unwrap();
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&png);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let res = c
            .post(format!("{base}/api/v1/assets/upload"))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }
}

/// Runs `conns` closed-loop clients for `secs` (after `warm` unmeasured), each calling
/// `step(client index, its HTTP client)` until the time is up; `step` returns the
/// measured request's latency, or an error.
async fn drive<F, Fut>(conns: usize, warm: Duration, secs: Duration, step: F) -> Run
where
    F: Fn(usize, reqwest::Client) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Duration, String>> + Send,
{
    let step = Arc::new(step);
    let measuring = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (step, measuring, done) = (step.clone(), measuring.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut run = Run::default();
            while !done.load(Ordering::Relaxed) {
                let r = step(i, c.clone()).await;
                if !measuring.load(Ordering::Relaxed) || done.load(Ordering::Relaxed) {
                    continue;
                }
                match r {
                    Ok(d) => run.latencies.push(d),
                    Err(e) => {
                        run.errors += 1;
                        run.first_error.get_or_insert(e);
                    }
                }
            }
            run
        }));
    }
    tokio::time::sleep(warm).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(secs).await;
    done.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed();
    let mut total = Run {
        elapsed,
        ..Default::default()
    };
    for t in tasks {
        total.merge(t.await.unwrap());
    }
    total
}

/// A GET expected to answer 200; its latency.
async fn get(c: &reqwest::Client, url: &str, token: Option<&str>) -> Result<Duration, String> {
    let t = Instant::now();
    let mut req = c.get(url);
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    let d = t.elapsed();
    if status.is_success() {
        Ok(d)
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// The choices a session's events offer last, as `(edge, ms until available)` (0: now;
/// a choice revealed later counts from the event that offered it); `None` when the
/// session ended. Empty while it waits on something else (a mini-game).
fn offered(events: &Value) -> Option<Vec<(String, u64)>> {
    let mut last = None;
    for e in events.as_array()? {
        let ev = &e["event"];
        if ev.get("SessionEnded").is_some() {
            return None;
        }
        let at = e["at_ms"].as_i64().unwrap_or(0);
        if let Some(c) = ev.get("ChoicesOffered") {
            last = Some(
                c["choices"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| {
                                let wait = c["available_at_ms"]
                                    .as_i64()
                                    .map_or(0, |a| (a - at).max(0) as u64);
                                Some((c["edge"].as_str()?.to_owned(), wait))
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            );
        }
        if ev.get("MiniGameStarted").is_some() || ev.get("ReflexRound").is_some() {
            last = Some(Vec::new());
        }
    }
    last
}

/// One connection's game: its session and the choices it may take next.
#[derive(Default)]
struct Play {
    session: Option<String>,
    choices: Vec<(String, u64)>,
    turn: usize,
}

/// One measured choose on connection `i` (starting a session first when it has none
/// or its last ended: not measured).
async fn choose_step(
    base: &str,
    token: &str,
    scene: &str,
    play: &tokio::sync::Mutex<Play>,
    c: &reqwest::Client,
) -> Result<Duration, String> {
    let mut p = play.lock().await;
    if p.session.is_none() || p.choices.is_empty() {
        if let Some(id) = p.session.take() {
            let _ = post_json(
                c,
                &format!("{base}/api/v1/game/sessions/{id}/choose"),
                Some(token),
                json!({"leave": true}),
            )
            .await;
        }
        let (s, v) = post_json(
            c,
            &format!("{base}/api/v1/game/sessions"),
            Some(token),
            json!({ "scene": scene }),
        )
        .await;
        if s != 201 {
            return Err(format!("start {s}: {v}"));
        }
        p.session = v["id"].as_str().map(str::to_owned);
        p.choices = offered(&v["events"]).unwrap_or_default();
        if p.choices.is_empty() {
            return Err(format!("a new session offers no choice: {v}"));
        }
    }
    let id = p.session.clone().unwrap();
    p.turn += 1;
    let (edge, wait) = p.choices[p.turn % p.choices.len()].clone();
    // A choice revealed later (the content's `reveal_ms`): wait for it, unmeasured.
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait + 60)).await;
    }
    let t = Instant::now();
    let (s, v) = post_json(
        c,
        &format!("{base}/api/v1/game/sessions/{id}/choose"),
        Some(token),
        json!({"edge": edge}),
    )
    .await;
    let d = t.elapsed();
    if s != 200 {
        p.choices.clear();
        return Err(format!("choose {s}: {v}"));
    }
    p.choices = offered(&v["events"]).unwrap_or_default();
    Ok(d)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let conns = env_num("BENCH_CONNS", 32) as usize;
    let secs = Duration::from_secs(env_num("BENCH_SECS", 5));
    let warm = Duration::from_secs(1);
    let ops_env = env_or("BENCH_OPS", "health,me,assets,scene,choose,login");
    let ops: Vec<&str> = ops_env.split(',').map(str::trim).collect();
    let bin = server_binary();
    let state = std::env::temp_dir().join(format!("pixsim-rest-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let scenes = tests::copy_demo_scenes();
    std::fs::write(scenes.0.join("bench_loop.toml"), LOOP_SCENE).unwrap();
    let scene = Arc::new(env_or("BENCH_CHOOSE_SCENE", "bench_loop"));
    let mut cmd = support::server_command(&bin, &state);
    cmd.env("PIXSIM_WEBTRANSPORT__ENABLED", "false")
        .env("PIXSIM_CONTENT__SCENES_DIR", &scenes.0)
        .env("PIXSIM_CONTENT__ASSETS_DIR", tests::demo_assets());
    let mut server = support::launch(cmd, &state);
    let base = server.http.clone();
    let pid = server.child.id();
    let setup = client();
    // One user per connection, each with 20 assets.
    let mut tokens = Vec::new();
    for i in 0..conns {
        let t = user(&setup, &base, &format!("rest-{i}@bench.example")).await;
        upload_pngs(&setup, &base, &t, 20).await;
        tokens.push(t);
    }
    let tokens = Arc::new(tokens);
    println!(
        "== REST: {conns} connections, {} s per operation after 1 s of warm-up, release server on its embedded PostgreSQL ==",
        secs.as_secs()
    );
    let mut lines = Vec::new();
    for op in ops {
        let (target_rate, target_p99) = match op {
            "health" => (20_000.0, 15.0),
            "me" => (10_000.0, 15.0),
            "assets" | "scene" => (5_000.0, 15.0),
            "choose" => (4_000.0, 34.0),
            _ => (0.0, f64::NAN),
        };
        let server_cpu0 = cpu_secs(pid);
        let pg_cpu0 = pg_cpu_secs(&state);
        let own_cpu0 = cpu_secs(std::process::id());
        let b = Arc::new(base.clone());
        let tk = tokens.clone();
        let run = match op {
            "health" => {
                drive(conns, warm, secs, move |_, c| {
                    let b = b.clone();
                    async move { get(&c, &format!("{b}/health"), None).await }
                })
                .await
            }
            "me" => {
                drive(conns, warm, secs, move |i, c| {
                    let (b, tk) = (b.clone(), tk.clone());
                    async move { get(&c, &format!("{b}/api/v1/users/me"), Some(&tk[i])).await }
                })
                .await
            }
            "assets" => {
                drive(conns, warm, secs, move |i, c| {
                    let (b, tk) = (b.clone(), tk.clone());
                    async move { get(&c, &format!("{b}/api/v1/assets"), Some(&tk[i])).await }
                })
                .await
            }
            "scene" => {
                drive(conns, warm, secs, move |i, c| {
                    let (b, tk) = (b.clone(), tk.clone());
                    async move {
                        get(&c, &format!("{b}/api/v1/game/scenes/gallery"), Some(&tk[i])).await
                    }
                })
                .await
            }
            "choose" => {
                let plays: Arc<Vec<tokio::sync::Mutex<Play>>> =
                    Arc::new((0..conns).map(|_| Default::default()).collect());
                let scene = scene.clone();
                drive(conns, warm, secs, move |i, c| {
                    let (b, tk, plays, scene) =
                        (b.clone(), tk.clone(), plays.clone(), scene.clone());
                    async move { choose_step(&b, &tk[i], &scene, &plays[i], &c).await }
                })
                .await
            }
            "login" => {
                drive(conns, warm, secs, move |i, c| {
                    let b = b.clone();
                    async move {
                        let t = Instant::now();
                        let (s, v) = post_json(
                        &c,
                        &format!("{b}/api/v1/auth/login"),
                        None,
                        json!({"email": format!("rest-{i}@bench.example"), "password": PASSWORD}),
                    )
                    .await;
                        let d = t.elapsed();
                        if s == 200 {
                            Ok(d)
                        } else {
                            Err(format!("login {s}: {v}"))
                        }
                    }
                })
                .await
            }
            other => panic!("unknown operation {other}"),
        };
        let server_cpu = cpu_secs(pid) - server_cpu0;
        let pg_cpu = pg_cpu_secs(&state) - pg_cpu0;
        let own_cpu = cpu_secs(std::process::id()) - own_cpu0;
        let window = (secs + warm).as_secs_f64();
        let target = if target_rate > 0.0 {
            format!(" (target ≥ {target_rate:.0}/s, p99 ≤ {target_p99} ms)")
        } else {
            " (bounded by the password hash)".into()
        };
        let line = format!(
            "{op:<7} {:>8.0} req/s · p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms · {} errors{target} · CPU: server {:.0} %, PostgreSQL {:.0} %, load generator {:.0} %",
            run.rate(),
            run.pct(0.5),
            run.pct(0.99),
            run.pct(1.0),
            run.errors,
            server_cpu / window * 100.0,
            pg_cpu / window * 100.0,
            own_cpu / window * 100.0,
        );
        println!("{line}");
        if let Some(e) = &run.first_error {
            println!("        first error: {e}");
        }
        lines.push(line);
    }
    stop(&mut server);
    let _ = std::fs::remove_dir_all(&state);
}
