//! The game channel over WebTransport, end to end: the published certificate hashes
//! (and their rotation), a client pinned by them playing the demo to an ending,
//! malformed, oversized and wrong-state frames each closing only their own connection,
//! and a client pinned to another hash refused.

use std::time::{Duration, SystemTime};

use ::webtransport::client::GameClient;
use base64::Engine;
use protocol::CloseCode;
use protocol::v2::{ClientMessage, ErrorCode, ServerMessage};
use tests::TestServer;

use crate::transports::{Player, Wire, node, to_vault_door, webtransport_directory};

#[tokio::test(flavor = "multi_thread")]
async fn the_route_publishes_the_url_and_the_current_and_next_hashes() {
    let ts = TestServer::start().await;
    let certs = ts.server.webtransport_certs.clone().unwrap();
    let port = ts.server.webtransport_addr.unwrap().port();
    let (status, body) = ts.get("/api/v1/game/webtransport", None).await;
    assert_eq!(status, 200, "{body}");
    // No public host configured: the host the request named.
    assert_eq!(body["url"], format!("https://127.0.0.1:{port}/game"));
    let b64 = |h: [u8; 32]| base64::engine::general_purpose::STANDARD.encode(h);
    let published = |body: &serde_json::Value| -> Vec<String> {
        body["certificate_hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                assert_eq!(h["algorithm"], "sha-256");
                h["value"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let before = published(&body);
    assert_eq!(
        before,
        vec![b64(certs.current().sha256()), b64(certs.next().sha256())]
    );
    let expires: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(SystemTime::from(expires), certs.current().not_after());

    // After a rotation the previous next comes first, and a new next follows.
    certs.rotate_now().unwrap();
    let (_, body) = ts.get("/api/v1/game/webtransport", None).await;
    let after = published(&body);
    assert_eq!(after[0], before[1]);
    assert!(!before.contains(&after[1]));
    // A client pinned to the hashes published now connects.
    let mut wire = Wire::webtransport(&ts).await;
    wire.send(&ClientMessage::Heartbeat { client_time_ms: 1 })
        .await;
    assert!(matches!(wire.recv().await, ServerMessage::Heartbeat { .. }));
    ts.stop().await;

    // A configured public host names the URL whatever the request's host.
    let ts =
        TestServer::start_with(|c| c.webtransport.public_host = Some("game.example".into())).await;
    let port = ts.server.webtransport_addr.unwrap().port();
    let (_, body) = ts.get("/api/v1/game/webtransport", None).await;
    assert_eq!(body["url"], format!("https://game.example:{port}/game"));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webtransport_plays_the_demo_to_an_ending() {
    let ts = TestServer::start().await;
    let token = ts.user("wt-player@example.com").await;
    let mut p = Player::create(Wire::webtransport(&ts).await, &token).await;
    to_vault_door(&mut p).await;
    // Dropped at the door and resumed on a new session with the last sequence number
    // seen: the player checks that nothing is lost or repeated.
    if let Wire::WebTransport(c) = &p.wire {
        c.close(0, "gone");
    }
    p.move_to(Wire::webtransport(&ts).await, &token).await;
    p.choose("back_off").await;
    assert_eq!(p.wait_end().await, "failure");
    assert!(p.saw(node("jammed")));
    let (status, s) = ts
        .get(
            &format!("/api/v1/game/sessions/{}", p.session),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["ended"], true, "{s}");
    ts.stop().await;
}

/// An `Error` with `code`, then the session closed with the same close code.
async fn closes_with(mut wire: Wire, code: CloseCode) {
    match wire.recv().await {
        ServerMessage::Error { code: e, .. } => assert_eq!(e, ErrorCode::from(code)),
        other => panic!("expected Error, got {other:?}"),
    }
    assert_eq!(wire.closed().await, Some(code));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_oversized_and_wrong_state_frames_close_only_their_connection() {
    let ts = TestServer::start().await;
    let token = ts.user("wt-fuzz@example.com").await;
    // A healthy connection with a session, open throughout.
    let mut healthy = Player::create(Wire::webtransport(&ts).await, &token).await;
    healthy.wait_for("arrive", node("arrive")).await;

    // Garbage payload after authentication.
    let mut w = Wire::webtransport(&ts).await;
    crate::transports::authenticate(&mut w, &token).await;
    raw(&mut w, &[0, 0, 0, 3, 0xFF, 0xFF, 0xFF]).await;
    closes_with(w, CloseCode::ProtocolError).await;

    // A declared length above the maximum.
    let mut w = Wire::webtransport(&ts).await;
    let len = u32::try_from(protocol::MAX_FRAME_LEN + 1).unwrap();
    raw(&mut w, &len.to_be_bytes()).await;
    closes_with(w, CloseCode::FrameTooLarge).await;

    // A second Hello (wrong state).
    let mut w = Wire::webtransport(&ts).await;
    w.send(&ClientMessage::Hello {
        protocol_version: protocol::PROTOCOL_VERSION,
        client: "again".into(),
    })
    .await;
    closes_with(w, CloseCode::ProtocolError).await;

    // A command before authentication.
    let mut w = Wire::webtransport(&ts).await;
    w.send(&ClientMessage::CreateSession {
        scene: None,
        world: None,
    })
    .await;
    closes_with(w, CloseCode::Unauthenticated).await;

    // The healthy connection still plays.
    healthy.choose("arrive_next").await;
    ts.stop().await;
}

async fn raw(wire: &mut Wire, bytes: &[u8]) {
    match wire {
        Wire::WebTransport(c) => c.send_raw(bytes).await.unwrap(),
        Wire::Quic(_) | Wire::WebSocket(_) => unreachable!("a WebTransport wire"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_pinned_to_another_hash_is_refused() {
    let ts = TestServer::start().await;
    let (url, mut hashes) = webtransport_directory(&ts).await;
    for h in &mut hashes {
        h[0] ^= 1;
    }
    let refused = tokio::time::timeout(Duration::from_secs(10), GameClient::connect(&url, hashes))
        .await
        .expect("refused in time");
    assert!(
        matches!(
            refused,
            Err(::webtransport::client::ClientError::Connect(_))
        ),
        "{:?}",
        refused.err()
    );
    ts.stop().await;
}
