//! Scene media made ahead of the players, end to end: a session that comes within
//! `generation.pregenerate_steps` of a generation node gets its job started before it
//! arrives (and sees the media on entry); an entry raises a job made ahead to the spec's
//! own priority; a job made ahead that nobody can reach anymore is cancelled before it
//! starts, and nothing is charged. Real server, PostgreSQL, local provider.

use std::time::Duration;

use protocol::v2::{GameEvent, Media};
use reqwest::StatusCode;
use serde_json::Value;
use tests::{TempDir, TestServer};

use crate::game::{Player, connect, node};

/// The demo plus a small scene: from the gate, the reveal (a generation node) is two
/// steps in (go in, open the door); walking away leads where it cannot be reached.
fn outpost() -> TempDir {
    let scenes = tests::copy_demo_scenes();
    std::fs::write(
        scenes.0.join("outpost.toml"),
        r#"
id = "outpost"
title = "The Outpost"
entry = "gate"

[[nodes]]
id = "gate"
kind = "choice"
prompt = "Where now?"

[[nodes]]
id = "corridor"
kind = "dialogue"
lines = [{ id = "c1", speaker = "mara", text = "Quiet. Too quiet." }]

[[nodes]]
id = "reveal"
kind = "media"
generate = { operation = "text_to_video", prompt = "A lighthouse beam sweeps a stormy sea", params = { duration = 1 } }

[[nodes]]
id = "away"
kind = "dialogue"
lines = [{ id = "a1", speaker = "mara", text = "Another time." }]

[[nodes]]
id = "out"
kind = "end"
outcome = "neutral"

[[edges]]
id = "go_in"
from = "gate"
to = "corridor"
label = "Go in"

[[edges]]
id = "go_away"
from = "gate"
to = "away"
label = "Walk away"

[[edges]]
id = "open_door"
from = "corridor"
to = "reveal"
label = "Open the door"

[[edges]]
id = "leave"
from = "reveal"
to = "out"
label = "Leave"

[[edges]]
id = "away_end"
from = "away"
to = "out"
label = "Bye"
"#,
    )
    .unwrap();
    scenes
}

async fn at_gate(ts: &TestServer, email: &str) -> Player {
    let token = ts.user(email).await;
    let mut c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    c.authenticate(&token).await.unwrap();
    let joined = c.create_session(Some("outpost")).await.unwrap();
    let mut p = Player::new(c, &joined);
    p.wait_for("the gate", node("gate")).await;
    p
}

/// The jobs for the reveal node, oldest first.
async fn reveal_jobs(ts: &TestServer, admin: &str) -> Vec<Value> {
    let (status, jobs) = ts.get("/api/v1/generations?limit=100", Some(admin)).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    let mut v: Vec<Value> = jobs["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|j| j["metadata"]["node"] == "reveal")
        .cloned()
        .collect();
    v.reverse();
    v
}

/// Waits until the reveal's jobs satisfy `ok`.
async fn until_jobs(
    ts: &TestServer,
    admin: &str,
    what: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let jobs = reveal_jobs(ts, admin).await;
        if ok(&jobs) {
            return jobs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {jobs:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One sample's value in the `/metrics` text.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread")]
async fn media_made_ahead_is_there_when_the_player_arrives() {
    let scenes = outpost();
    let dir = scenes.0.clone();
    let ts = TestServer::start_with(move |c| {
        c.content.scenes_dir = dir;
        c.generation.pregenerate_steps = 2;
    })
    .await;
    let admin = ts.admin("ahead-admin@example.com").await;

    // Standing at the gate, two steps from the reveal: its job starts, made ahead, at
    // the pre-generation priority, and completes while the player has not moved.
    let mut p = at_gate(&ts, "ahead@example.com").await;
    let jobs = until_jobs(&ts, &admin, "the job made ahead completes", |j| {
        j.len() == 1 && j[0]["status"] == "completed"
    })
    .await;
    assert_eq!(jobs[0]["metadata"]["pregenerated"], true, "{jobs:#?}");
    assert_eq!(jobs[0]["metadata"]["scene"], "outpost");
    assert_eq!(jobs[0]["priority"], 1, "{jobs:#?}");
    let asset = jobs[0]["asset_id"].as_str().expect("an asset").to_owned();
    assert!(!p.saw(node("reveal")));

    // The player goes in: the reveal shows the media at once, nothing pending.
    p.choose("go_in").await;
    p.choose("open_door").await;
    p.wait_for("the reveal", node("reveal")).await;
    let (media, pending) = p
        .events
        .iter()
        .find_map(|(_, e)| match e {
            GameEvent::NodeEntered {
                node,
                media,
                media_pending,
                ..
            } if node == "reveal" => Some((media.clone(), *media_pending)),
            _ => None,
        })
        .expect("the reveal presented");
    assert_eq!(
        (media, pending),
        (
            Some(Media {
                url: format!("/api/v1/assets/{asset}/file"),
                media_type: "video".into(),
            }),
            false
        )
    );
    // One job however the player moved, and the metrics count a hit.
    assert_eq!(reveal_jobs(&ts, &admin).await.len(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = ts.metrics().await;
        if sample(
            &m,
            "pixsim_scene_media_first_entries_total{found=\"pregenerated\"}",
        ) == 1.0
        {
            assert_eq!(sample(&m, "pixsim_pregen_jobs_total"), 1.0, "{m}");
            assert_eq!(sample(&m, "pixsim_pregen_cancelled_total"), 0.0, "{m}");
            assert_eq!(
                sample(
                    &m,
                    "pixsim_scene_media_first_entries_total{found=\"nothing\"}"
                ),
                0.0
            );
            // The wait of that entry: none.
            assert_eq!(
                sample(&m, "pixsim_scene_media_wait_ahead_seconds_count"),
                1.0
            );
            let reveal = "{scene=\"outpost\",node=\"reveal\"}";
            assert_eq!(
                sample(
                    &m,
                    &format!("pixsim_scene_media_node_entries_total{reveal}")
                ),
                1.0
            );
            assert_eq!(
                sample(&m, &format!("pixsim_scene_media_node_waited_total{reveal}")),
                0.0
            );
            assert_eq!(
                sample(
                    &m,
                    "pixsim_scene_media_wait_ahead_seconds_bucket{le=\"0.001\"}"
                ),
                1.0
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_made_ahead_is_raised_on_entry_and_cancelled_when_nobody_can_reach_it() {
    let scenes = outpost();
    let dir = scenes.0.clone();
    // No workers: jobs stay pending, so what happens to them before they start shows.
    let ts = TestServer::start_with(move |c| {
        c.content.scenes_dir = dir;
        c.generation.workers = 0;
        c.generation.pregenerate_steps = 2;
        c.generation.providers.set("local", "credits_per_second", 1);
    })
    .await;
    let admin = ts.admin("cancel-admin@example.com").await;

    // Alice at the gate: the reveal's job is made ahead …
    let mut alice = at_gate(&ts, "leaver@example.com").await;
    let jobs = until_jobs(&ts, &admin, "a job made ahead", |j| j.len() == 1).await;
    assert_eq!(jobs[0]["status"], "pending");
    assert_eq!(jobs[0]["priority"], 1);
    // … and cancelled when she walks away, where the reveal cannot be reached; nothing
    // is charged.
    alice.choose("go_away").await;
    let jobs = until_jobs(&ts, &admin, "the job cancelled", |j| {
        j.len() == 1 && j[0]["status"] == "cancelled"
    })
    .await;
    assert_eq!(jobs[0]["error_code"], "not_needed", "{jobs:#?}");
    assert_eq!(jobs[0]["credits_charged"], 0);

    // Bob and Carol at the gate: one new job for both.
    let mut bob = at_gate(&ts, "arriver@example.com").await;
    let mut carol = at_gate(&ts, "wanderer@example.com").await;
    let jobs = until_jobs(&ts, &admin, "a second job made ahead", |j| j.len() == 2).await;
    assert_eq!(jobs[1]["status"], "pending");
    assert_eq!(jobs[1]["priority"], 1);
    // Bob enters the reveal: the job is raised to the spec's own priority, the media
    // is pending for him.
    bob.choose("go_in").await;
    bob.choose("open_door").await;
    bob.wait_for("the reveal", node("reveal")).await;
    let jobs = until_jobs(&ts, &admin, "the job raised", |j| {
        j.len() == 2 && j[1]["priority"] == 5
    })
    .await;
    assert_eq!(jobs[1]["status"], "pending");
    // Carol walks away, but Bob stands in the node: the job stays.
    carol.choose("go_away").await;
    carol.wait_for("away", node("away")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let jobs = reveal_jobs(&ts, &admin).await;
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    assert_eq!(jobs[1]["status"], "pending", "{jobs:#?}");

    let m = ts.metrics().await;
    assert_eq!(sample(&m, "pixsim_pregen_jobs_total"), 2.0, "{m}");
    assert_eq!(sample(&m, "pixsim_pregen_cancelled_total"), 1.0, "{m}");
    assert_eq!(sample(&m, "pixsim_pregen_raised_total"), 1.0, "{m}");
    assert_eq!(
        sample(
            &m,
            "pixsim_scene_media_first_entries_total{found=\"pregenerating\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(sample(&m, "pixsim_pregen_credits_total"), 0.0, "{m}");
    drop((alice, carol));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_pre_generation_only_an_entry_starts_the_job() {
    let scenes = outpost();
    let dir = scenes.0.clone();
    let ts = TestServer::start_with(move |c| {
        c.content.scenes_dir = dir;
        c.generation.workers = 0;
        c.generation.pregenerate_steps = 0;
    })
    .await;
    let admin = ts.admin("off-admin@example.com").await;
    let mut p = at_gate(&ts, "unhurried@example.com").await;
    p.choose("go_in").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reveal_jobs(&ts, &admin).await.is_empty());
    p.choose("open_door").await;
    let jobs = until_jobs(&ts, &admin, "the entry's job", |j| j.len() == 1).await;
    assert_eq!(jobs[0]["metadata"]["pregenerated"], false);
    assert_eq!(jobs[0]["priority"], 5);
    let m = ts.metrics().await;
    assert_eq!(sample(&m, "pixsim_pregen_jobs_total"), 0.0, "{m}");
    ts.stop().await;
}
