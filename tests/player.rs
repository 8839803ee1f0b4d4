//! The web scene player at `/play`, in headless Chromium over WebTransport: register,
//! start the demo, watch the generation node go from pending to a playing video, choose
//! with the mouse and with number keys, play a reflex round, see a real video decode and
//! advance, reload mid-scene and resume on the same node, click a hotspot, and play to
//! an ending; no CSP violation and no uncaught exception on the way. Screenshots are kept
//! in `target/artifacts/player-*.png`. Also: the player's files and their policy, and
//! the vendored `@pixsim/client` against a fresh `tsc` build.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tests::TestServer;

use crate::browser::{Browser, Page, artifact_path};

/// Collects the page's CSP violations (installed before any page script runs, again on
/// every load).
const CSP_LISTENER: &str = "window.__csp = []; document.addEventListener('securitypolicyviolation', \
     (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));";

/// The player's own steps.
impl Page {
    async fn player(&mut self, field: &str) -> Value {
        self.eval(&format!("(window.pixsimPlayer || {{}})[{}]", json!(field)))
            .await
    }

    async fn wait_node(&mut self, node: &str) {
        self.wait_for_within(
            &format!("node {node}"),
            &format!("(window.pixsimPlayer || {{}}).node === {}", json!(node)),
            Duration::from_secs(60),
        )
        .await;
    }

    /// A key press with real key events (a digit, `Enter` or ` `).
    async fn key(&mut self, key: &str) {
        let (code, vk) = match key {
            " " => ("Space".to_owned(), 32),
            "Enter" => ("Enter".to_owned(), 13),
            d => (format!("Digit{d}"), i64::from(d.as_bytes()[0])),
        };
        let text = if key == "Enter" { "\r" } else { key };
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyDown", "key": key, "code": code, "text": text, "windowsVirtualKeyCode": vk}),
        )
        .await;
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk}),
        )
        .await;
    }

    /// The video shows decoded frames (`readyState` >= 2) and its time moves on.
    async fn assert_video_plays(&mut self, what: &str) {
        self.wait_for_within(
            &format!("{what}: the video to decode"),
            "(() => { const v = document.querySelector('#video'); \
             return !v.hidden && v.readyState >= 2 && v.currentTime > 0; })()",
            Duration::from_secs(30),
        )
        .await;
        let t0 = self
            .eval("document.querySelector('#video').currentTime")
            .await
            .as_f64()
            .unwrap();
        self.wait_for(
            &format!("{what}: the video to advance past {t0}"),
            &format!("document.querySelector('#video').currentTime > {t0}"),
        )
        .await;
    }

    /// Plays the reflex rounds of `sneak`: each target pressed once it shows, the first
    /// with the mouse, the others with Space. Returns once the node was left.
    async fn play_reflex(&mut self) {
        for round in 1..=3 {
            let shown = format!(
                "(() => {{ const t = document.querySelector('#reflex-target'); \
                 return (window.pixsimPlayer.node !== 'sneak') || \
                 (!!t && !t.hidden && !t.disabled && t.dataset.round === '{round}'); }})()"
            );
            self.wait_for_within(
                &format!("reflex round {round}"),
                &shown,
                Duration::from_secs(30),
            )
            .await;
            if self.player("node").await != json!("sneak") {
                return;
            }
            if round == 1 {
                self.screenshot(&artifact_path("player-reflex.png")).await;
                self.click("#reflex-target").await;
            } else {
                self.key(" ").await;
            }
        }
        self.wait_for(
            "the reflex node to end",
            "window.pixsimPlayer.node !== 'sneak'",
        )
        .await;
    }

    async fn csp_violations(&mut self) -> Value {
        self.eval("window.__csp").await
    }
}

/// The WebTransport origin the server publishes.
async fn webtransport_origin(t: &TestServer) -> String {
    let (status, info) = t.get("/api/v1/game/webtransport", None).await;
    assert_eq!(status, 200, "{info}");
    let url = info["url"].as_str().unwrap();
    let rest = url.strip_prefix("https://").unwrap();
    format!("https://{}", rest.split('/').next().unwrap())
}

#[tokio::test]
async fn player_files_are_served_with_a_strict_policy() {
    let t = TestServer::start().await;
    let wt = webtransport_origin(&t).await;
    for (path, ty) in [
        ("/play", "text/html"),
        ("/play/player.js", "text/javascript"),
        ("/play/player.css", "text/css"),
        ("/play/vendor/index.js", "text/javascript"),
        ("/play/vendor/client/session.js", "text/javascript"),
    ] {
        let res = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers();
        let ct = h["content-type"].to_str().unwrap();
        assert!(ct.starts_with(ty), "{path}: {ct}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none';"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("style-src 'self';"), "{csp}");
        assert!(csp.contains(&format!("connect-src 'self' {wt};")), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    for missing in [
        "/play/nope.js",
        "/play/vendor/nope.js",
        "/play/vendor/client/nope.js",
        "/play/vendor/%2e%2e%2fplayer.js",
    ] {
        let res = t.http.get(t.url(missing)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{missing}");
    }
    t.stop().await;
}

#[tokio::test]
async fn player_plays_the_demo_in_chromium() {
    let t = TestServer::start().await;
    let browser = Browser::launch_with(true).await;
    let mut page = browser.page().await;
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": CSP_LISTENER}),
    )
    .await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    page.call("Page.navigate", json!({"url": t.url("/play")}))
        .await;

    // Register through the form.
    page.wait_for(
        "the sign-in form",
        "!!document.body && document.body.dataset.screen === 'auth'",
    )
    .await;
    page.type_into("#auth-email", "watcher@example.com").await;
    page.type_into("#auth-password", "password123").await;
    page.click("#register").await;
    page.wait_for(
        "the story picker",
        "document.body.dataset.screen === 'pick'",
    )
    .await;
    page.wait_visible("#story-gallery").await;
    page.screenshot(&artifact_path("player-stories.png")).await;

    // The demo: its first node is generated; the page waits, then plays it.
    page.click("#story-gallery").await;
    page.wait_node("arrive").await;
    assert_eq!(page.player("transport").await, json!("webtransport"));
    page.wait_for(
        "the generation node to show its pending state",
        "window.pixsimPlayer.history.includes('pending:arrive')",
    )
    .await;
    page.wait_for_within(
        "the generated media to arrive",
        "window.pixsimPlayer.history.includes('media:arrive')",
        Duration::from_secs(120),
    )
    .await;
    let history = page.player("history").await;
    let at = |h: &str| {
        let at = history.as_array().unwrap().iter().position(|x| x == h);
        at.unwrap_or_else(|| panic!("no {h} in {history}"))
    };
    assert!(
        at("pending:arrive") < at("media:arrive"),
        "pending before playing: {history}"
    );
    // The server's figures reached the page while it waited (`MediaProgress`).
    let progress = history
        .as_array()
        .unwrap()
        .iter()
        .position(|x| x.as_str().is_some_and(|h| h.starts_with("progress:")))
        .unwrap_or_else(|| panic!("no progress in {history}"));
    assert!(
        at("pending:arrive") < progress && progress < at("media:arrive"),
        "progress while pending: {history}"
    );
    // The local provider's H.264/MP4, decoded by the browser.
    page.assert_video_plays("the generated clip").await;
    page.screenshot(&artifact_path("player-generated.png"))
        .await;

    // A revealed choice, with the mouse.
    page.wait_visible("#choices button").await;
    page.click("#choices button").await;
    page.wait_node("mara_talk").await;
    let lines = page.text("#lines").await;
    assert!(
        lines.contains("Mara") && lines.contains("keycard"),
        "{lines}"
    );
    // Keyboard: the number key chooses.
    page.wait_visible("#choices button").await;
    page.key("1").await;
    page.wait_node("plan").await;

    // Sneak: a reflex round, until the vault door (a failed round comes back to the plan).
    loop {
        page.wait_visible("#choices button[data-edge='go_sneak']")
            .await;
        page.click("#choices button[data-edge='go_sneak']").await;
        page.wait_node("sneak").await;
        page.play_reflex().await;
        page.wait_for_within(
            "the vault door or the plan",
            "['door', 'plan'].includes(window.pixsimPlayer.node) || window.pixsimPlayer.ended !== null",
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(
            page.player("ended").await,
            Value::Null,
            "the reflex rounds failed twice"
        );
        if page.player("node").await == json!("door") {
            break;
        }
    }

    // The vault door: the content's MP4, streamed from /assets/.
    page.assert_video_plays("the vault door").await;
    let src = page
        .eval("document.querySelector('#video').currentSrc")
        .await;
    assert!(
        src.as_str().unwrap().ends_with("/assets/vault_door.mp4"),
        "{src}"
    );
    page.screenshot(&artifact_path("player-door.png")).await;
    assert_eq!(page.csp_violations().await, json!([]));

    // A reload resumes the same session on the same node.
    let session = page.player("sessionId").await;
    page.call("Page.reload", json!({})).await;
    page.wait_for(
        "the player to rejoin",
        "!!window.pixsimPlayer && window.pixsimPlayer.history.some((h) => h.startsWith('join:'))",
    )
    .await;
    page.wait_node("door").await;
    assert_eq!(page.player("sessionId").await, session);
    page.assert_video_plays("the vault door after a reload")
        .await;

    // A hotspot over the video (the door's keypad or corridor).
    page.wait_visible("#hotspots .hotspot").await;
    page.screenshot(&artifact_path("player-hotspot.png")).await;
    page.click("#hotspots .hotspot").await;
    page.wait_for("the door to be left", "window.pixsimPlayer.node !== 'door'")
        .await;

    // On to an ending with the keyboard only.
    play_to_end_with_keys(&mut page).await;
    page.wait_visible("#ended").await;
    page.screenshot(&artifact_path("player-ending.png")).await;
    assert_eq!(page.csp_violations().await, json!([]));
    assert!(page.exceptions.is_empty(), "{:?}", page.exceptions);
    drop(browser);
    t.stop().await;
}

/// Presses `1` at each offer and Space at each reflex target until the story ends.
async fn play_to_end_with_keys(page: &mut Page) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        page.wait_for_within(
            "an offer, a reflex target or the end",
            "(() => { const p = window.pixsimPlayer; if (p.ended !== null) return true; \
             const t = document.querySelector('#reflex-target'); \
             if (t && !t.hidden && !t.disabled) return true; \
             return !!document.querySelector('#choices button:not(:disabled), #hotspots button:not(:disabled)'); })()",
            Duration::from_secs(60),
        )
        .await;
        if page.player("ended").await != Value::Null {
            return;
        }
        // What the key did shows in the player's history: a choice or a press sent.
        // (Not the offer going: the next node's offer may be up before a poll sees it.)
        let before = page.player("history").await.as_array().map_or(0, Vec::len);
        if page.visible("#reflex-target").await {
            page.key(" ").await;
        } else {
            page.key("1").await;
        }
        page.wait_for(
            "the key to take effect",
            &format!(
                "window.pixsimPlayer.history.slice({before}).some((h) => h.startsWith('choose:') || h.startsWith('press:'))"
            ),
        )
        .await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ending within 120 s"
        );
    }
}

/// Every `.js` file under `dir`, by its path under it.
fn js_files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().into_string().unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{prefix}{name}/"), out);
            } else if name.ends_with(".js") {
                out.push((format!("{prefix}{name}"), e.path()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn vendored_client_is_a_fresh_build() {
    if std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: the vendored-client check needs Node 20 and npm (apt-get install -y nodejs npm)"
        );
        return;
    }
    crate::ts_client::built().await;
    let dist = js_files(&crate::ts_client::package_dir().join("dist"));
    let vendor_dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../clients/player/vendor"
    ));
    let vendor = js_files(&vendor_dir);
    let names = |v: &[(String, PathBuf)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let refresh = "refresh it: (cd clients/typescript && npm run build && cd dist && \
         find . -name '*.js' -exec cp --parents {} ../../player/vendor/ \\;), and list new \
         files in crates/api/src/routes/play.rs";
    assert_eq!(
        names(&dist),
        names(&vendor),
        "clients/player/vendor differs from the build: {refresh}"
    );
    for ((name, built), (_, vendored)) in dist.iter().zip(&vendor) {
        assert!(
            std::fs::read(built).unwrap() == std::fs::read(vendored).unwrap(),
            "clients/player/vendor/{name} differs from a fresh build: {refresh}"
        );
    }
}

#[tokio::test]
async fn player_uses_websocket_where_webtransport_is_not_published() {
    let t = TestServer::start_with(|c| c.webtransport.enabled = false).await;
    let res = t.http.get(t.url("/play")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    let browser = Browser::launch().await;
    let mut page = browser.page().await;
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": CSP_LISTENER}),
    )
    .await;
    page.call("Page.navigate", json!({"url": t.url("/play")}))
        .await;
    page.wait_for(
        "the sign-in form",
        "!!document.body && document.body.dataset.screen === 'auth'",
    )
    .await;
    page.type_into("#auth-email", "ws-watcher@example.com")
        .await;
    page.type_into("#auth-password", "password123").await;
    page.click("#register").await;
    page.wait_visible("#story-gallery").await;
    page.click("#story-gallery").await;
    page.wait_node("arrive").await;
    assert_eq!(page.player("transport").await, json!("websocket"));
    page.wait_visible("#choices button").await;
    page.key("1").await;
    page.wait_node("mara_talk").await;
    assert_eq!(page.csp_violations().await, json!([]));
    assert!(page.exceptions.is_empty(), "{:?}", page.exceptions);
    drop(browser);
    t.stop().await;
}
