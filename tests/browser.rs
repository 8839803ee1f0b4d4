//! A headless Chromium driven over the DevTools Protocol, shared by the browser tests
//! (`admin_page.rs`, `ts_client.rs`): launch it (killed with its renderers on drop),
//! open its page, evaluate JavaScript, wait for conditions, click and type with real
//! input events, and take screenshots.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const INSTALL_HINT: &str = "the admin page test needs Chromium: install it with \
     `apt-get update && apt-get install -y chromium` (Debian), or point PIXSIM_CHROMIUM \
     at a Chromium/Chrome binary";

/// A headless Chromium of this test, killed (with its whole process group) on drop,
/// also when the test fails.
pub(crate) struct Browser {
    child: Child,
    port: u16,
    profile: TempDir,
}

impl Browser {
    /// A Chromium without QUIC (the pages of the HTTP server need none).
    pub(crate) async fn launch() -> Self {
        Self::launch_with(false).await
    }

    /// A Chromium; with `quic`, QUIC stays enabled (WebTransport runs over it).
    pub(crate) async fn launch_with(quic: bool) -> Self {
        use std::os::unix::process::CommandExt as _;
        let bin = std::env::var("PIXSIM_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
        let profile = TempDir::new("chromium");
        let log = std::fs::File::create(profile.0.join("chromium.log")).unwrap();
        let child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
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
            .args((!quic).then_some("--disable-quic"))
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
    pub(crate) async fn page(&self) -> Page {
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
pub(crate) struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Uncaught exceptions reported by the page.
    pub(crate) exceptions: Vec<String>,
}

impl Page {
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
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
    pub(crate) async fn eval(&mut self, expr: &str) -> Value {
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

    /// Polls a JavaScript condition until it is true (for up to 20 s).
    pub(crate) async fn wait_for(&mut self, what: &str, expr: &str) {
        self.wait_for_within(what, expr, Duration::from_secs(20))
            .await;
    }

    /// Polls a JavaScript condition until it is true, for up to `limit`.
    pub(crate) async fn wait_for_within(&mut self, what: &str, expr: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.eval(expr).await == json!(true) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let body = self
                    .eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await;
                // The player's own account of what happened (absent on other pages).
                let history = self
                    .eval("window.pixsimPlayer ? JSON.stringify(window.pixsimPlayer.history.slice(-40)) : ''")
                    .await;
                panic!(
                    "timed out waiting for {what} (`{expr}`); the page shows:\n{body}\nhistory: {history}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn visible(&mut self, selector: &str) -> bool {
        let expr = format!(
            "(() => {{ const e = document.querySelector({s}); return !!e && e.offsetParent !== null; }})()",
            s = json!(selector)
        );
        self.eval(&expr).await == json!(true)
    }

    pub(crate) async fn wait_visible(&mut self, selector: &str) {
        let expr = format!(
            "(() => {{ const e = document.querySelector({s}); return !!e && e.offsetParent !== null; }})()",
            s = json!(selector)
        );
        self.wait_for(&format!("{selector} to show"), &expr).await;
    }

    /// Clicks the middle of an element with real mouse events.
    pub(crate) async fn click(&mut self, selector: &str) {
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
    pub(crate) async fn type_into(&mut self, selector: &str, text: &str) {
        let expr = format!(
            "(() => {{ const e = document.querySelector({s}); e.focus(); e.select(); return document.activeElement === e; }})()",
            s = json!(selector)
        );
        assert_eq!(self.eval(&expr).await, json!(true), "focus {selector}");
        self.call("Input.insertText", json!({"text": text})).await;
    }

    pub(crate) async fn text(&mut self, selector: &str) -> String {
        let expr = format!(
            "(document.querySelector({s}) || {{}}).textContent || ''",
            s = json!(selector)
        );
        self.eval(&expr).await.as_str().unwrap_or("").to_owned()
    }

    /// A PNG of the whole page at `path`.
    pub(crate) async fn screenshot(&mut self, path: &std::path::Path) {
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
        eprintln!("screenshot: {}", path.display());
    }
}

/// `target/artifacts/<name>` (or under `$CARGO_TARGET_DIR`).
pub(crate) fn artifact_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("artifacts").join(name)
}
