//! The operators' page at `/admin`, driven in headless Chromium over the DevTools
//! Protocol: sign in through the form, watch the tick counter move, pause, step and
//! resume it, and keep a screenshot as an artifact (`target/artifacts/admin.png`).

use std::time::Duration;

use serde_json::json;
use tests::TestServer;

use crate::browser::{Browser, Page, artifact_path};

/// The admin page's own steps.
impl Page {
    async fn sign_in(&mut self, email: &str, password: &str) {
        self.wait_visible("#login-form").await;
        self.type_into("#login-email", email).await;
        self.type_into("#login-password", password).await;
        self.click("#login-submit").await;
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
    page.screenshot(&artifact_path("admin.png")).await;

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
