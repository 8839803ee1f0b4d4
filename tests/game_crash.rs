//! SIGKILL mid-play: the real binary on embedded PostgreSQL is killed while a player
//! keeps choosing; after a restart every acknowledged choice is in place.

use std::path::Path;
use std::time::Duration;

use game_client::{Client, Trust};
use protocol::v2::GameEvent;
use tests::TempDir;

use crate::game::{Player, node};
use crate::lifecycle::{Running, serve};

async fn quic_client(r: &Running, state: &Path, token: &str) -> Client {
    let trust = Trust::CertFile(state.join("quic").join("cert.pem"));
    let mut c = Client::connect(r.quic, "localhost", trust).await.unwrap();
    c.authenticate(token).await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_play_loses_no_acknowledged_choice() {
    let state = TempDir::new("game-crash");
    let r = serve(&state.0);
    let _reaper = KillOnDrop(r.child.id() as i32);
    let http = reqwest::Client::new();
    let token = r.register_and_login(&http, "crash@example.com").await;

    let mut c = quic_client(&r, &state.0, &token).await;
    let joined = c.create_session(None).await.unwrap();
    let mut p = Player::new(c, &joined);
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    // Fire a choice and kill the server without waiting for its answer: it may or may
    // not be committed, but everything acknowledged before must survive.
    let acked_events = p.events.clone();
    let acked_through = p.acked.last().and_then(|a| a.1).unwrap();
    p.client
        .command(
            99,
            protocol::v2::GameCommand::Choose {
                edge: "go_sneak".into(),
            },
        )
        .await
        .unwrap();
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(r.child.id() as i32, libc::SIGKILL) }, 0);
    let mut child = r.child;
    child.wait().unwrap();

    // The embedded PostgreSQL dies with the server (parent-death signal); give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = serve(&state.0);
    let _reaper = KillOnDrop(r.child.id() as i32);
    let token = r.login(&http, "crash@example.com").await;
    let mut c = quic_client(&r, &state.0, &token).await;
    // Rejoined as a client that saw the first event: the rest is resent (the window
    // holds the whole session), up to the snapshot's next_seq.
    let rejoined = c.join_session(joined.session_id, Some(0)).await.unwrap();
    assert!(
        rejoined.next_seq > acked_through,
        "{rejoined:?} vs {acked_through}"
    );
    let mut replay = vec![acked_events[0].clone()];
    let mut stored_world_ms = 0;
    while replay.len() < rejoined.next_seq as usize {
        if let protocol::v2::ServerMessage::Event { seq, event, at_ms } =
            c.recv_within(Duration::from_secs(10)).await.unwrap()
        {
            stored_world_ms = stored_world_ms.max(at_ms);
            replay.push((seq, event.known().cloned().expect("a known event")));
        }
    }
    // World time resumes from the stored events after the restart: it never goes back.
    let resumed_world_ms = c.time_sync(3).await.unwrap().server_now_ms();
    assert!(
        resumed_world_ms >= stored_world_ms,
        "world time went back across the restart: {resumed_world_ms} < {stored_world_ms}"
    );
    // Every acknowledged event is there, identical, in place.
    assert_eq!(&replay[..acked_events.len()], &acked_events[..]);
    // The session resumes where it was: at the plan (or in the sneak mini-game when
    // the last choice made it to disk before the kill).
    let mut p = Player::new(c, &rejoined);
    p.events = replay;
    p.last_seq = p.events.last().map(|e| e.0);
    p.wait_for("resumed", |e| matches!(e, GameEvent::Resumed { .. }))
        .await;
    let resumed_at = p
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            GameEvent::Resumed { node, .. } => Some(node.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        resumed_at == "plan" || resumed_at == "sneak",
        "{resumed_at}"
    );
    if resumed_at == "plan" {
        p.choose("go_sneak").await;
    }
    p.react().await;

    let mut child = r.child;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

/// Kills a server child if the test fails before it stops the child itself, so a failed
/// run never leaves a server behind (holding the test's output pipe open). A no-op for a
/// child already gone.
pub(crate) struct KillOnDrop(pub(crate) i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: signalling our own child (it has not been reaped while panicking).
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}
