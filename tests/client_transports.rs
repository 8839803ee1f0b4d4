//! The Rust client over every transport of the game channel: the `game-client`
//! library over WebSocket, binary and JSON, and over WebTransport (handshake, the
//! world clock synced by pings, a session played, take-over and refused tokens read
//! back from the close codes, a certificate not pinned refused), and the real
//! `pixsim-client play` and `pixsim-client bots` binaries with `--transport`.

use std::time::Duration;

use game_client::rest::Rest;
use game_client::{Client, ClientError, ConnectOptions, Target, Transport, Trust, WsEncoding};
use protocol::CloseCode;
use protocol::v2::{Choice, GameCommand, GameEvent, ServerMessage};
use tests::TestServer;

use crate::bots::run_bots;
use crate::play::{PREFER, Terminal, assert_no_repeats};

const T: Duration = Duration::from_secs(10);

async fn connect(target: &Target) -> Client {
    Client::connect_to(target, ConnectOptions::default())
        .await
        .unwrap()
}

/// The choices the session offers: the snapshot's, else those of the next event
/// offering some.
async fn offered(c: &mut Client, snapshot: Vec<Choice>) -> Vec<Choice> {
    if !snapshot.is_empty() {
        return snapshot;
    }
    loop {
        match c.recv_within(T).await.unwrap() {
            ServerMessage::Event { event, .. } => {
                if let Some(GameEvent::ChoicesOffered { choices, .. }) = event.known()
                    && !choices.is_empty()
                {
                    return choices.clone();
                }
            }
            ServerMessage::Heartbeat { .. } | ServerMessage::Pong { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The answer to command `id`: `Ok(())` for its `Ack`, `Err(code)` for a rejection.
async fn answer(c: &mut Client, id: u64) -> Result<(), String> {
    loop {
        match c.recv_within(T).await.unwrap() {
            ServerMessage::Ack { request_id, .. } if request_id == id => return Ok(()),
            ServerMessage::Rejected {
                request_id, code, ..
            } if request_id == id => return Err(code),
            ServerMessage::Event { .. }
            | ServerMessage::Heartbeat { .. }
            | ServerMessage::Pong { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_library_client_plays_over_websocket_binary_and_json() {
    let ts = TestServer::start().await;
    let token = ts.user("ws-lib@example.com").await;
    let binary = Target::websocket(&ts.base, WsEncoding::Binary).unwrap();
    let json = Target::websocket(&ts.base, WsEncoding::Json).unwrap();
    assert_eq!(binary.transport(), Transport::WebSocket);
    assert_eq!(json.transport(), Transport::WebSocketJson);

    // A refused token: the Error, then the close frame 4000 + Unauthenticated, which
    // the client reads back as that close code.
    let mut c = connect(&json).await;
    assert_eq!(c.transport(), Transport::WebSocketJson);
    let err = c.authenticate("not-a-token").await.unwrap_err();
    assert_eq!(
        err.close_code(),
        Some(CloseCode::Unauthenticated),
        "{err:?}"
    );

    // The world clock synced by pings agrees with the one synced by QUIC datagrams:
    // each estimate is within half its round trip of the server's clock (and of the
    // clock's own jitter, below).
    let mut a = connect(&binary).await;
    assert!(matches!(
        a.time_sync(1).await,
        Err(ClientError::Unsupported(_))
    ));
    a.authenticate(&token).await.unwrap();
    let joined = a.create_session(Some("gallery")).await.unwrap();
    let by_ping = a.sync_clock(5).await.unwrap();
    let quic = Target::Quic {
        addr: ts.server.quic_addr,
        server_name: "localhost".into(),
        trust: Trust::Fingerprint(ts.server.quic_fingerprint.clone()),
    };
    let q = connect(&quic).await;
    let by_datagram = q.time_sync(5).await.unwrap();
    q.close().await;
    let gap = (by_ping.server_now_ms() - by_datagram.server_now_ms()).abs() as f64;
    // The world clock is extrapolated from each tick's start, so two readings taken in
    // different ticks differ by how late those ticks began (a few ms on a busy machine,
    // 7 ms seen while the whole suite ran): half a tick covers that, and still catches a
    // wrong unit, origin or world (seconds or whole ticks apart).
    let half_tick = 1000.0 / 20.0 / 2.0;
    let bound = (by_ping.rtt_ms + by_datagram.rtt_ms) / 2.0 + half_tick;
    assert!(
        gap <= bound,
        "{by_ping:?} vs {by_datagram:?}: {gap} ms apart"
    );

    // Events read while syncing were kept: the choices of the plan come through, and
    // one taken once the ping clock says it is revealed is acknowledged.
    let choices = offered(&mut a, joined.snapshot.choices).await;
    let choice = choices.first().unwrap().clone();
    while by_ping.server_now_ms() < choice.available_at_ms {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.command(1, GameCommand::Choose { edge: choice.edge })
        .await
        .unwrap();
    answer(&mut a, 1).await.unwrap();

    // The session joined on JSON takes it over: the binary connection is told, and
    // closed with 4000 + SessionTakenOver.
    let mut b = connect(&json).await;
    b.authenticate(&token).await.unwrap();
    let rejoined = b.join_session(joined.session_id, None).await.unwrap();
    assert!(rejoined.next_seq > joined.next_seq, "{rejoined:?}");
    let taken = loop {
        match a.recv_within(T).await {
            Ok(ServerMessage::Error { code, .. }) => {
                assert_eq!(code, protocol::v2::ErrorCode::SessionTakenOver);
            }
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(
        taken.close_code(),
        Some(CloseCode::SessionTakenOver),
        "{taken:?}"
    );
    // JSON plays on, with its own clock synced by pings.
    let clock = b.sync_clock(3).await.unwrap();
    let choices = offered(&mut b, rejoined.snapshot.choices).await;
    let choice = choices.first().unwrap().clone();
    while clock.server_now_ms() < choice.available_at_ms {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.command(2, GameCommand::Choose { edge: choice.edge })
        .await
        .unwrap();
    answer(&mut b, 2).await.unwrap();
    b.close().await;
    ts.stop().await;
}

/// `pixsim-client play` arguments for `transport`, logging in as `email`.
fn play_args(ts: &TestServer, transport: &str, email: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--transport",
        transport,
        "--http",
        &ts.base,
        "--email",
        email,
        "--password",
        "password123",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn play_over_websocket_then_resume_over_websocket_json_to_an_ending() {
    let ts = TestServer::start().await;
    let email = "ws-player@example.com";
    let first = play_args(
        &ts,
        "websocket",
        email,
        &["--register", "--scene", "gallery"],
    );
    let (session, transcript) = tokio::task::spawn_blocking(move || {
        let mut t = Terminal::start(&first);
        let line = t.out.until("the session id", |l| {
            l.contains("resume it later with --session")
        });
        let session = line.split_whitespace().nth(1).unwrap().to_owned();
        assert_eq!(t.choose(PREFER), "Step inside");
        t.type_line("q");
        t.out.until("the goodbye", |l| {
            l.contains(&format!("--session {session}"))
        });
        let seen = t.out.seen.clone();
        assert_eq!(t.exit_code(), 0);
        (session, seen)
    })
    .await
    .unwrap();
    assert_no_repeats(&transcript);

    // Resumed over the JSON encoding, played through the reflex game to an ending.
    let resume = play_args(&ts, "websocket-json", email, &["--session", &session]);
    let (end, transcript) = tokio::task::spawn_blocking(move || {
        let mut t = Terminal::start(&resume);
        t.out
            .until("the resume", |l| l == format!("resuming session {session}"));
        let end = t.play_to_end(PREFER);
        let seen = t.out.seen.clone();
        assert_eq!(t.exit_code(), 0);
        (end, seen)
    })
    .await
    .unwrap();
    assert_no_repeats(&transcript);
    assert!(
        ["success", "failure", "neutral"].contains(&end.as_str()),
        "{end}\n{}",
        transcript.join("\n")
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_library_client_plays_over_webtransport_pinned_by_the_published_hashes() {
    let ts = TestServer::start().await;
    let token = ts.user("wt-lib@example.com").await;
    let rest = Rest::new(&ts.base).unwrap();
    let target = Target::webtransport(&rest).await.unwrap();
    assert_eq!(target.transport(), Transport::WebTransport);
    let Target::WebTransport {
        url,
        certificate_hashes,
    } = &target
    else {
        panic!("{target:?}");
    };
    // The current and the next certificate.
    assert_eq!(certificate_hashes.len(), 2, "{target:?}");

    // Pinned to another certificate: refused.
    let wrong = Target::WebTransport {
        url: url.clone(),
        certificate_hashes: vec![[7; 32]],
    };
    let err = Client::connect_to(&wrong, ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::UntrustedCertificate(_)),
        "{err:?}"
    );

    // A refused token: the Error, then the session closed with Unauthenticated.
    let mut c = connect(&target).await;
    assert_eq!(c.transport(), Transport::WebTransport);
    let err = c.authenticate("not-a-token").await.unwrap_err();
    assert_eq!(
        err.close_code(),
        Some(CloseCode::Unauthenticated),
        "{err:?}"
    );

    // A session, a choice taken on the ping-synced clock.
    let mut a = connect(&target).await;
    a.authenticate(&token).await.unwrap();
    let joined = a.create_session(Some("gallery")).await.unwrap();
    let clock = a.sync_clock(3).await.unwrap();
    assert!(clock.rtt_ms > 0.0, "{clock:?}");
    let choice = offered(&mut a, joined.snapshot.choices).await[0].clone();
    while clock.server_now_ms() < choice.available_at_ms {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.command(1, GameCommand::Choose { edge: choice.edge })
        .await
        .unwrap();
    answer(&mut a, 1).await.unwrap();

    // Taken over by a WebSocket join: the WebTransport session is closed with the
    // take-over's code.
    let ws = Target::websocket(&ts.base, WsEncoding::Binary).unwrap();
    let mut b = connect(&ws).await;
    b.authenticate(&token).await.unwrap();
    b.join_session(joined.session_id, None).await.unwrap();
    let taken = loop {
        if let Err(e) = a.recv_within(T).await {
            break e;
        }
    };
    assert_eq!(
        taken.close_code(),
        Some(CloseCode::SessionTakenOver),
        "{taken:?}"
    );
    b.close().await;
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn play_over_webtransport_to_an_ending() {
    let ts = TestServer::start().await;
    let args = play_args(
        &ts,
        "webtransport",
        "wt-player@example.com",
        &["--register", "--scene", "gallery"],
    );
    let (end, transcript) = tokio::task::spawn_blocking(move || {
        let mut t = Terminal::start(&args);
        let end = t.play_to_end(PREFER);
        let seen = t.out.seen.clone();
        assert_eq!(t.exit_code(), 0);
        (end, seen)
    })
    .await
    .unwrap();
    assert_no_repeats(&transcript);
    assert!(
        ["success", "failure", "neutral"].contains(&end.as_str()),
        "{end}\n{}",
        transcript.join("\n")
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_play_over_websocket_binary_json_and_webtransport_without_errors() {
    let ts = TestServer::start().await;
    for (transport, prefix) in [
        ("websocket", "wsbot"),
        ("websocket-json", "jsonbot"),
        ("webtransport", "wtbot"),
    ] {
        let report = run_bots(&ts, &["--transport", transport], 6, prefix).await;
        assert_eq!(report["transport"], transport, "{report}");
        assert!(
            report["sessions_started"].as_u64().unwrap() >= 6,
            "{report}"
        );
    }
    ts.stop().await;
}
