//! The operators' page at `/admin`, driven in headless Chromium over the DevTools
//! Protocol: sign in through the form, watch the tick counter move, pause, step and
//! resume it, and keep a screenshot as an artifact (`target/artifacts/admin.png`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::{TempDir, TestServer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const INSTALL_HINT: &str = "the admin page test needs Chromium: install it with \
     `apt-get update && apt-get install -y chromium` (Debian), or point PIXSIM_CHROMIUM \
     at a Chromium/Chrome binary";

/// A headless Chromium of this test, killed (with its whole process group) on drop,
/// also when the test fails.
struct Browser {
    child: Child,
    port: u16,
    profile: TempDir,
}

impl Browser {
    async fn launch() -> Self {
        use std::os::unix::process::CommandExt as _;
        let bin = std::env::var("PIXSIM_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
        let profile = TempDir::new("chromium");
        let log = std::fs::File::create(profile.0.join("chromium.log")).unwrap();
        let child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1440,1000",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group, so that drop kills the renderers too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{bin}` ({e}): {INSTALL_HINT}"));
        let mut browser = Browser {
            child,
            port: 0,
            profile,
        };
        // Chromium writes the port it picked to DevToolsActivePort in the profile.
        let file = browser.profile.0.join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok())
            {
                browser.port = port;
                break;
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                let log = std::fs::read_to_string(browser.profile.0.join("chromium.log"));
                panic!("`{bin}` exited with {status} before listening: {log:?}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Chromium did not write {} within 30 s",
                file.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        browser
    }

    /// The DevTools WebSocket of the first page.
    async fn page(&self) -> Page {
        let list: Value = reqwest::get(format!("http://127.0.0.1:{}/json/list", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page target in {list}"))
            .to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut page = Page {
            ws,
            next_id: 0,
            exceptions: Vec::new(),
        };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group this test created.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page over the Chrome DevTools Protocol.
struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Uncaught exceptions reported by the page.
    exceptions: Vec<String>,
}

impl Page {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let req = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(req.to_string().into()))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let msg = self.ws.next().await.unwrap().unwrap();
                let Message::Text(text) = msg else { continue };
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                if v["id"] == id {
                    return v;
                }
                if v["method"] == "Runtime.exceptionThrown" {
                    let d = &v["params"]["exceptionDetails"];
                    self.exceptions.push(format!(
                        "{} {}",
                        d["text"].as_str().unwrap_or(""),
                        d["exception"]["description"].as_str().unwrap_or("")
                    ));
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} within 30 s"));
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Evaluates a JavaScript expression (promises awaited) and returns its value.
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "`{expr}` threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Polls a JavaScript condition until it is true.
    async fn wait_for(&mut self, what: &str, expr: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.eval(expr).await == json!(true) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let body = self
                    .eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await;
                panic!("timed out waiting for {what} (`{expr}`); the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn visible(&mut self, selector: &str) -> bool {
        let expr = format!(
            "(() => {{ const e = document.querySelector({s}); return !!e && e.offsetParent !== null; }})()",
            s = json!(selector)
        );
        self.eval(&expr).await == json!(true)
    }

    async fn wait_visible(&mut self, selector: &str) {
        let expr = format!(
            "(() => {{ const e = document.querySelector({s}); return !!e && e.offsetParent !== null; }})()",
            s = json!(selector)
        );
        self.wait_for(&format!("{selector} to show"), &expr).await;
    }

    /// Clicks the middle of an element with real mouse events.
    async fn click(&mut self, selector: &str) {
        let expr = format!(
            "(() => {{ const e = document.querySelector({s}); if (!e || e.disabled) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            s = json!(selector)
        );
        let at = self.eval(&expr).await;
        let (x, y) = match at.as_array().map(Vec::as_slice) {
            Some([x, y]) => (x.as_f64().unwrap(), y.as_f64().unwrap()),
            _ => panic!("{selector} is missing or disabled"),
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Focuses an input, clears it and types text into it.
    async fn type_into(&mut self, selector: &str, text: &str) {
        let expr = format!(
            "(() => {{ const e = document.querySelector({s}); e.focus(); e.select(); return document.activeElement === e; }})()",
            s = json!(selector)
        );
        assert_eq!(self.eval(&expr).await, json!(true), "focus {selector}");
        self.call("Input.insertText", json!({"text": text})).await;
    }

    async fn sign_in(&mut self, email: &str, password: &str) {
        self.wait_visible("#login-form").await;
        self.type_into("#login-email", email).await;
        self.type_into("#login-password", password).await;
        self.click("#login-submit").await;
    }

    async fn text(&mut self, selector: &str) -> String {
        let expr = format!(
            "(document.querySelector({s}) || {{}}).textContent || ''",
            s = json!(selector)
        );
        self.eval(&expr).await.as_str().unwrap_or("").to_owned()
    }

    /// The tick number the page shows.
    async fn tick(&mut self) -> u64 {
        let v = self
            .eval("document.querySelector('#tick-number').dataset.value")
            .await;
        v.as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no tick number on the page: {v}"))
    }

    async fn screenshot(&mut self, path: &std::path::Path) {
        let m = self.call("Page.getLayoutMetrics", json!({})).await;
        let height = m["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(1000.0)
            .ceil();
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1440, "height": height.max(900.0), "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("admin page screenshot: {}", path.display());
    }
}

/// `target/artifacts/admin.png` (or under `$CARGO_TARGET_DIR`).
fn artifact_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("artifacts").join("admin.png")
}

#[tokio::test]
async fn admin_page_in_headless_chromium() {
    let t = TestServer::start().await;
    t.admin("ops@example.com").await;
    let player = t.user("player@example.com").await;
    // A game session, for the sessions list and its inspector.
    let (status, session) = t
        .post("/api/v1/game/sessions", Some(&player), json!({}))
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["id"].as_str().unwrap().to_owned();

    let browser = Browser::launch().await;
    let mut page = browser.page().await;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    page.call("Page.navigate", json!({"url": t.url("/admin")}))
        .await;
    page.wait_for(
        "the page to load",
        "document.readyState === 'complete' && location.pathname === '/admin'",
    )
    .await;

    // A wrong password: a clear error, still on the form.
    page.sign_in("ops@example.com", "not-the-password").await;
    page.wait_visible("#login-error").await;
    let err = page.text("#login-error").await;
    assert!(err.contains("Wrong email or password"), "{err}");
    assert!(!page.visible("#dashboard").await);

    // A player is told the page is for admins, and can sign out again.
    page.sign_in("player@example.com", "password123").await;
    page.wait_visible("#not-admin").await;
    let msg = page.text("#not-admin").await;
    assert!(msg.contains("administrators only"), "{msg}");
    assert!(!page.visible("#dashboard").await);
    page.click("#not-admin-logout").await;

    // The admin sees the live tick counter move.
    page.sign_in("ops@example.com", "password123").await;
    page.wait_visible("#dashboard").await;
    page.wait_for(
        "the tick counter",
        "document.querySelector('#tick-number').dataset.value !== ''",
    )
    .await;
    assert_eq!(page.text("#who").await, "ops@example.com");
    let first = page.tick().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = page.tick().await;
    assert!(
        second > first,
        "the tick counter did not move in 1 s: {first} then {second}"
    );

    // Pause: the counter stops, on the page and on the server.
    page.click("#tick-pause").await;
    page.wait_for(
        "the paused state",
        "document.querySelector('#tick-state').dataset.paused === 'true'",
    )
    .await;
    assert_eq!(page.text("#tick-state").await.trim(), "Paused");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let paused_at = page.tick().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        page.tick().await,
        paused_at,
        "the counter moved while paused"
    );
    let (_, stats) = t
        .get(
            "/api/v1/admin/tick",
            Some(&t.login("ops@example.com", "password123").await),
        )
        .await;
    assert_eq!(stats["paused"], true, "{stats}");
    assert_eq!(stats["number"], paused_at, "{stats}");

    // Step runs exactly one tick.
    page.click("#tick-step").await;
    let want = paused_at + 1;
    page.wait_for(
        "one stepped tick",
        &format!("document.querySelector('#tick-number').dataset.value === '{want}'"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(page.tick().await, want, "step ran more than one tick");

    // Resume: it moves again.
    page.click("#tick-resume").await;
    page.wait_for(
        "the running state",
        "document.querySelector('#tick-state').dataset.paused === 'false'",
    )
    .await;
    page.wait_for(
        "the counter to move after resume",
        &format!("Number(document.querySelector('#tick-number').dataset.value) > {want} + 5"),
    )
    .await;

    // Every panel has rendered something (data, or a clear "not available").
    for panel in ["#entities", "#sessions", "#queue", "#accounts"] {
        page.wait_for(
            &format!("{panel} to load"),
            &format!("!document.querySelector('{panel}').textContent.includes('Loading')"),
        )
        .await;
    }
    // The game session is listed; its inspector opens on a click.
    let row = format!("#sessions tr[data-session='{session_id}']");
    page.wait_visible(&row).await;
    page.click(&row).await;
    page.wait_for(
        "the session inspector",
        &format!(
            "(() => {{ const e = document.querySelector('#inspector-body'); \
             return !!e && e.offsetParent !== null && e.textContent.includes('{session_id}'); }})()"
        ),
    )
    .await;
    let entities = page.text("#entities").await;
    assert!(entities.contains("Session"), "{entities}");
    page.wait_for(
        "the chart",
        "(() => { const c = document.querySelector('#tick-chart'); return c.width > 0 && \
         c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0); })()",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    page.screenshot(&artifact_path()).await;

    assert!(
        page.exceptions.is_empty(),
        "uncaught exceptions on the page: {:?}",
        page.exceptions
    );
    drop(page);
    drop(browser);
    t.stop().await;
}

/// Every HTML page carries the security headers; every response says nosniff.
#[tokio::test]
async fn html_pages_carry_security_headers() {
    let t = TestServer::start().await;
    for path in ["/admin", "/api/docs"] {
        let res = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self' 'sha256-"), "{path}: {csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    for path in ["/health", "/nope", "/api/openapi.json"] {
        let res = t.http.get(t.url(path)).send().await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(!h.contains_key("content-security-policy"), "{path}");
    }
    t.stop().await;
}

/// The docs page renders the document under its Content Security Policy (its inline
/// script is allowed by hash).
#[tokio::test]
async fn docs_page_renders_in_headless_chromium() {
    let t = TestServer::start().await;
    let browser = Browser::launch().await;
    let mut page = browser.page().await;
    page.call("Page.navigate", json!({"url": t.url("/api/docs")}))
        .await;
    page.wait_for(
        "the operations to render",
        "document.querySelectorAll('details').length > 20",
    )
    .await;
    let version = page.text("#ver").await;
    assert!(version.contains(pixsim_server::VERSION), "{version}");
    assert!(page.exceptions.is_empty(), "{:?}", page.exceptions);
    t.stop().await;
}
