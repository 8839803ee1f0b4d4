//! The TypeScript client package (`clients/typescript`, `@pixsim/client`) against the
//! real server: its own tests (`npm test`: golden vectors both ways, lenient decoding,
//! framing, the schema copy), the `play-to-end` example over WebSocket (binary and
//! JSON) to an ending, a resume over WebSocket from Node, and the same story in
//! headless Chromium over WebSocket and WebTransport (screenshots in
//! `target/artifacts/`). Needs Node 20 and npm (`npm ci` runs once, offline when the
//! cache has the packages) and, for the browser tests, Chromium.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tests::{TempDir, TestServer};

use crate::browser::{Browser, artifact_path};
use crate::static_site::StaticSite;

const NODE_HINT: &str = "the TypeScript client tests need Node 20 and npm: install them with \
     `apt-get update && apt-get install -y nodejs npm` (Debian)";

/// The ending nodes of the demo's first scene (`scenes/gallery.toml`).
const ENDINGS: [&str; 3] = ["win", "busted", "neutral_end"];

/// Longest run of one npm or node command.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// `clients/typescript`.
pub(crate) fn package_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../clients/typescript"
    ))
}

/// Runs a command in the package directory, bounded by [`RUN_LIMIT`] (past it, the
/// test fails with the output so far).
async fn run(program: &str, args: &[&str]) -> Output {
    let dir = TempDir::new("node-run");
    let (out, err) = (dir.0.join("stdout"), dir.0.join("stderr"));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(package_dir())
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}): {NODE_HINT}"));
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    let Ok(status) = tokio::time::timeout(RUN_LIMIT, child.wait()).await else {
        let _ = child.kill().await;
        panic!(
            "`{program} {}` ran over {RUN_LIMIT:?}; its output so far:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&read(&out)),
            String::from_utf8_lossy(&read(&err))
        );
    };
    Output {
        status: status.unwrap(),
        stdout: read(&out),
        stderr: read(&err),
    }
}

async fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{stdout}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `npm ci` when `node_modules` is older than `package-lock.json` (or missing), then
/// `npm run build`; once per test process.
pub(crate) async fn built() {
    static DONE: Mutex<bool> = Mutex::new(false);
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = LOCK.lock().await;
    if *DONE.lock().unwrap() {
        return;
    }
    let dir = package_dir();
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let locked = modified(&dir.join("package-lock.json"));
    if installed.is_none() || installed < locked {
        run_ok(
            "npm",
            &["ci", "--prefer-offline", "--no-audit", "--no-fund"],
        )
        .await;
    }
    run_ok("npm", &["run", "build"]).await;
    *DONE.lock().unwrap() = true;
}

/// The last line of the output.
fn last_line(out: &str) -> &str {
    out.lines().last().unwrap_or("")
}

/// Asserts a `ending: <node>` line naming one of the scene's endings; returns the node.
fn assert_ending(out: &str) -> String {
    let last = last_line(out);
    let node = last
        .strip_prefix("ending: ")
        .unwrap_or_else(|| panic!("the last line is not `ending: <node>`:\n{out}"));
    assert!(
        ENDINGS.contains(&node),
        "{node} is no ending of the scene:\n{out}"
    );
    node.to_owned()
}

/// Every reflex press claimed a time inside its window, on the server's clock: a miss
/// may only be late arrival (a loaded machine), never a wrong claim.
fn assert_reflex_claims_in_window(out: &str) {
    for line in out
        .lines()
        .filter(|l| l.contains("reflex round") && l.contains("miss"))
    {
        assert!(
            !line.contains("before the window opened")
                && !line.contains("after the window closed")
                && !line.contains("ahead of the server clock"),
            "a press claimed a time outside its window: {line}\n{out}"
        );
    }
}

#[tokio::test]
async fn ts_package_tests_pass() {
    built().await;
    let out = run_ok("npm", &["test"]).await;
    assert!(out.contains("# fail 0"), "{out}");
    // The golden vectors are among them.
    assert!(out.contains("golden server.event"), "{out}");
}

async fn play_to_end(t: &TestServer, email: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "examples/play-to-end.mjs",
        "--http",
        &t.base,
        "--email",
        email,
        "--password",
        "password123",
        "--register",
    ];
    args.extend_from_slice(extra);
    run_ok("node", &args).await
}

#[tokio::test]
async fn ts_example_plays_to_an_ending_over_websocket() {
    built().await;
    let t = TestServer::start().await;
    let out = play_to_end(&t, "ts-ws@example.com", &["--transport", "websocket"]).await;
    assert_ending(&out);
    assert_reflex_claims_in_window(&out);
    assert!(out.contains("over websocket"), "{out}");
    // The JSON subprotocol plays the same story.
    let out = play_to_end(&t, "ts-json@example.com", &["--json"]).await;
    assert_ending(&out);
    assert_reflex_claims_in_window(&out);
    t.stop().await;
}

#[tokio::test]
async fn ts_example_refuses_webtransport_in_node_clearly() {
    built().await;
    let t = TestServer::start().await;
    let out = run(
        "node",
        &[
            "examples/play-to-end.mjs",
            "--http",
            &t.base,
            "--email",
            "ts-wt-node@example.com",
            "--password",
            "password123",
            "--register",
            "--transport",
            "webtransport",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WebTransport is not available here"), "{err}");
    t.stop().await;
}

#[tokio::test]
async fn ts_client_resumes_over_websocket() {
    built().await;
    let t = TestServer::start().await;
    for (email, extra) in [
        ("ts-resume@example.com", None),
        ("ts-resume-json@example.com", Some("--json")),
    ] {
        let mut args = vec![
            "e2e/resume.mjs",
            "--http",
            &t.base,
            "--email",
            email,
            "--password",
            "password123",
        ];
        args.extend(extra);
        let out = run_ok("node", &args).await;
        assert!(last_line(&out).starts_with("resume ok: "), "{out}");
        assert_reflex_claims_in_window(&out);
    }
    t.stop().await;
}

/// Plays the first scene in headless Chromium over `transport`, from a page on its own
/// site that forwards `/api/` to the server; returns the page's result.
async fn play_in_chromium(t: &TestServer, transport: &str) -> serde_json::Value {
    built().await;
    let upstream = t.base.trim_start_matches("http://").to_owned();
    let site = StaticSite::start(package_dir(), upstream).await;
    let browser = Browser::launch_with(transport == "webtransport").await;
    let mut page = browser.page().await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    let url = format!(
        "{}/e2e/play.html?transport={transport}&email=ts-browser-{transport}%40example.com&password=password123",
        site.origin
    );
    page.call("Page.navigate", json!({"url": url})).await;
    page.wait_for_within(
        "the page to play to an ending",
        "!!document.body && ['done', 'error'].includes(document.body.dataset.state)",
        Duration::from_secs(120),
    )
    .await;
    let result = page.eval("window.pixsimResult").await;
    page.screenshot(&artifact_path(&format!("ts-client-{transport}.png")))
        .await;
    let log = page.text("#log").await;
    assert!(
        result["error"].is_null(),
        "the page failed over {transport}: {}\n{log}",
        result["error"]
    );
    assert!(
        ENDINGS.contains(&result["ending"].as_str().unwrap_or("")),
        "{result}\n{log}"
    );
    assert_eq!(result["transport"], transport, "{result}");
    assert_reflex_claims_in_window(&log);
    assert!(page.exceptions.is_empty(), "{:?}", page.exceptions);
    result
}

#[tokio::test]
async fn ts_client_plays_in_chromium_over_websocket() {
    let t = TestServer::start().await;
    play_in_chromium(&t, "websocket").await;
    t.stop().await;
}

#[tokio::test]
async fn ts_client_plays_in_chromium_over_webtransport() {
    let t = TestServer::start().await;
    play_in_chromium(&t, "webtransport").await;
    t.stop().await;
}
