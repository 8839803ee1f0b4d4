//! `pixsim-client bots`, the real binary, against the real server: a handful of bots
//! on a shared account pool play for a few seconds and report no errors ([`run_bots`],
//! also run over the other transports in `client_transports.rs`).

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::TestServer;

use crate::play::client_binary;

#[tokio::test(flavor = "multi_thread")]
async fn bots_play_the_demo_and_report_zero_errors() {
    let ts = TestServer::start().await;
    let report = run_bots(
        &ts,
        &[
            "--server",
            &ts.server.quic_addr.to_string(),
            "--fingerprint",
            &ts.server.quic_fingerprint,
            "--endpoints",
            "2",
        ],
        8,
        "bot",
    )
    .await;
    assert_eq!(report["transport"], "quic", "{report}");

    // Three accounts served eight bots, each with its own session, all in the database.
    let (accounts, sessions): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT u.id), count(s.id) FROM users u
         JOIN game_sessions s ON s.user_id = u.id
         WHERE u.email LIKE 'bot-%@bots.pixsim.test'",
    )
    .fetch_one(&ts.db.pool)
    .await
    .unwrap();
    assert_eq!(accounts, 3);
    let started = report["sessions_started"].as_i64().unwrap();
    assert!(started >= 8, "{report}");
    assert_eq!(sessions, started, "{report}");
    ts.stop().await;
}

/// Runs `pixsim-client bots` (`count` bots on three accounts named `prefix-N`, six
/// seconds, `conn` choosing the transport) against `ts`; checks the report says every
/// bot connected, held and played without errors, with sane latencies, and returns it.
pub(crate) async fn run_bots(ts: &TestServer, conn: &[&str], count: usize, prefix: &str) -> Value {
    let count_s = count.to_string();
    let mut args: Vec<String> = [
        "bots",
        "--http",
        &ts.base,
        "--count",
        &count_s,
        "--accounts",
        "3",
        "--account-prefix",
        prefix,
        "--duration",
        "6",
        "--think-ms",
        "20-120",
        "--json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(conn.iter().map(|s| (*s).to_owned()));
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || {
            Command::new(client_binary())
                .args(&args)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        }),
    )
    .await
    .expect("the bots finish")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    assert_eq!(report["errors_total"], 0, "{report}");
    assert_eq!(report["bots"], count, "{report}");
    assert_eq!(report["connected"], count, "{report}");
    assert_eq!(report["held"], count, "{report}");
    let commands = report["commands"].as_u64().unwrap();
    assert!(commands > 0, "{report}");
    let lat = &report["command_to_event"];
    assert!(lat["samples"].as_u64().unwrap() >= commands, "{report}");
    let (p50, p99, max) = (
        lat["p50_ms"].as_f64().unwrap(),
        lat["p99_ms"].as_f64().unwrap(),
        lat["max_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
    report
}
