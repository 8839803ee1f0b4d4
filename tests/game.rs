//! Game channel end to end: real QUIC, the real server and PostgreSQL. Plays the demo
//! story to its endings, reconnects and resumes, and tries malformed, oversized,
//! wrong-state, unauthenticated and cross-account traffic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use game_client::{Client, ClientError, Joined, Trust};
use protocol::CloseCode;
use protocol::v1::{ClientMessage, ErrorCode, GameCommand, GameEvent, ServerMessage};
use serde_json::json;
use tests::TestServer;
use uuid::Uuid;

const T: Duration = Duration::from_secs(10);

pub async fn connect(addr: SocketAddr, fingerprint: &str) -> Client {
    Client::connect(
        addr,
        "localhost",
        Trust::Fingerprint(fingerprint.to_owned()),
    )
    .await
    .unwrap()
}

/// A player on one connection: checks that events arrive dense and in order.
pub struct Player {
    pub client: Client,
    pub session: Uuid,
    /// Every event received, by seq.
    pub events: Vec<(u64, GameEvent)>,
    pub last_seq: Option<u64>,
    next_req: u64,
    pub ended: Option<String>,
    prompt: Option<(u32, u64, i64)>,
    pub acked: Vec<(String, Option<u64>)>,
}

/// What happened to a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Ack(Option<u64>),
    Rejected(String, String),
}

impl Player {
    pub fn new(client: Client, joined: &Joined) -> Self {
        Player {
            client,
            session: joined.session_id,
            events: Vec::new(),
            last_seq: None,
            next_req: 1,
            ended: None,
            prompt: None,
            acked: Vec::new(),
        }
    }

    /// Continues on a new connection (after `join_session`).
    pub fn reattach(&mut self, client: Client) {
        self.client = client;
    }

    fn record(&mut self, seq: u64, event: GameEvent) {
        let expected = self.last_seq.map(|s| s + 1).unwrap_or(0);
        assert_eq!(
            seq, expected,
            "events are dense, in order, without duplicates: {event:?}"
        );
        self.last_seq = Some(seq);
        match &event {
            GameEvent::SessionEnded { reason } => self.ended = Some(reason.clone()),
            GameEvent::MiniGamePrompt {
                round,
                nonce,
                opens_at_ms,
                ..
            } => self.prompt = Some((*round, *nonce, *opens_at_ms)),
            _ => {}
        }
        self.events.push((seq, event));
    }

    /// Receives one message, recording events.
    pub async fn pump(&mut self) -> Result<ServerMessage, ClientError> {
        let msg = self.client.recv_within(T).await?;
        if let ServerMessage::Event { seq, event, .. } = &msg {
            self.record(*seq, event.clone());
        }
        Ok(msg)
    }

    /// Sends a command and waits for its answer (events before it are recorded).
    pub async fn command(&mut self, command: GameCommand) -> Answer {
        let id = self.next_req;
        self.next_req += 1;
        let name = match &command {
            GameCommand::Choose { edge } => edge.clone(),
            other => other.name().to_owned(),
        };
        self.client.command(id, command).await.unwrap();
        loop {
            match self.pump().await.unwrap() {
                ServerMessage::Ack {
                    request_id,
                    through_seq,
                } if request_id == id => {
                    // The events the command caused came first.
                    if let Some(t) = through_seq {
                        assert!(self.last_seq >= Some(t), "ack before its events");
                    }
                    self.acked.push((name, through_seq));
                    return Answer::Ack(through_seq);
                }
                ServerMessage::Rejected {
                    request_id,
                    code,
                    message,
                } if request_id == id => return Answer::Rejected(code, message),
                _ => {}
            }
        }
    }

    /// Chooses `edge`, retrying while it is not revealed yet.
    pub async fn choose(&mut self, edge: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self
                .command(GameCommand::Choose { edge: edge.into() })
                .await
            {
                Answer::Ack(_) => return,
                Answer::Rejected(code, _) if code == "not_revealed" => {
                    assert!(Instant::now() < deadline, "{edge} never revealed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("choose {edge}: {other:?}"),
            }
        }
    }

    /// Waits until an event matches.
    pub async fn wait_for(&mut self, what: &str, f: impl Fn(&GameEvent) -> bool) {
        if self.events.iter().any(|(_, e)| f(e)) {
            return;
        }
        let start = self.events.len();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "no {what}: {:?}", self.events);
            self.pump().await.unwrap();
            if self.events[start..].iter().any(|(_, e)| f(e)) {
                return;
            }
        }
    }

    /// Waits for the next reflex prompt and presses inside its window.
    pub async fn react(&mut self) {
        self.prompt = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.prompt.is_none() {
            assert!(Instant::now() < deadline, "no prompt");
            self.pump().await.unwrap();
        }
        let (round, nonce, opens) = self.prompt.take().unwrap();
        let answer = self
            .command(GameCommand::MiniGameInput {
                round,
                nonce,
                client_time_ms: opens + 20,
            })
            .await;
        assert!(matches!(answer, Answer::Ack(_)), "{answer:?}");
    }

    pub fn saw(&self, f: impl Fn(&GameEvent) -> bool) -> bool {
        self.events.iter().any(|(_, e)| f(e))
    }

    pub async fn wait_end(&mut self) -> String {
        self.wait_for("session end", |e| {
            matches!(e, GameEvent::SessionEnded { .. })
        })
        .await;
        self.ended.clone().unwrap()
    }
}

pub fn node(name: &'static str) -> impl Fn(&GameEvent) -> bool {
    move |e| matches!(e, GameEvent::NodeEntered { node, .. } if node == name)
}

async fn player(ts: &TestServer, token: &str) -> Player {
    let mut c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    c.authenticate(token).await.unwrap();
    let joined = c.create_session(None).await.unwrap();
    assert_eq!(joined.next_seq, 0);
    Player::new(c, &joined)
}

/// From the start to the vault door with the keycard (sneaking, all three rounds hit).
pub async fn to_vault_door(p: &mut Player) {
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    p.choose("go_sneak").await;
    for _ in 0..3 {
        p.react().await;
    }
    p.wait_for("vault door", node("door")).await;
    assert!(p.saw(|e| matches!(e, GameEvent::MiniGameResult { success: true, .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn quic_plays_the_demo_to_each_ending() {
    let ts = TestServer::start().await;
    let token = ts.user("player@example.com").await;

    // Failure: backing off at the vault door.
    let mut p = player(&ts, &token).await;
    to_vault_door(&mut p).await;
    p.choose("back_off").await;
    assert_eq!(p.wait_end().await, "failure");
    assert!(p.saw(node("busted")));

    // Success: crack the vault (a 5 in 6 roll), then the epilogue.
    let mut wins = 0;
    for _attempt in 0..6 {
        let mut p = player(&ts, &token).await;
        to_vault_door(&mut p).await;
        p.choose("try_crack").await;
        if p.saw(node("toast")) || p.ended.is_none() {
            p.wait_for("toast", node("toast")).await;
            p.choose("cheers").await;
            assert_eq!(p.wait_end().await, "success");
            assert!(p.saw(node("win")));
            assert!(p.saw(|e| matches!(e, GameEvent::LevelUp { .. })));
            wins += 1;
            break;
        }
        assert_eq!(p.wait_end().await, "failure", "a jammed vault is busted");
    }
    assert_eq!(wins, 1, "the vault never opened in 6 tries");

    // Leaving ends the session; later commands are refused.
    let mut p = player(&ts, &token).await;
    p.wait_for("arrive", node("arrive")).await;
    assert!(matches!(
        p.command(GameCommand::Leave).await,
        Answer::Ack(_)
    ));
    assert_eq!(p.wait_end().await, "left");
    let again = p
        .command(GameCommand::Choose {
            edge: "arrive_next".into(),
        })
        .await;
    assert!(
        matches!(&again, Answer::Rejected(code, _) if code == "session_ended"),
        "{again:?}"
    );
    // An invalid choice is refused and changes nothing.
    let mut p = player(&ts, &token).await;
    p.wait_for("arrive", node("arrive")).await;
    let bad = p
        .command(GameCommand::Choose {
            edge: "nope".into(),
        })
        .await;
    assert!(
        matches!(&bad, Answer::Rejected(code, _) if code == "edge_not_offered"),
        "{bad:?}"
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnect_resumes_without_lost_or_duplicated_events() {
    let ts = TestServer::start().await;
    let token = ts.user("resume@example.com").await;
    let mut p = player(&ts, &token).await;
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    let seen = p.events.clone();
    let last = p.last_seq;
    // Drop the connection abruptly, then a command from another connection moves on.
    p.client.connection().close(0u32.into(), b"gone");
    let mut c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    c.authenticate(&token).await.unwrap();
    let joined = c.join_session(p.session, last).await.unwrap();
    assert_eq!(joined.next_seq, last.unwrap() + 1);
    p.reattach(c);
    p.choose("accept").await;
    p.wait_for("plan", node("plan")).await;

    // A third connection asking from an earlier seq gets exactly the missing events.
    let mut c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    c.authenticate(&token).await.unwrap();
    let joined = c.join_session(p.session, Some(2)).await.unwrap();
    assert!(!joined.ended);
    let mut replay = Vec::new();
    while replay.len() < p.events.len() - 3 {
        match c.recv_within(T).await.unwrap() {
            ServerMessage::Event { seq, event, .. } => replay.push((seq, event)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(replay, p.events[3..].to_vec());
    assert_eq!(&p.events[..seen.len()], &seen[..]);
    // Nothing more (no duplicates) until something happens.
    assert!(matches!(
        c.recv_within(Duration::from_millis(300)).await,
        Err(ClientError::Timeout(_))
    ));
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_cross_account_and_wrong_state_are_refused() {
    let ts = TestServer::start().await;
    let alice = ts.user("alice@example.com").await;
    let bob = ts.user("bob@example.com").await;
    let addr = ts.server.quic_addr;
    let fp = ts.server.quic_fingerprint.clone();

    // Session commands before authentication close with Unauthenticated.
    let mut c = connect(addr, &fp).await;
    let err = c.create_session(None).await.unwrap_err();
    assert_eq!(
        err.close_code(),
        Some(CloseCode::Unauthenticated),
        "{err:?}"
    );

    // A bad token closes with Unauthenticated.
    let mut c = connect(addr, &fp).await;
    let err = c.authenticate("not-a-token").await.unwrap_err();
    assert_eq!(
        err.close_code(),
        Some(CloseCode::Unauthenticated),
        "{err:?}"
    );

    // A command before joining a session is a protocol error.
    let mut c = connect(addr, &fp).await;
    c.authenticate(&alice).await.unwrap();
    c.command(1, GameCommand::Leave).await.unwrap();
    let err = c.recv_within(T).await.unwrap();
    assert!(
        matches!(
            err,
            ServerMessage::Error {
                code: ErrorCode::ProtocolError,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        c.closed().await.close_code(),
        Some(CloseCode::ProtocolError)
    );

    // Authenticating twice is a protocol error.
    let mut c = connect(addr, &fp).await;
    c.authenticate(&alice).await.unwrap();
    let err = c.authenticate(&alice).await.unwrap_err();
    assert_eq!(err.close_code(), Some(CloseCode::ProtocolError), "{err:?}");

    // Alice's session: Bob cannot join it (same answer as a missing one), nor over REST.
    let mut a = connect(addr, &fp).await;
    a.authenticate(&alice).await.unwrap();
    let joined = a.create_session(None).await.unwrap();
    let mut b = connect(addr, &fp).await;
    b.authenticate(&bob).await.unwrap();
    let err = b.join_session(joined.session_id, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                code: ErrorCode::SessionNotFound,
                close: None,
                ..
            }
        ),
        "{err:?}"
    );
    let err = b.join_session(Uuid::now_v7(), None).await.unwrap_err();
    assert!(matches!(
        err,
        ClientError::Rejected {
            code: ErrorCode::SessionNotFound,
            ..
        }
    ));
    // Bob's connection still works after a refused join.
    let own = b.create_session(None).await.unwrap();
    assert_ne!(own.session_id, joined.session_id);
    let path = format!("/api/v1/game/sessions/{}", joined.session_id);
    let (status, body) = ts.get(&path, Some(&bob)).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = ts
        .post(
            &format!("{path}/choose"),
            Some(&bob),
            json!({"edge": "arrive_next"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = ts.get(&path, None).await;
    assert_eq!(status, 401);
    // An unknown scene is refused without closing.
    let err = a.create_session(Some("nowhere")).await.unwrap_err();
    assert!(matches!(
        err,
        ClientError::Rejected {
            code: ErrorCode::InvalidRequest,
            close: None,
            ..
        }
    ));
    let err = a.create_session(Some("epilogue")).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                code: ErrorCode::InvalidRequest,
                ..
            }
        ),
        "locked"
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_frames_close_the_connection() {
    let ts = TestServer::start().await;
    let token = ts.user("fuzz@example.com").await;
    let addr = ts.server.quic_addr;
    let fp = ts.server.quic_fingerprint.clone();

    // Garbage payload after authentication.
    let mut c = connect(addr, &fp).await;
    c.authenticate(&token).await.unwrap();
    c.send_raw(&[0, 0, 0, 3, 0xFF, 0xFF, 0xFF]).await.unwrap();
    assert_eq!(
        c.closed().await.close_code(),
        Some(CloseCode::ProtocolError)
    );

    // A declared length above the maximum.
    let mut c = connect(addr, &fp).await;
    c.authenticate(&token).await.unwrap();
    let len = u32::try_from(protocol::MAX_FRAME_LEN + 1).unwrap();
    c.send_raw(&len.to_be_bytes()).await.unwrap();
    assert_eq!(
        c.closed().await.close_code(),
        Some(CloseCode::FrameTooLarge)
    );

    // A second Hello (wrong state).
    let mut c = connect(addr, &fp).await;
    c.send(&ClientMessage::Hello {
        protocol_version: 1,
        client: "again".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        c.closed().await.close_code(),
        Some(CloseCode::ProtocolError)
    );

    // Heartbeats are answered and the server still works afterwards.
    let mut c = connect(addr, &fp).await;
    c.send(&ClientMessage::Heartbeat { client_time_ms: 1 })
        .await
        .unwrap();
    assert!(matches!(
        c.recv_within(T).await.unwrap(),
        ServerMessage::Heartbeat { .. }
    ));
    c.authenticate(&token).await.unwrap();
    c.create_session(None).await.unwrap();
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_scene_player_plays_and_streams_events() {
    let ts = TestServer::start().await;
    let token = ts.user("web@example.com").await;
    let (status, scenes) = ts.get("/api/v1/game/scenes", Some(&token)).await;
    assert_eq!(status, 200, "{scenes}");
    assert!(
        scenes
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "gallery" && s["start"] == true)
    );
    let (status, scene) = ts.get("/api/v1/game/scenes/vault", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(scene["entry"], "door");
    let (status, _) = ts.get("/api/v1/game/scenes/nowhere", Some(&token)).await;
    assert_eq!(status, 404);

    let (status, s) = ts
        .post("/api/v1/game/sessions", Some(&token), json!({}))
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    assert!(!s["events"].as_array().unwrap().is_empty(), "{s}");
    let choose = format!("/api/v1/game/sessions/{id}/choose");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ts
            .post(&choose, Some(&token), json!({"edge": "arrive_next"}))
            .await;
        if status == 200 {
            assert!(
                body["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["event"]["NodeEntered"]["node"] == "mara_talk"),
                "{body}"
            );
            break;
        }
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["details"]["reason"], "not_revealed");
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = ts
        .post(&choose, Some(&token), json!({"edge": "nope"}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = ts.post(&choose, Some(&token), json!({"leave": true})).await;
    assert_eq!(status, 200);
    let (status, s) = ts
        .get(&format!("/api/v1/game/sessions/{id}"), Some(&token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(s["ended"], true);

    // SSE replays every committed event and ends with the session.
    let res = ts
        .http
        .get(ts.url(&format!("/api/v1/game/sessions/{id}/events")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(T, res.text()).await.unwrap().unwrap();
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>());
    assert!(text.contains("SessionEnded"), "{text}");
    ts.stop().await;
}
