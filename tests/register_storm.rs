//! Bounded work per stranger (issue #18, item 4): 200 concurrent registrations to the
//! real binary grow its resident memory by under 100 MB. Argon2id (19 MiB per hash)
//! runs in one slot per core; the callers that wait past the queue timeout get 503
//! with `Retry-After`, and the server keeps answering.

use std::time::Duration;

use serde_json::json;
use tests::TempDir;

use crate::lifecycle::serve_with;

const STORM: usize = 200;

#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_200_registrations_stays_under_100_mb() {
    let state = TempDir::new("register-storm");
    let r = serve_with(&state.0, |c| {
        // One IP sends them all: only the hashing slots bound this storm.
        c.env("PIXSIM_AUTH__REGISTER_IP_BURST", "100000")
            .env("PIXSIM_AUTH__HASH_QUEUE_TIMEOUT_SECS", "1");
    });
    let pid = r.child.id();
    let _reaper = crate::game_crash::KillOnDrop(pid as i32);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let register = |i: usize| {
        http.post(format!("{}/api/v1/auth/register", r.http))
            .json(&json!({"email": format!("storm{i}@example.com"), "password": "password123"}))
            .send()
    };
    // Warm up (a first hash, the pool's connections), then measure the peak from here:
    // writing 5 to clear_refs resets VmHWM.
    assert_eq!(register(STORM).await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss = tests::PeakRss::start(pid);
    let base = rss.base_kib();

    let answers = futures::future::join_all((0..STORM).map(register)).await;
    let peak = rss.peak_kib();
    let grew_mb = peak.saturating_sub(base) as f64 * 1024.0 / 1e6;
    let (mut created, mut busy, mut other) = (0, 0, Vec::new());
    for res in answers {
        let res = res.unwrap();
        match res.status().as_u16() {
            201 => created += 1,
            503 => {
                let retry: u64 = res.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1, "{retry}");
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["error"]["code"], "busy", "{body}");
                busy += 1;
            }
            s => other.push(s),
        }
    }
    println!(
        "RSS under the register storm: {STORM} concurrent registrations, RSS {:.1} MB before, \
         peak {:.1} MB (+{grew_mb:.1} MB); {created} created, {busy} answered 503 busy",
        base as f64 * 1024.0 / 1e6,
        peak as f64 * 1024.0 / 1e6,
    );
    assert!(
        other.is_empty(),
        "statuses other than 201 and 503: {other:?}"
    );
    assert!(created > 0, "no registration got through");
    assert!(
        grew_mb < 100.0,
        "{STORM} concurrent registrations grew RSS by {grew_mb:.1} MB"
    );

    // The server still answers, registrations included.
    let health = http.get(format!("{}/health", r.http)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let after = register(STORM + 1).await.unwrap();
    assert_eq!(after.status(), 201);

    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let mut child = r.child;
    child.wait().unwrap();
}
