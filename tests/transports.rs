//! The game channel's three transports side by side: a client of each (QUIC with the
//! `game-client` crate, WebSocket with tokio-tungstenite in binary frames, WebTransport
//! pinned by the published certificate hashes), a player that drives any of them and
//! checks that events arrive dense and in order, and one session played across all
//! three.

use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use protocol::CloseCode;
use protocol::v2::{ClientMessage, GameCommand, GameEvent, ServerMessage, Snapshot};
use tests::TestServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

pub const T: Duration = Duration::from_secs(10);

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection of the game channel, on any transport.
pub enum Wire {
    Quic(Box<game_client::Client>),
    WebSocket(Box<WsStream>),
    WebTransport(Box<::webtransport::client::GameClient>),
}

/// `GET /api/v1/game/webtransport`: the session URL and the pinned hashes.
pub async fn webtransport_directory(ts: &TestServer) -> (String, Vec<[u8; 32]>) {
    let (status, body) = ts.get("/api/v1/game/webtransport", None).await;
    assert_eq!(status, 200, "{body}");
    let hashes = body["certificate_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["algorithm"], "sha-256");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(h["value"].as_str().unwrap())
                .unwrap();
            <[u8; 32]>::try_from(bytes).unwrap()
        })
        .collect();
    (body["url"].as_str().unwrap().to_owned(), hashes)
}

impl Wire {
    /// A QUIC connection (version handshake done by the client).
    pub async fn quic(ts: &TestServer) -> Wire {
        Wire::Quic(Box::new(
            crate::game::connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await,
        ))
    }

    /// A WebSocket with the binary subprotocol, after the version handshake.
    pub async fn websocket(ts: &TestServer) -> Wire {
        let url = format!("ws://{}/api/v1/game/ws", ts.server.http_addr);
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "pixsim.v2".parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            resp.headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok()),
            Some("pixsim.v2")
        );
        Wire::WebSocket(Box::new(ws)).hello().await
    }

    /// A WebTransport session pinned by the published hashes, after the version
    /// handshake.
    pub async fn webtransport(ts: &TestServer) -> Wire {
        let (url, hashes) = webtransport_directory(ts).await;
        let client = ::webtransport::client::GameClient::connect(&url, hashes)
            .await
            .unwrap();
        Wire::WebTransport(Box::new(client)).hello().await
    }

    /// Sends `Hello` and expects `Welcome`.
    pub async fn hello(mut self) -> Wire {
        self.send(&ClientMessage::Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            client: "e2e".into(),
        })
        .await;
        match self.recv().await {
            ServerMessage::Welcome {
                protocol_version, ..
            } => assert_eq!(protocol_version, protocol::PROTOCOL_VERSION),
            other => panic!("expected Welcome, got {other:?}"),
        }
        self
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        match self {
            Wire::Quic(c) => c.send(msg).await.unwrap(),
            Wire::WebSocket(ws) => {
                let payload = postcard_payload(msg);
                ws.send(Message::Binary(payload.into())).await.unwrap();
            }
            Wire::WebTransport(c) => c.send(msg).await.unwrap(),
        }
    }

    /// The next server message (within [`T`]).
    pub async fn recv(&mut self) -> ServerMessage {
        let next = async {
            match self {
                Wire::Quic(c) => c.recv().await.unwrap(),
                Wire::WebSocket(ws) => loop {
                    match ws.next().await.unwrap().unwrap() {
                        Message::Binary(b) => {
                            if let Some(msg) = protocol::decode_server_payload(&b).unwrap() {
                                break msg;
                            }
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                        other => panic!("unexpected WebSocket message {other:?}"),
                    }
                },
                Wire::WebTransport(c) => c.recv().await.unwrap(),
            }
        };
        tokio::time::timeout(T, next)
            .await
            .expect("a server message")
    }

    /// Waits for the server to close; its close code.
    pub async fn closed(self) -> Option<CloseCode> {
        let closed = async {
            match self {
                Wire::Quic(c) => c.closed().await.close_code(),
                Wire::WebSocket(mut ws) => loop {
                    match ws.next().await {
                        Some(Ok(Message::Close(Some(frame)))) => {
                            let n = u16::from(frame.code);
                            break n
                                .checked_sub(4000)
                                .and_then(|c| CloseCode::from_u32(u32::from(c)));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break None,
                    }
                },
                Wire::WebTransport(c) => c
                    .closed()
                    .await
                    .and_then(|(code, _)| CloseCode::from_u32(code)),
            }
        };
        tokio::time::timeout(T, closed).await.expect("a close")
    }
}

fn postcard_payload(msg: &ClientMessage) -> Vec<u8> {
    let mut frame = Vec::new();
    protocol::encode_frame(msg, &mut frame).unwrap();
    frame.split_off(protocol::FRAME_HEADER_LEN)
}

/// A player on some transport: checks that events arrive dense, in order, once.
pub struct Player {
    pub wire: Wire,
    pub session: Uuid,
    pub events: Vec<(u64, GameEvent)>,
    pub last_seq: Option<u64>,
    next_req: u64,
    prompt: Option<(u32, u64, i64)>,
}

impl Player {
    /// Authenticates `wire` and creates a session of the start scene.
    pub async fn create(mut wire: Wire, token: &str) -> Player {
        authenticate(&mut wire, token).await;
        wire.send(&ClientMessage::CreateSession {
            scene: None,
            world: None,
        })
        .await;
        let (session, next_seq, _) = joined(&mut wire).await;
        assert_eq!(next_seq, 0);
        Player {
            wire,
            session,
            events: Vec::new(),
            last_seq: None,
            next_req: 1,
            prompt: None,
        }
    }

    /// Continues the session on `wire` (authenticated and joined here with the last
    /// sequence number seen): what was missed is resent. The join's next sequence
    /// number and snapshot.
    pub async fn move_to(&mut self, mut wire: Wire, token: &str) -> (u64, Snapshot) {
        authenticate(&mut wire, token).await;
        wire.send(&ClientMessage::JoinSession {
            session_id: self.session,
            last_seq: self.last_seq,
        })
        .await;
        let (session, next_seq, snapshot) = joined(&mut wire).await;
        assert_eq!(session, self.session);
        assert!(
            Some(next_seq) > self.last_seq || (next_seq == 0 && self.last_seq.is_none()),
            "the snapshot is not older than what was seen"
        );
        self.wire = wire;
        (next_seq, snapshot)
    }

    fn record(&mut self, seq: u64, event: GameEvent) {
        let expected = self.last_seq.map(|s| s + 1).unwrap_or(0);
        assert_eq!(seq, expected, "dense, in order, no duplicate: {event:?}");
        self.last_seq = Some(seq);
        if let GameEvent::MiniGamePrompt {
            round,
            nonce,
            opens_at_ms,
            ..
        } = &event
        {
            self.prompt = Some((*round, *nonce, *opens_at_ms));
        }
        self.events.push((seq, event));
    }

    pub async fn pump(&mut self) -> ServerMessage {
        let msg = self.wire.recv().await;
        if let ServerMessage::Event { seq, event, .. } = &msg {
            let event = event.known().cloned().expect("an event this build knows");
            self.record(*seq, event);
        }
        msg
    }

    /// Sends a command; `Ok` with the ack, `Err(code)` when rejected.
    pub async fn command(&mut self, command: GameCommand) -> Result<(), String> {
        let id = self.next_req;
        self.next_req += 1;
        self.wire
            .send(&ClientMessage::Command {
                request_id: id,
                command,
            })
            .await;
        loop {
            match self.pump().await {
                ServerMessage::Ack {
                    request_id,
                    through_seq,
                } if request_id == id => {
                    if let Some(t) = through_seq {
                        assert!(self.last_seq >= Some(t), "ack before its events");
                    }
                    return Ok(());
                }
                ServerMessage::Rejected {
                    request_id, code, ..
                } if request_id == id => return Err(code),
                ServerMessage::Error { code, message } => panic!("error {code:?}: {message}"),
                _ => {}
            }
        }
    }

    /// Chooses `edge`, retrying while it is not revealed yet.
    pub async fn choose(&mut self, edge: &str) {
        let deadline = Instant::now() + T;
        loop {
            match self
                .command(GameCommand::Choose { edge: edge.into() })
                .await
            {
                Ok(()) => return,
                Err(code) if code == "not_revealed" => {
                    assert!(Instant::now() < deadline, "{edge} never revealed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(code) => panic!("choose {edge}: {code}"),
            }
        }
    }

    pub fn saw(&self, f: impl Fn(&GameEvent) -> bool) -> bool {
        self.events.iter().any(|(_, e)| f(e))
    }

    /// Waits until an event matches.
    pub async fn wait_for(&mut self, what: &str, f: impl Fn(&GameEvent) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.saw(&f) {
            assert!(Instant::now() < deadline, "no {what}: {:?}", self.events);
            self.pump().await;
        }
    }

    /// Waits for the next reflex prompt and presses inside its window.
    pub async fn react(&mut self) {
        self.prompt = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.prompt.is_none() {
            assert!(Instant::now() < deadline, "no prompt");
            self.pump().await;
        }
        let (round, nonce, opens) = self.prompt.take().unwrap();
        self.command(GameCommand::MiniGameInput {
            round,
            nonce,
            client_time_ms: opens + 20,
        })
        .await
        .unwrap();
    }

    /// Waits for the end; its reason.
    pub async fn wait_end(&mut self) -> String {
        self.wait_for("session end", |e| {
            matches!(e, GameEvent::SessionEnded { .. })
        })
        .await;
        self.events
            .iter()
            .find_map(|(_, e)| match e {
                GameEvent::SessionEnded { reason } => Some(reason.clone()),
                _ => None,
            })
            .unwrap()
    }
}

pub async fn authenticate(wire: &mut Wire, token: &str) {
    wire.send(&ClientMessage::Authenticate {
        token: token.to_owned(),
    })
    .await;
    match wire.recv().await {
        ServerMessage::Authenticated { .. } => {}
        other => panic!("expected Authenticated, got {other:?}"),
    }
}

/// Waits for `SessionJoined`: the session, its next sequence number and its snapshot.
async fn joined(wire: &mut Wire) -> (Uuid, u64, Snapshot) {
    loop {
        match wire.recv().await {
            ServerMessage::SessionJoined {
                session_id,
                next_seq,
                snapshot,
                ..
            } => return (session_id, next_seq, snapshot),
            ServerMessage::Heartbeat { .. } | ServerMessage::Pong { .. } => {}
            other => panic!("expected SessionJoined, got {other:?}"),
        }
    }
}

/// From the start through the sneaking (three reflex rounds) to the vault door.
pub async fn to_vault_door(p: &mut Player) {
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    p.choose("go_sneak").await;
    for _ in 0..3 {
        p.react().await;
    }
    p.wait_for("vault door", node("door")).await;
}

pub fn node(name: &'static str) -> impl Fn(&GameEvent) -> bool {
    move |e| matches!(e, GameEvent::NodeEntered { node, .. } if node == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_session_is_played_across_quic_websocket_and_webtransport() {
    let ts = TestServer::start().await;
    let token = ts.user("three@example.com").await;

    // Created over QUIC, to the job offer.
    let mut p = Player::create(Wire::quic(&ts).await, &token).await;
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;

    // Continued over WebSocket: the sneaking and its three reflex rounds.
    p.move_to(Wire::websocket(&ts).await, &token).await;
    p.choose("go_sneak").await;
    for _ in 0..3 {
        p.react().await;
    }
    p.wait_for("vault door", node("door")).await;

    // Finished over WebTransport: backing off is the failure ending.
    p.move_to(Wire::webtransport(&ts).await, &token).await;
    p.choose("back_off").await;
    assert_eq!(p.wait_end().await, "failure");
    assert!(p.saw(node("jammed")));

    // Every event exactly once, in order, from 0; the REST view agrees it ended.
    let seqs: Vec<u64> = p.events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
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

/// A new connection on `transport` (`quic`, `websocket` or `webtransport`).
async fn wire_of(ts: &TestServer, transport: &str) -> Wire {
    match transport {
        "quic" => Wire::quic(ts).await,
        "websocket" => Wire::websocket(ts).await,
        _ => Wire::webtransport(ts).await,
    }
}

/// A connection dropped mid-scene with events it never read, on each transport: the
/// rejoin on that transport answers with a snapshot of where the session stands, then
/// exactly the missed events (resent, each once, in order), then play goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_session_resumes_with_its_snapshot_on_every_transport() {
    let ts = TestServer::start().await;
    let token = ts.user("resume@example.com").await;
    for transport in ["quic", "websocket", "webtransport"] {
        let mut p = Player::create(wire_of(&ts, transport).await, &token).await;
        p.wait_for("arrive", node("arrive")).await;
        p.choose("arrive_next").await;
        // `accept`, answered; its events are read off the wire but never seen by the
        // player, and the connection drops.
        let seen = p.last_seq;
        p.wire
            .send(&ClientMessage::Command {
                request_id: 1_000,
                command: GameCommand::Choose {
                    edge: "accept".into(),
                },
            })
            .await;
        let mut missed = Vec::new();
        loop {
            match p.wire.recv().await {
                ServerMessage::Event { seq, event, .. } => {
                    missed.push((seq, event.known().cloned().expect("known")));
                }
                ServerMessage::Ack {
                    request_id: 1_000, ..
                } => break,
                ServerMessage::Rejected { code, .. } => panic!("{transport}: accept {code}"),
                _ => {}
            }
        }
        assert!(!missed.is_empty(), "{transport}: accepting moves the story");
        let at = missed
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                GameEvent::NodeEntered { node, .. } => Some(node.clone()),
                _ => None,
            })
            .expect("a node entered");

        let (next_seq, snapshot) = p.move_to(wire_of(&ts, transport).await, &token).await;
        assert_eq!(p.last_seq, seen, "{transport}: the player saw none of them");
        assert_eq!(
            snapshot.position.as_ref().map(|x| x.node.as_str()),
            Some(at.as_str()),
            "{transport}: the snapshot stands where the missed events led"
        );
        assert!(
            !snapshot.choices.is_empty(),
            "{transport}: and offers its choices"
        );
        assert_eq!(next_seq, missed.last().map(|(s, _)| s + 1).unwrap_or(0));
        // The resent events: exactly the missed ones (`record` checks each seq once).
        while p.last_seq.map(|s| s + 1) < Some(next_seq) {
            p.pump().await;
        }
        let resent: Vec<_> = p
            .events
            .iter()
            .filter(|(s, _)| Some(*s) > seen)
            .cloned()
            .collect();
        assert_eq!(resent, missed, "{transport}: the missed events, resent");
        // And the story goes on from there.
        p.choose("go_sneak").await;
        p.wait_for("a reflex prompt", |e| {
            matches!(e, GameEvent::MiniGamePrompt { .. })
        })
        .await;
    }
    ts.stop().await;
}
