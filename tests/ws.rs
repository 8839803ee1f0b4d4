//! The game channel over WebSocket (`/api/v1/game/ws`), binary (`pixsim.v2`) and JSON
//! (`pixsim.v2.json`): the handshake, pings with the world time, heartbeats,
//! authentication with a REST token, a session played to an ending; and bad input
//! closing only its own connection with the right code (`4000 + CloseCode`).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::v2::{ClientMessage, ErrorCode, GameCommand, GameEvent, ServerMessage};
use protocol::{CloseCode, PROTOCOL_VERSION};
use tests::TestServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::game::node;

const T: Duration = Duration::from_secs(10);

/// The encoding a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Binary,
    Json,
}

/// One WebSocket game connection.
struct Ws {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    enc: Enc,
}

impl Ws {
    /// Connects offering `subprotocol` (none: the binary default); checks the server
    /// echoes the one offered.
    async fn connect(ts: &TestServer, subprotocol: Option<&str>) -> Ws {
        let url = format!("ws://{}/api/v1/game/ws", ts.server.http_addr);
        let mut req = url.into_client_request().unwrap();
        if let Some(p) = subprotocol {
            req.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
        }
        let (ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
        let chosen = res
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(chosen.as_deref(), subprotocol);
        let enc = match subprotocol {
            Some("pixsim.v2.json") => Enc::Json,
            _ => Enc::Binary,
        };
        Ws { ws, enc }
    }

    async fn json(ts: &TestServer) -> Ws {
        Ws::connect(ts, Some("pixsim.v2.json")).await
    }

    async fn binary(ts: &TestServer) -> Ws {
        Ws::connect(ts, Some("pixsim.v2")).await
    }

    async fn send(&mut self, msg: &ClientMessage) {
        let out = match self.enc {
            // One postcard payload per binary message: the frame without its prefix.
            Enc::Binary => Message::Binary(protocol::frame(msg).unwrap()[4..].to_vec().into()),
            Enc::Json => Message::Text(protocol::to_json(msg).unwrap().into()),
        };
        self.ws.send(out).await.unwrap();
    }

    async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// The next WebSocket message (pings and pongs skipped), within [`T`].
    async fn next_raw(&mut self) -> Message {
        loop {
            let msg = tokio::time::timeout(T, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the socket still open")
                .expect("a readable message");
            match msg {
                Message::Ping(_) | Message::Pong(_) => {}
                other => return other,
            }
        }
    }

    /// The next server message, decoded as a client does.
    async fn recv(&mut self) -> ServerMessage {
        let msg = match (self.next_raw().await, self.enc) {
            (Message::Binary(b), Enc::Binary) => protocol::decode_server_payload(&b),
            (Message::Text(t), Enc::Json) => protocol::server_from_json(t.as_str()),
            (other, enc) => panic!("unexpected {other:?} on the {enc:?} encoding"),
        };
        msg.unwrap().expect("a message this build knows")
    }

    async fn hello(&mut self) {
        self.send(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "ws-test".into(),
        })
        .await;
        match self.recv().await {
            ServerMessage::Welcome {
                protocol_version, ..
            } => assert_eq!(protocol_version, PROTOCOL_VERSION),
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    async fn authenticate(&mut self, token: &str) {
        self.send(&ClientMessage::Authenticate {
            token: token.into(),
        })
        .await;
        assert!(
            matches!(self.recv().await, ServerMessage::Authenticated { .. }),
            "authenticated"
        );
    }

    /// A ping answered with its nonce and the world time.
    async fn ping(&mut self, nonce: u64) -> ServerMessage {
        self.send(&ClientMessage::Ping {
            nonce,
            client_time_us: 1,
        })
        .await;
        let pong = self.recv().await;
        match &pong {
            ServerMessage::Pong {
                nonce: n,
                world_time_ms,
                ..
            } => {
                assert_eq!(*n, nonce);
                assert!(world_time_ms.is_some(), "the world time rides on the pong");
            }
            other => panic!("expected Pong, got {other:?}"),
        }
        pong
    }

    /// The `Error` saying why, then the close frame `4000 + code` with its reason.
    async fn expect_close(&mut self, code: CloseCode) {
        match self.recv().await {
            ServerMessage::Error { code: got, .. } => assert_eq!(got, ErrorCode::from(code)),
            other => panic!("expected Error, got {other:?}"),
        }
        match self.next_raw().await {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 4000 + code.as_u32() as u16);
                assert_eq!(frame.reason.as_str(), code.reason());
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A player on one WebSocket: events dense and in order, commands answered.
struct Player {
    ws: Ws,
    session: uuid::Uuid,
    last_seq: Option<u64>,
    events: Vec<GameEvent>,
    next_req: u64,
    prompt: Option<(u32, u64, i64)>,
}

impl Player {
    async fn start(ts: &TestServer, token: &str, subprotocol: Option<&str>) -> Player {
        let mut ws = Ws::connect(ts, subprotocol).await;
        ws.hello().await;
        ws.ping(7).await;
        ws.send(&ClientMessage::Heartbeat { client_time_ms: 1 })
            .await;
        assert!(matches!(ws.recv().await, ServerMessage::Heartbeat { .. }));
        ws.authenticate(token).await;
        ws.send(&ClientMessage::CreateSession {
            scene: None,
            world: None,
        })
        .await;
        let session = match ws.recv().await {
            ServerMessage::SessionJoined {
                next_seq,
                session_id,
                ..
            } => {
                assert_eq!(next_seq, 0);
                session_id
            }
            other => panic!("expected SessionJoined, got {other:?}"),
        };
        Player {
            ws,
            session,
            last_seq: None,
            events: Vec::new(),
            next_req: 1,
            prompt: None,
        }
    }

    async fn pump(&mut self) -> ServerMessage {
        let msg = self.ws.recv().await;
        if let ServerMessage::Event { seq, event, .. } = &msg {
            assert_eq!(seq, &self.last_seq.map_or(0, |s| s + 1), "dense, in order");
            self.last_seq = Some(*seq);
            let event = event.known().cloned().expect("an event this build knows");
            if let GameEvent::MiniGamePrompt {
                round,
                nonce,
                opens_at_ms,
                ..
            } = &event
            {
                self.prompt = Some((*round, *nonce, *opens_at_ms));
            }
            self.events.push(event);
        }
        msg
    }

    /// Sends `command`; `Ok` when acknowledged, else the rejection code.
    async fn command(&mut self, command: GameCommand) -> Result<(), String> {
        let id = self.next_req;
        self.next_req += 1;
        self.ws
            .send(&ClientMessage::Command {
                request_id: id,
                command,
            })
            .await;
        loop {
            match self.pump().await {
                ServerMessage::Ack { request_id, .. } if request_id == id => return Ok(()),
                ServerMessage::Rejected {
                    request_id, code, ..
                } if request_id == id => return Err(code),
                _ => {}
            }
        }
    }

    /// Chooses `edge`, retrying while it is not revealed yet.
    async fn choose(&mut self, edge: &str) {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let choose = GameCommand::Choose { edge: edge.into() };
            match self.command(choose).await {
                Ok(()) => return,
                Err(code) if code == "not_revealed" => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{edge} never revealed"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(code) => panic!("choose {edge}: {code}"),
            }
        }
    }

    async fn wait_for(&mut self, f: impl Fn(&GameEvent) -> bool) {
        while !self.events.iter().any(&f) {
            self.pump().await;
        }
    }

    /// Waits for the next reflex prompt and presses inside its window.
    async fn react(&mut self) {
        self.prompt = None;
        while self.prompt.is_none() {
            self.pump().await;
        }
        let (round, nonce, opens) = self.prompt.take().unwrap();
        let input = GameCommand::MiniGameInput {
            round,
            nonce,
            client_time_ms: opens + 20,
        };
        assert_eq!(self.command(input).await, Ok(()));
    }
}

/// From the start to the vault door, then backing off: the failure ending.
async fn play_to_failure(ts: &TestServer, token: &str, subprotocol: Option<&str>) -> Player {
    let mut p = Player::start(ts, token, subprotocol).await;
    p.wait_for(node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    p.choose("go_sneak").await;
    for _ in 0..3 {
        p.react().await;
    }
    p.wait_for(node("door")).await;
    p.choose("back_off").await;
    p.wait_for(|e| matches!(e, GameEvent::SessionEnded { .. }))
        .await;
    assert!(p.events.iter().any(node("busted")));
    assert!(matches!(
        p.events.last(),
        Some(GameEvent::SessionEnded { reason }) if reason == "failure"
    ));
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_binary_and_json_play_the_demo_to_an_ending() {
    let ts = TestServer::start().await;
    let token = ts.user("ws-player@example.com").await;
    // No subprotocol offered is binary; both encodings play at once.
    let (default, binary, json) = futures::join!(
        play_to_failure(&ts, &token, None),
        play_to_failure(&ts, &token, Some("pixsim.v2")),
        play_to_failure(&ts, &token, Some("pixsim.v2.json")),
    );
    for p in [&default, &binary, &json] {
        assert_eq!(p.events.len() as u64, p.last_seq.unwrap() + 1);
    }
    assert_eq!(default.ws.enc, Enc::Binary);
    assert_eq!(json.ws.enc, Enc::Json);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_dropped_on_binary_resumes_on_json() {
    let ts = TestServer::start().await;
    let token = ts.user("ws-resume@example.com").await;
    let mut p = Player::start(&ts, &token, Some("pixsim.v2")).await;
    p.wait_for(node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    // Drop mid-scene, having seen events up to `seen`.
    let seen = p.last_seq.unwrap();
    let _ = p.ws.ws.close(None).await;

    let mut ws = Ws::json(&ts).await;
    ws.hello().await;
    ws.authenticate(&token).await;
    ws.send(&ClientMessage::JoinSession {
        session_id: p.session,
        last_seq: Some(seen),
    })
    .await;
    let next_seq = match ws.recv().await {
        ServerMessage::SessionJoined {
            session_id,
            next_seq,
            ended,
            ..
        } => {
            assert_eq!(session_id, p.session);
            assert!(!ended);
            next_seq
        }
        other => panic!("expected SessionJoined, got {other:?}"),
    };
    assert!(next_seq > seen);
    // Resent from `seen + 1` (dense, checked by the player), then live: play on.
    p.ws = ws;
    p.choose("go_sneak").await;
    for _ in 0..3 {
        p.react().await;
    }
    p.wait_for(node("door")).await;
    p.choose("back_off").await;
    p.wait_for(|e| matches!(e, GameEvent::SessionEnded { .. }))
        .await;
    assert!(p.events.iter().any(node("busted")));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_closes_only_that_connection() {
    let ts = TestServer::start().await;
    let token = ts.user("ws-bad@example.com").await;
    let mut bystander = Ws::json(&ts).await;
    bystander.hello().await;
    bystander.authenticate(&token).await;

    // An undecodable binary message.
    let mut c = Ws::binary(&ts).await;
    c.hello().await;
    c.send_raw(Message::Binary(vec![99u8].into())).await;
    c.expect_close(CloseCode::ProtocolError).await;

    // A binary message over 64 KiB, refused before it is read whole.
    let mut c = Ws::binary(&ts).await;
    c.hello().await;
    let big = vec![0u8; protocol::MAX_FRAME_LEN + 1];
    c.send_raw(Message::Binary(big.into())).await;
    c.expect_close(CloseCode::FrameTooLarge).await;

    // A text message on the binary subprotocol (here the default: none offered).
    let mut c = Ws::connect(&ts, None).await;
    c.hello().await;
    c.send_raw(Message::Text(r#""Leave""#.into())).await;
    c.expect_close(CloseCode::ProtocolError).await;

    // Invalid JSON, and a binary message on the JSON subprotocol.
    let mut c = Ws::json(&ts).await;
    c.hello().await;
    c.send_raw(Message::Text("{\"Ping\": {".into())).await;
    c.expect_close(CloseCode::ProtocolError).await;
    let mut c = Ws::json(&ts).await;
    c.send_raw(Message::Binary(vec![1, 1, 2].into())).await;
    c.expect_close(CloseCode::ProtocolError).await;

    // A command before authenticating: the wrong state.
    let mut c = Ws::json(&ts).await;
    c.hello().await;
    c.send(&ClientMessage::Command {
        request_id: 1,
        command: GameCommand::Leave,
    })
    .await;
    c.expect_close(CloseCode::Unauthenticated).await;

    // Anything before Hello, and a Hello of version 1.
    let mut c = Ws::binary(&ts).await;
    c.send(&ClientMessage::Heartbeat { client_time_ms: 1 })
        .await;
    c.expect_close(CloseCode::ProtocolError).await;
    let mut c = Ws::json(&ts).await;
    c.send(&ClientMessage::Hello {
        protocol_version: 1,
        client: "old".into(),
    })
    .await;
    c.expect_close(CloseCode::VersionMismatch).await;

    // An invalid token.
    let mut c = Ws::binary(&ts).await;
    c.hello().await;
    c.send(&ClientMessage::Authenticate {
        token: "nope".into(),
    })
    .await;
    c.expect_close(CloseCode::Unauthenticated).await;

    // The bystander never noticed, and new connections are served.
    bystander.ping(1).await;
    bystander
        .send(&ClientMessage::CreateSession {
            scene: None,
            world: None,
        })
        .await;
    assert!(matches!(
        bystander.recv().await,
        ServerMessage::SessionJoined { .. }
    ));
    let mut fresh = Ws::binary(&ts).await;
    fresh.hello().await;
    fresh.ping(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_refusals_are_http_errors() {
    let ts = TestServer::start().await;
    // Not an upgrade: 426, naming the protocol.
    let res = reqwest::get(ts.url("/api/v1/game/ws")).await.unwrap();
    assert_eq!(res.status(), 426);
    assert_eq!(res.headers()["upgrade"], "websocket");
    // Only unknown subprotocols offered: 400.
    let url = format!("ws://{}/api/v1/game/ws", ts.server.http_addr);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("pixsim.v1"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_max_connections_is_server_full_and_shutdown_closes_with_a_reason() {
    // The WebSocket channel takes its limits from `[quic]`, with its own count.
    let ts = TestServer::start_with(|c| c.quic.max_connections = 1).await;
    let mut first = Ws::json(&ts).await;
    first.hello().await;
    let mut second = Ws::json(&ts).await;
    second.expect_close(CloseCode::ServerFull).await;
    first.ping(1).await;
    let metrics = ts.metrics().await;
    assert!(metrics.contains("\npixsim_ws_connections 1\n"), "{metrics}");
    assert!(
        metrics.contains("\npixsim_ws_connections_accepted_total 1\n"),
        "{metrics}"
    );

    let closed = tokio::spawn(async move {
        first.expect_close(CloseCode::ServerShutdown).await;
    });
    ts.stop().await;
    closed.await.unwrap();
}
