//! The real binary as a newcomer runs it: embedded PostgreSQL, user creation,
//! SIGTERM and SIGKILL leaving no process behind, data kept across runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tests::TempDir;

pub(crate) fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("pixsim-server");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build --bins`, which `make test` does)",
        bin.display()
    );
    bin
}

pub(crate) fn command(state: &Path) -> Command {
    let mut c = Command::new(server_binary());
    c.arg("--state-dir")
        .arg(state)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("PIXSIM_HTTP__ADDR", "127.0.0.1:0")
        .env("PIXSIM_QUIC__ADDR", "127.0.0.1:0")
        .env("PIXSIM_WEBTRANSPORT__ADDR", "127.0.0.1:0")
        .env("PIXSIM_CONTENT__SCENES_DIR", tests::demo_scenes())
        .env("RUST_LOG", "warn");
    c
}

/// Pids of processes whose command line mentions `needle`.
pub(crate) fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        // Zombies have an empty cmdline and are not running.
        if String::from_utf8_lossy(&cmd).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

pub(crate) fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) http: String,
    pub(crate) quic: std::net::SocketAddr,
}

impl Running {
    /// Registers `email` (password `password123`) and logs it in; its access token.
    pub(crate) async fn register_and_login(&self, http: &reqwest::Client, email: &str) -> String {
        let res = http
            .post(format!("{}/api/v1/auth/register", self.http))
            .json(&serde_json::json!({"email": email, "password": "password123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        self.login(http, email).await
    }

    /// Logs `email` in (password `password123`); its access token.
    pub(crate) async fn login(&self, http: &reqwest::Client, email: &str) -> String {
        let body: serde_json::Value = http
            .post(format!("{}/api/v1/auth/login", self.http))
            .json(&serde_json::json!({"email": email, "password": "password123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Starts the real binary on `state` and waits for its banner.
pub(crate) fn serve(state: &Path) -> Running {
    serve_with(state, |_| {})
}

/// [`serve`], with the command adjusted first (more environment, …).
pub(crate) fn serve_with(state: &Path, tweak: impl FnOnce(&mut Command)) -> Running {
    let mut cmd = command(state);
    tweak(&mut cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut http, mut quic) = (None, None);
    let mut printed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("server did not become ready; printed: {printed:#?}"));
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("REST") {
            http = Some(rest.trim().trim_end_matches('/').to_owned());
        }
        if let Some(rest) = t.strip_prefix("QUIC")
            && let Some(addr) = rest.trim().strip_prefix("udp://")
        {
            quic = addr.split_whitespace().next().and_then(|a| a.parse().ok());
        }
        let done = line.starts_with("Press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    assert!(
        printed.iter().any(|l| l.contains("API docs")),
        "{printed:#?}"
    );
    assert!(printed.iter().any(|l| l.contains("QUIC")), "{printed:#?}");
    Running {
        child,
        http: http.unwrap(),
        quic: quic.unwrap(),
    }
}

pub(crate) fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

pub(crate) async fn admin_token(http: &str) -> String {
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{http}/api/v1/auth/login"))
        .json(&json!({"email": "root@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let res = client
        .get(format!("{http}/api/v1/admin/tick"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the CLI-made admin reaches admin routes");
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_runs_on_embedded_postgres_and_leaves_nothing_behind() {
    let dir = TempDir::new("lifecycle");
    let state = dir.0.join("state");
    let needle = state.to_string_lossy().into_owned();

    let out = command(&state)
        .args([
            "user",
            "create",
            "--email",
            "root@example.com",
            "--password",
            "password123",
            "--admin",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin user root@example.com"));
    wait_until(
        "postgres to stop after `user create`",
        Duration::from_secs(20),
        || processes_mentioning(&needle).is_empty(),
    );

    let out = command(&state).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));

    // Serve, use, SIGTERM: exit 0 and no process left.
    let mut run = serve(&state);
    admin_token(&run.http).await;
    assert!(
        !processes_mentioning(&needle).is_empty(),
        "embedded postgres runs"
    );
    signal(&run.child, libc::SIGTERM);
    let status = run.child.wait().unwrap();
    assert!(status.success(), "{status}");
    wait_until("no process after SIGTERM", Duration::from_secs(10), || {
        processes_mentioning(&needle).is_empty()
    });

    // Restart on the same state dir: the data is still there. Then SIGKILL: the
    // embedded PostgreSQL follows its parent.
    let mut run = serve(&state);
    admin_token(&run.http).await;
    signal(&run.child, libc::SIGKILL);
    let _ = run.child.wait();
    wait_until(
        "postgres to follow a SIGKILLed server",
        Duration::from_secs(20),
        || processes_mentioning(&needle).is_empty(),
    );

    // And it comes back after the crash.
    let mut run = serve(&state);
    admin_token(&run.http).await;
    signal(&run.child, libc::SIGINT);
    assert!(run.child.wait().unwrap().success());
    wait_until("no process after SIGINT", Duration::from_secs(10), || {
        processes_mentioning(&needle).is_empty()
    });
}

#[test]
fn unreachable_database_aborts_startup_with_a_clear_message() {
    let dir = TempDir::new("nodb");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = command(&dir.0)
        .env(
            "DATABASE_URL",
            format!("postgres://pixsim:secret@127.0.0.1:{port}/pixsim"),
        )
        .env("PIXSIM_DATABASE__CONNECT_TIMEOUT_SECS", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the database at postgres://pixsim:***@127.0.0.1"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "password must not be printed: {err}"
    );
}

#[test]
fn bad_configuration_is_reported() {
    let dir = TempDir::new("badcfg");
    let file = dir.0.join("pixsim.toml");
    std::fs::write(&file, "[tick]\nrate_hz = \"fast\"\n").unwrap();
    let out = command(&dir.0).arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid configuration") && err.contains("rate_hz"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_request_id() {
    let db = store::testing::fresh_database().await.unwrap();
    let dir = TempDir::new("jsonlog");
    let log_path = dir.0.join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = command(&dir.0)
        .args(["--log-format", "json"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let http = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.trim()
                    .strip_prefix("REST")
                    .map(|r| r.trim().trim_end_matches('/').to_owned())
            })
    })
    .await
    .unwrap()
    .expect("the server printed its REST address");
    let res = reqwest::Client::new()
        .get(format!("{http}/api/v1/users/me"))
        .header("x-request-id", "trace-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{status}: {text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let tagged: Vec<_> = lines
        .iter()
        .filter(|l| l.to_string().contains("trace-7f3a"))
        .collect();
    assert!(!tagged.is_empty(), "request lines carry the id: {text}");
    assert!(
        tagged
            .iter()
            .any(|l| l["span"]["request_id"] == "trace-7f3a"),
        "the id is a span field: {tagged:#?}"
    );
    assert!(
        tagged.iter().any(|l| l["fields"]["status"] == 401),
        "{tagged:#?}"
    );
}

#[test]
fn scenes_validate_passes_on_the_demo_and_names_the_problem_in_a_broken_copy() {
    let out = command(Path::new("/tmp"))
        .args(["scenes", "validate"])
        .arg(tests::demo_scenes())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok (3 scenes"), "{stdout}");

    let broken = tests::copy_demo_scenes();
    tests::edit(
        &broken.0.join("gallery.toml"),
        "to = \"mara_talk\"",
        "to = \"nowhere\"",
    );
    let out = command(Path::new("/tmp"))
        .args(["scenes", "validate"])
        .arg(&broken.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("gallery.toml") && stdout.contains("nowhere"),
        "{stdout}"
    );

    // A generation spec the pipeline would refuse is a content error too, with its node.
    let bad_spec = tests::copy_demo_scenes();
    tests::edit(
        &bad_spec.0.join("gallery.toml"),
        "params = { duration = 3, aspect_ratio = \"16:9\" }",
        "params = { duration = 3, aspect_ratio = \"5:2\", provider = \"local\" }",
    );
    let out = command(Path::new("/tmp"))
        .args(["scenes", "validate"])
        .arg(&bad_spec.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("gallery.toml: node 'arrive': generation spec: ")
            && stdout.contains("aspect_ratio"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_command_runs_queued_jobs_and_stops_on_sigterm() {
    use generation::model::{Actor, CreateGeneration, GenerationParams, JobStatus, Operation};
    let db = store::testing::fresh_database().await.unwrap();
    let dir = TempDir::new("worker");
    // Queue a job as the server would.
    let mut cfg = tests::test_config(&db.url, dir.0.clone());
    cfg.generation.workers = 0;
    let service = pixsim_server::generation_service(&cfg, db.pool.clone()).unwrap();
    let user = store::users::create(
        &db.pool,
        store::users::NewUser {
            email: "w@example.com",
            password_hash: "x",
            display_name: None,
            role: domain::user::Role::User,
        },
    )
    .await
    .unwrap();
    let actor = Actor::user(user.id);
    let job = service
        .create(
            actor,
            CreateGeneration {
                provider: Some("local".into()),
                operation: Some(Operation::TextToVideo),
                params: GenerationParams {
                    prompt: Some("a lighthouse at dusk".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let mut child = command(&dir.0)
        .args(["worker", "--count", "2"])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = service.get(actor, job.id).await.unwrap();
        if g.status == JobStatus::Completed {
            assert!(g.asset_id.is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "job not completed by the worker process: {g:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
