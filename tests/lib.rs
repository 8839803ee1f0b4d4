//! Harness for the end-to-end tests: a real server (HTTP + QUIC + tick) on port 0,
//! against a fresh database of its own.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use pixsim_server::{Config, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing::{TestDatabase, fresh_database};

/// A server for one test.
pub struct TestServer {
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    pub state_dir: PathBuf,
}

/// A temp dir removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "pixsim-e2e-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `/metrics` scrape token of the servers of the tests.
pub const METRICS_TOKEN: &str = "test-scrape-token";

/// A configuration for tests: port 0, a fresh state dir, the given database.
pub fn test_config(db_url: &str, state_dir: PathBuf) -> Config {
    let mut cfg = Config {
        state_dir,
        ..Config::default()
    };
    cfg.http.addr = "127.0.0.1:0".parse().unwrap();
    cfg.quic.addr = "127.0.0.1:0".parse().unwrap();
    cfg.webtransport.addr = "127.0.0.1:0".parse().unwrap();
    cfg.database.url = Some(db_url.to_owned());
    cfg.database.max_connections = 5;
    cfg.http.shutdown_timeout_secs = 5;
    cfg.http.metrics_token = Some(METRICS_TOKEN.to_owned());
    cfg.content.scenes_dir = demo_scenes();
    // Also for copies of the scenes, whose default assets directory would be a temp one.
    cfg.content.assets_dir = Some(demo_assets());
    cfg.content.reload_interval_ms = 0;
    // Every request's line in the admin log (the server samples successes by default).
    cfg.log.request_sample = 1;
    // Tests register many users from 127.0.0.1 (tests/limits.rs checks the limit).
    cfg.auth.register_ip_burst = 10_000;
    // No reachability probes of the real providers from tests (tests/health.rs turns
    // them on against fakes).
    cfg.generation.provider_probe_secs = 0.0;
    cfg
}

/// The demo content in the repository.
pub fn demo_scenes() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenes"))
}

/// The demo's media (`assets/`), which the scenes name.
pub fn demo_assets() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
}

/// A writable copy of the demo content.
pub fn copy_demo_scenes() -> TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    let dir = TempDir::new("scenes");
    copy(&demo_scenes(), &dir.0);
    dir
}

/// Replaces `from` by `to` in a file, asserting that `from` is there.
pub fn edit(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        // As the binary does: quiet logs, and the system timing layer.
        pixsim_server::telemetry::init(&pixsim_server::config::LogConfig {
            filter: "warn".into(),
            ..Default::default()
        });
        let db = fresh_database().await.unwrap();
        let state_dir = std::env::temp_dir().join(format!("pixsim-e2e-{}", db.name));
        let mut cfg = test_config(&db.url, state_dir.clone());
        tweak(&mut cfg);
        let server = Server::start(cfg).await.unwrap();
        let base = format!("http://{}", server.http_addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            server,
            base,
            http,
            db,
            state_dir,
        }
    }

    pub async fn stop(self) {
        self.server.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// `/metrics` as text, scraped with the scrape token.
    pub async fn metrics(&self) -> String {
        let res = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers a user and returns its id.
    pub async fn register(&self, email: &str, password: &str) -> String {
        let (s, v) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (s, v) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// A fresh user and its token.
    pub async fn user(&self, email: &str) -> String {
        self.register(email, "password123").await;
        self.login(email, "password123").await
    }

    /// A fresh admin and its token (admins are made by the CLI, not by REST).
    pub async fn admin(&self, email: &str) -> String {
        self.server
            .state
            .auth
            .register(email, "password123", None, domain::user::Role::Admin)
            .await
            .unwrap();
        self.login(email, "password123").await
    }
}

/// Asserts the error envelope and returns its code.
pub fn error_code(body: &Value) -> &str {
    let err = body
        .get("error")
        .unwrap_or_else(|| panic!("no error envelope in {body}"));
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    err["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"))
}

/// A Python virtual environment holding the API's checking tools (`openapi-spec-validator`
/// and `schemathesis`, pinned), made once with pip in the cache the embedded crate
/// keeps its wheels in (`$PIXSIM_CACHE_DIR`, …), and reused. Returns its `python`.
pub fn python_tools() -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    const REQUIREMENTS: [&str; 2] = ["openapi-spec-validator==0.9.0", "schemathesis==4.32.5"];
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let name = format!(
        "pytools-{}",
        REQUIREMENTS.join("-").replace(['=', '.'], "_")
    );
    let dir = embedded::default_cache_dir().join(name);
    let python = dir.join("bin").join("python");
    if dir.join("ready").exists() {
        return python;
    }
    // Made aside and renamed into place, so another process never sees half a venv
    // (`python -m …` works from a moved venv).
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.parent().unwrap()).unwrap();
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed (python3 with venv and pip is needed, and PyPI):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&tmp));
    run(std::process::Command::new(tmp.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(REQUIREMENTS));
    std::fs::write(tmp.join("ready"), REQUIREMENTS.join("\n")).unwrap();
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process made it meanwhile.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(dir.join("ready").exists(), "no venv at {}", dir.display());
    python
}

/// A fresh embedded Redis on a free port (stopped when dropped, or with `kill_now`).
pub async fn start_redis() -> embedded::redis::EmbeddedRedis {
    let cache = embedded::default_cache_dir();
    tokio::task::spawn_blocking(move || {
        let work = std::env::temp_dir().join(format!(
            "pixsim-e2e-redis-{}",
            uuid::Uuid::new_v4().simple()
        ));
        embedded::redis::EmbeddedRedis::start(&cache, &work, 0)
    })
    .await
    .unwrap()
    .unwrap()
}

/// The peak resident memory of a child process from now on: `start` notes its RSS
/// and resets its high-water mark (writing 5 to `/proc/PID/clear_refs`); `grown_kib`
/// is the peak since then minus that RSS.
#[derive(Debug)]
pub struct PeakRss {
    pid: u32,
    base_kib: u64,
}

impl PeakRss {
    pub fn start(pid: u32) -> Self {
        let base_kib = status_kib(pid, "VmRSS:");
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
        PeakRss { pid, base_kib }
    }

    pub fn base_kib(&self) -> u64 {
        self.base_kib
    }

    pub fn peak_kib(&self) -> u64 {
        status_kib(self.pid, "VmHWM:")
    }

    pub fn grown_kib(&self) -> u64 {
        self.peak_kib().saturating_sub(self.base_kib)
    }
}

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`, …).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
