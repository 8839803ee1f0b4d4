//! Game channel end to end: real QUIC, the real server and PostgreSQL. Plays the demo
//! story to its endings, reconnects and resumes, and tries malformed, oversized,
//! wrong-state, unauthenticated and cross-account traffic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use game_client::{Client, ClientError, Joined, Trust};
use protocol::CloseCode;
use protocol::v2::{ClientMessage, ErrorCode, GameCommand, GameEvent, ServerMessage};
use serde_json::json;
use tests::TestServer;
use uuid::Uuid;

pub const T: Duration = Duration::from_secs(10);

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
            let event = event.known().cloned().expect("an event this build knows");
            self.record(*seq, event);
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

/// From the start through the vault (retrying the 5 in 6 crack roll on new sessions) to
/// the epilogue's toast. A jammed vault ends the session as a failure, in `busted`.
async fn to_toast(ts: &TestServer, token: &str) -> Player {
    for _attempt in 0..8 {
        let mut p = player(ts, token).await;
        to_vault_door(&mut p).await;
        p.choose("try_crack").await;
        p.wait_for("toast or the end", |e| {
            node("toast")(e) || matches!(e, GameEvent::SessionEnded { .. })
        })
        .await;
        if p.saw(node("toast")) {
            assert!(p.saw(node("open")) && p.saw(node("escape")));
            return p;
        }
        assert_eq!(p.wait_end().await, "failure", "a jammed vault is busted");
        assert!(p.saw(node("jammed")) && p.saw(node("busted")));
    }
    panic!("the vault never opened in 8 tries (5 in 6 each)");
}

/// The end nodes of the demo, with their outcome.
const END_NODES: [(&str, &str); 3] = [
    ("win", "success"),
    ("busted", "failure"),
    ("neutral_end", "neutral"),
];

#[tokio::test(flavor = "multi_thread")]
async fn quic_plays_the_demo_to_each_ending() {
    let ts = TestServer::start().await;
    let token = ts.user("player@example.com").await;

    // Every end node of the demo content is played to below.
    let content = ts.server.state.game.content();
    let ends: Vec<(String, String)> = content
        .scenes
        .values()
        .flat_map(|sc| {
            sc.nodes.iter().filter_map(|n| match &n.kind {
                domain::narrative::NodeKind::End { outcome } => {
                    let outcome = serde_json::to_value(outcome).unwrap();
                    Some((n.id.clone(), outcome.as_str().unwrap().to_owned()))
                }
                _ => None,
            })
        })
        .collect();
    let mut expected: Vec<(String, String)> = END_NODES
        .iter()
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect();
    let mut found = ends.clone();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "the demo's end nodes");

    // The three paths in parallel, one connection each.
    let failure = async {
        // Backing off at the vault door.
        let mut p = player(&ts, &token).await;
        to_vault_door(&mut p).await;
        p.choose("back_off").await;
        assert_eq!(p.wait_end().await, "failure");
        assert!(p.saw(node("jammed")));
        p
    };
    let success = async {
        // Crack the vault, toast with Mara, watch the dawn, and the epilogue returns to
        // the win.
        let mut p = to_toast(&ts, &token).await;
        p.choose("cheers").await;
        p.wait_for("dawn", node("dawn")).await;
        p.choose("dawn_next").await;
        assert_eq!(p.wait_end().await, "success");
        assert!(p.saw(|e| matches!(e, GameEvent::LevelUp { .. })));
        assert!(p.saw(|e| matches!(e, GameEvent::SceneUnlocked { scene } if scene == "epilogue")));
        p
    };
    let neutral = async {
        // Crack the vault, then slip away before dawn: the epilogue returns by the
        // `alone` route to the neutral ending.
        let mut p = to_toast(&ts, &token).await;
        p.choose("slip_away").await;
        assert_eq!(p.wait_end().await, "neutral");
        assert!(!p.saw(node("win")));
        p
    };
    let (failure, success, neutral) = futures::join!(failure, success, neutral);
    for (p, (end, outcome)) in [failure, success, neutral].iter().zip([
        ("busted", "failure"),
        ("win", "success"),
        ("neutral_end", "neutral"),
    ]) {
        assert!(p.saw(node(end)), "{end} entered");
        assert_eq!(p.ended.as_deref(), Some(outcome));
        // Exactly one end, and it is the last event.
        let ends = p
            .events
            .iter()
            .filter(|(_, e)| matches!(e, GameEvent::SessionEnded { .. }))
            .count();
        assert_eq!(ends, 1);
        assert!(matches!(
            p.events.last(),
            Some((_, GameEvent::SessionEnded { .. }))
        ));
        // The ending is durable: REST reads the ended session back.
        let (status, s) = ts
            .get(
                &format!("/api/v1/game/sessions/{}", p.session),
                Some(&token),
            )
            .await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["ended"], true);
    }

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
            ServerMessage::Event { seq, event, .. } => {
                replay.push((seq, event.known().cloned().unwrap()))
            }
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

/// The world clock as the tick inspector reads it (admin RPC over HTTP).
async fn world_clock(ts: &TestServer, admin: &str) -> serde_json::Value {
    let (status, v) = ts
        .post(
            "/api/v1/admin/rpc",
            Some(admin),
            json!({"jsonrpc": "2.0", "id": 1, "method": "world.inspect"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["result"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn time_sync_estimates_the_simulation_clock() {
    let ts = TestServer::start().await;
    let tick_ms = ts.server.state.tick.stats.period().as_secs_f64() * 1000.0;
    let admin = ts.admin("clock@example.com").await;
    let token = ts.user("sync@example.com").await;

    // Time sync is answered right after the version handshake, before authentication.
    let c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    let early = c.time_sync(3).await.unwrap();
    assert!(early.rtt_ms > 0.0, "{early:?}");
    drop(c);

    let mut p = player(&ts, &token).await;
    let sync = p.client.time_sync(8).await.unwrap();
    assert!(sync.rtt_ms > 0.0, "{sync:?}");
    // The world clock starts at 0 with the server, so the offset is nothing like the
    // local clock: agreement below is not a coincidence of two similar clocks.
    for _ in 0..5 {
        let before = Instant::now();
        let world = world_clock(&ts, &admin).await;
        let after = Instant::now();
        let now_ms = world["clock"]["now_ms"].as_i64().unwrap() as f64;
        // The inspector read the last tick's world time at some instant between
        // `before` and `after`: at most one tick behind the continuous clock there.
        // The estimate is within rtt/2 of it (+ scheduling slack for a loaded machine).
        let lo = sync.server_ms_at(before) as f64;
        let hi = sync.server_ms_at(after) as f64;
        let slack = sync.rtt_ms / 2.0 + tick_ms + 20.0;
        eprintln!(
            "time sync: world {now_ms} ms, estimate {lo}..{hi} ms, rtt {:.2} ms",
            sync.rtt_ms
        );
        assert!(
            now_ms >= lo - tick_ms - slack && now_ms <= hi + slack,
            "world clock {now_ms} ms, estimated between {lo} and {hi} ms ({sync:?})"
        );
    }

    // The simulation judges reflex inputs against its own clock: presses stamped with
    // the estimate are hits (in the window, not stale, not ahead of the server clock).
    // The clock a command is judged by is the world time of the tick that processes
    // it, which on a loaded machine may start a few ms late: a press is claimed one
    // tick in the past, well inside the 250 ms the simulation accepts.
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    p.choose("go_sneak").await;
    for _ in 0..3 {
        p.prompt = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        while p.prompt.is_none() {
            assert!(Instant::now() < deadline, "no prompt");
            p.pump().await.unwrap();
        }
        let (round, nonce, opens) = p.prompt.take().unwrap();
        // As a client would: sync again at the start of a mini-game round.
        let sync = p.client.time_sync(4).await.unwrap();
        let margin = tick_ms as i64;
        // Wait (by the estimate) until the claim will be 30 ms into the window.
        while sync.server_now_ms() - margin < opens + 30 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let claimed = sync.server_ms_at(Instant::now()) - margin;
        let answer = p
            .command(GameCommand::MiniGameInput {
                round,
                nonce,
                client_time_ms: claimed,
            })
            .await;
        assert!(matches!(answer, Answer::Ack(_)), "{answer:?}");
        let result = p.events.iter().rev().find_map(|(_, e)| match e {
            GameEvent::MiniGameRound {
                round: r,
                hit,
                reason,
            } if *r == round => Some((*hit, reason.clone())),
            _ => None,
        });
        assert_eq!(
            result,
            Some((true, None)),
            "round {round}: claimed {claimed} ms, window opened at {opens} ms"
        );
    }
    p.wait_for("the reflex result", |e| {
        matches!(
            e,
            GameEvent::MiniGameResult {
                success: true,
                score: 3,
                ..
            }
        )
    })
    .await;
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_datagrams_close_the_connection() {
    let ts = TestServer::start().await;
    let addr = ts.server.quic_addr;
    let fp = ts.server.quic_fingerprint.clone();

    // An unknown datagram tag: the connection closes with a protocol error, and the
    // `Error` before the close says it was the datagram.
    let mut c = connect(addr, &fp).await;
    assert!(c.time_sync(1).await.is_ok());
    c.connection()
        .send_datagram(vec![0xFF, 0x01].into())
        .unwrap();
    let msg = c.recv_within(T).await.unwrap();
    assert!(
        matches!(&msg, ServerMessage::Error { code: ErrorCode::ProtocolError, message } if message.contains("datagram")),
        "{msg:?}"
    );
    match c.closed().await {
        ClientError::Closed { code, reason } => {
            assert_eq!(code, CloseCode::ProtocolError);
            assert_eq!(reason, "protocol error");
        }
        other => panic!("{other:?}"),
    }

    // A well-formed request with a trailing byte is malformed too.
    let c = connect(addr, &fp).await;
    let mut bytes = protocol::encode_datagram(&protocol::v2::ClientDatagram::TimeSyncRequest {
        client_send_us: 1,
    })
    .unwrap();
    bytes.push(0);
    c.connection().send_datagram(bytes.into()).unwrap();
    assert_eq!(
        c.closed().await.close_code(),
        Some(CloseCode::ProtocolError)
    );

    // A datagram above the protocol's maximum (QUIC itself would carry it).
    let c = connect(addr, &fp).await;
    let max = c.connection().max_datagram_size().unwrap();
    assert!(max > protocol::MAX_DATAGRAM_LEN, "{max}");
    c.connection()
        .send_datagram(vec![0u8; protocol::MAX_DATAGRAM_LEN + 1].into())
        .unwrap();
    assert_eq!(
        c.closed().await.close_code(),
        Some(CloseCode::ProtocolError)
    );

    // The server is fine: a new connection syncs.
    let c = connect(addr, &fp).await;
    assert!(c.time_sync(2).await.is_ok());
    ts.stop().await;
}

/// Polls `f` (bounded) until it holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ended_and_idle_sessions_are_evicted_and_reload_from_the_database() {
    let ts = TestServer::start_with(|c| {
        c.game.evict_ended_after_secs = 1.0;
        c.game.evict_idle_after_secs = 0.5;
    })
    .await;
    let admin = ts.admin("ops@example.com").await;
    let token = ts.user("evict@example.com").await;
    let game = ts.server.state.game.clone();

    // One session is played to the second node and stays followed by its client;
    // another one ends.
    let mut idle = player(&ts, &token).await;
    idle.wait_for("arrive", node("arrive")).await;
    idle.choose("arrive_next").await;
    let idle_events = idle.events.clone();
    let idle_last = idle.last_seq;
    let mut ended = player(&ts, &token).await;
    ended.wait_for("arrive", node("arrive")).await;
    assert!(matches!(
        ended.command(GameCommand::Leave).await,
        Answer::Ack(_)
    ));
    assert_eq!(ended.wait_end().await, "left");
    assert_eq!(game.loaded_sessions(), 2);

    // The ended one goes after its grace period. By then the other one has been idle
    // for longer than the idle limit, but a client follows it: it stays.
    // (The sweep that dropped the ended one would have marked the other one too.)
    eventually("the ended session's eviction", || {
        game.loaded_sessions() == 1
    })
    .await;
    assert_eq!(game.evictions(), 1, "only the ended session was evicted");

    // Detached: saved, unloaded from the tick and dropped from memory.
    idle.client.connection().close(0u32.into(), b"bye");
    ended.client.connection().close(0u32.into(), b"bye");
    eventually("the idle session's eviction", || {
        game.loaded_sessions() == 0
    })
    .await;
    assert!(game.evictions() >= 2);
    let world = world_clock(&ts, &admin).await;
    assert_eq!(world["sessions"], 0, "nothing left in the tick: {world}");
    let text = ts.metrics().await;
    assert!(text.contains("pixsim_game_sessions_loaded 0"), "{text}");

    // Joining reloads from PostgreSQL and resumes where it was, without lost or
    // duplicated events.
    let mut c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    c.authenticate(&token).await.unwrap();
    let joined = c.join_session(idle.session, idle_last).await.unwrap();
    assert!(!joined.ended);
    // The reload ran in the tick that took the snapshot: its `Resumed` and the node
    // shown again are below next_seq, and resent.
    assert!(joined.next_seq > idle_last.unwrap() + 1, "{joined:?}");
    assert_eq!(
        joined.snapshot.position.as_ref().map(|p| p.node.as_str()),
        Some("mara_talk")
    );
    idle.reattach(c);
    idle.wait_for(
        "the resume",
        |e| matches!(e, GameEvent::Resumed { node, .. } if node == "mara_talk"),
    )
    .await;
    idle.choose("accept").await;
    idle.wait_for("plan", node("plan")).await;
    assert_eq!(&idle.events[..idle_events.len()], &idle_events[..]);
    assert_eq!(game.loaded_sessions(), 1);

    // The ended session reads back from the database, ended, with all its events.
    let (status, s) = ts
        .get(
            &format!("/api/v1/game/sessions/{}", ended.session),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["ended"], true);
    assert_eq!(s["next_seq"].as_u64(), ended.last_seq.map(|l| l + 1), "{s}");
    let seqs: Vec<u64> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(seqs.len(), ended.events.len());
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_closed_as_a_slow_consumer() {
    let ts = TestServer::start_with(|c| {
        c.quic.outbox_capacity = 4;
        c.game.send_wait_secs = 1.0;
    })
    .await;
    let token = ts.user("slow@example.com").await;
    let stats = ts.server.state.tick.stats.clone();

    // A normal player makes the session's events flow.
    let mut p = player(&ts, &token).await;
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;

    // The slow client plays a session of its own and stops reading: it floods commands
    // whose answers (refusals, `busy` beyond its in-flight budget) fill its
    // flow-control window and then its send queue. It stops once it is closed.
    let mut slow = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    slow.authenticate(&token).await.unwrap();
    slow.create_session(None).await.unwrap();
    let start = Instant::now();
    let ticks_before = stats.number();
    let overruns_before = stats.overruns();
    let mut sent = 0usize;
    let mut commands = 0u64;
    let closed = loop {
        assert!(commands < 50_000, "never closed after {commands} commands");
        let flood = ClientMessage::Command {
            request_id: commands,
            command: GameCommand::Choose {
                edge: format!("nope{commands}"),
            },
        };
        match slow.send(&flood).await {
            Ok(()) => commands += 1,
            Err(e) => break e,
        }
        // Meanwhile the player goes on (one invalid choice every few hundred).
        if commands.is_multiple_of(500) {
            let bad = p
                .command(GameCommand::Choose {
                    edge: format!("nope{commands}"),
                })
                .await;
            assert!(matches!(bad, Answer::Rejected(..)), "{bad:?}");
            sent += 1;
        }
        if let Some(reason) = slow.connection().close_reason() {
            break reason.into();
        }
    };
    // The close carries the reason (the error seen on the write may be a reset).
    let closed = match closed.close_code() {
        Some(_) => closed,
        None => slow.closed().await,
    };
    assert_eq!(
        closed.close_code(),
        Some(CloseCode::SlowConsumer),
        "{closed:?}"
    );
    if let ClientError::Closed { reason, .. } = &closed {
        assert_eq!(reason, "slow consumer");
    }
    let elapsed = start.elapsed();

    // The tick never waited on the slow client: no tick took as long as the send
    // wait (a tick that waited on the slow client's queue would take at least that
    // long), the clock goes on ticking, and nothing was lost for the player on its own
    // connection.
    let ticks = stats.number() - ticks_before;
    let longest = stats
        .history(ticks as usize + 1)
        .iter()
        .map(|r| r.duration_us)
        .fold(0.0f64, f64::max);
    assert!(
        longest < 1_000_000.0,
        "a tick took {longest} µs while a client was slow"
    );
    let after_close = stats.number();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.number() < after_close + 5 {
        assert!(
            Instant::now() < deadline,
            "the clock stopped after the close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let overruns = stats.overruns() - overruns_before;
    eprintln!(
        "slow consumer closed after {commands} commands in {elapsed:?}; {ticks} ticks, longest {longest} µs, {overruns} overruns"
    );
    assert!(
        matches!(
            p.command(GameCommand::Choose {
                edge: "accept".into()
            })
            .await,
            Answer::Ack(_)
        ),
        "the player's session goes on ({sent} invalid choices meanwhile)"
    );
    p.wait_for("plan", node("plan")).await;
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_flood_gets_busy_answers_and_loses_nothing() {
    let ts = TestServer::start_with(|c| c.game.max_inflight = 2).await;
    let token = ts.user("flood@example.com").await;
    let mut p = player(&ts, &token).await;
    p.wait_for("arrive", node("arrive")).await;
    // Wait until the first choice is revealed, so the flood's first command is valid.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match p
            .command(GameCommand::Choose {
                edge: "nope".into(),
            })
            .await
        {
            Answer::Rejected(code, _) if code == "edge_not_offered" => {}
            other => panic!("{other:?}"),
        }
        let choices = p.events.iter().rev().find_map(|(_, e)| match e {
            GameEvent::ChoicesOffered { choices, .. } => Some(choices.clone()),
            _ => None,
        });
        let at = choices.unwrap()[0].available_at_ms;
        let now = p.client.time_sync(3).await.unwrap().server_now_ms();
        if now >= at + 100 {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let errors_before = p
        .events
        .iter()
        .filter(|(_, e)| matches!(e, GameEvent::Error { .. }))
        .count();

    // 40 commands back to back, nothing read in between: the first is a valid choice,
    // the others invalid ones (a rejection is an answer only: no event, no seq).
    const FLOOD: u64 = 40;
    let first_id = 1000;
    for i in 0..FLOOD {
        let edge = if i == 0 {
            "arrive_next".to_owned()
        } else {
            format!("nope{i}")
        };
        p.client
            .command(first_id + i, GameCommand::Choose { edge })
            .await
            .unwrap();
    }
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < FLOOD as usize {
        match p.pump().await.unwrap() {
            ServerMessage::Ack { request_id, .. } => {
                assert!(answers.insert(request_id, "ack".to_owned()).is_none());
            }
            ServerMessage::Rejected {
                request_id, code, ..
            } => {
                assert!(
                    answers.insert(request_id, code).is_none(),
                    "answered twice: {request_id}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        answers.keys().copied().collect::<Vec<_>>(),
        (first_id..first_id + FLOOD).collect::<Vec<_>>(),
        "every command answered exactly once"
    );
    let count = |c: &str| answers.values().filter(|v| *v == c).count();
    assert_eq!(answers[&first_id], "ack", "{answers:?}");
    let busy = count("busy");
    let refused = count("edge_not_offered");
    assert!(busy > 0, "the in-flight limit answered busy: {answers:?}");
    assert!(refused > 0, "{answers:?}");
    assert_eq!(1 + busy + refused, FLOOD as usize, "{answers:?}");

    // No error event for any rejected command (rejections stay out of the log), and
    // the valid choice's events once: the player's seq check saw no gap or duplicate.
    let errors: Vec<String> = p.events[..]
        .iter()
        .filter_map(|(_, e)| match e {
            GameEvent::Error { code, .. } => Some(code.clone()),
            _ => None,
        })
        .skip(errors_before)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        p.events
            .iter()
            .filter(|(_, e)| node("mara_talk")(e))
            .count(),
        1
    );
    // The same events are durable, in order.
    let (status, s) = ts
        .get(
            &format!("/api/v1/game/sessions/{}", p.session),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    let stored = s["events"].as_array().unwrap();
    assert_eq!(stored.len(), p.events.len());
    assert_eq!(s["next_seq"].as_u64(), p.last_seq.map(|l| l + 1));
    // And the session goes on.
    p.choose("accept").await;
    p.wait_for("plan", node("plan")).await;
    ts.stop().await;
}

/// `n` players (accounts `{tag}{i}@example.com`), each past the arrival, where
/// `accept` is offered.
async fn players_offered_accept(ts: &TestServer, tag: &str, n: usize) -> Vec<Player> {
    let mut players = Vec::new();
    for i in 0..n {
        let token = ts.user(&format!("{tag}{i}@example.com")).await;
        let mut p = player(ts, &token).await;
        p.wait_for("arrive", node("arrive")).await;
        p.choose("arrive_next").await;
        players.push(p);
    }
    players
}

/// The node `session` is at in the simulation (admin `session.list`), `None` while
/// it is not loaded.
async fn sim_node(ts: &TestServer, admin: &str, session: Uuid) -> Option<String> {
    let list = rpc(ts, admin, "session.list", json!({})).await;
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session"] == session.to_string())
        .and_then(|s| s["node"].as_str().map(str::to_owned))
}

/// Polls (bounded) until `session` is at `node` in the simulation.
async fn until_sim_node(ts: &TestServer, admin: &str, session: Uuid, node: &str) {
    let deadline = Instant::now() + T;
    while sim_node(ts, admin, session).await.as_deref() != Some(node) {
        assert!(Instant::now() < deadline, "{session} never reached {node}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether a statement waits for a lock on `game_batch_log` (the persister, stuck).
async fn batch_log_write_blocked(ts: &TestServer) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_locks \
         WHERE relation = 'game_batch_log'::regclass AND NOT granted)",
    )
    .fetch_one(&ts.db.pool)
    .await
    .unwrap()
}

/// While the batch log is locked, no command is answered; the ticks meanwhile hand
/// their batches over into one (the persister is stuck on the first), and once the lock
/// goes, every answer arrives after its events, dense and in order, and play goes on.
#[tokio::test(flavor = "multi_thread")]
async fn commands_wait_for_a_stalled_batch_log_and_lose_nothing() {
    let ts = TestServer::start().await;
    let admin = ts.admin("root@example.com").await;
    let players = players_offered_accept(&ts, "stall", 3).await;
    let mut lock = ts.db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE game_batch_log IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    // Three commands in three different ticks (each sent once the simulation has
    // applied the one before): the first batch blocks the persister, the second waits
    // in the hand-over slot, the third joins it there.
    let mut tasks = Vec::new();
    for p in players {
        let session = p.session;
        tasks.push(accept_later(p));
        until_sim_node(&ts, &admin, session, "plan").await;
    }
    let deadline = Instant::now() + T;
    while !batch_log_write_blocked(&ts).await {
        assert!(
            Instant::now() < deadline,
            "the persister never hit the lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A few more ticks, in which an answer sent too early would have arrived.
    let ticks = &ts.server.state.tick.stats;
    let until = ticks.number() + 5;
    while ticks.number() < until {
        assert!(Instant::now() < deadline, "the loop stopped ticking");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in &tasks {
        assert!(
            !t.is_finished(),
            "a command was answered before it was durable"
        );
    }
    lock.rollback().await.unwrap();
    for t in tasks {
        let mut p = tokio::time::timeout(T, t).await.unwrap().unwrap();
        assert_eq!(p.acked.last().map(|(n, _)| n.as_str()), Some("accept"));
        p.wait_for("plan", node("plan")).await;
        p.choose("go_sneak").await;
    }
    ts.stop().await;
}

/// Game state batches logged so far, and those of them that were a tick's urgent part
/// (`pixsim_game_commit_seconds_count`, `pixsim_game_urgent_batches_total`).
async fn batches_logged(ts: &TestServer) -> (u64, u64) {
    let text = ts.metrics().await;
    let value = |name: &str| {
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name}:\n{text}"));
        v.trim().parse::<f64>().unwrap() as u64
    };
    (
        value("pixsim_game_commit_seconds_count"),
        value("pixsim_game_urgent_batches_total"),
    )
}

/// Calls an admin RPC method; returns its result.
async fn rpc(
    ts: &TestServer,
    admin: &str,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let (status, v) = ts
        .post(
            "/api/v1/admin/rpc",
            Some(admin),
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

async fn tick(ts: &TestServer, admin: &str, method: &str) {
    rpc(ts, admin, method, serde_json::Value::Null).await;
}

/// Pauses the loop and returns once it has taken the pause (no tick in flight).
async fn pause_ticks(ts: &TestServer, admin: &str) {
    let control = &ts.server.state.tick.control;
    let idle = control.idle_rounds();
    tick(ts, admin, "tick.pause").await;
    let deadline = Instant::now() + T;
    while control.idle_rounds() <= idle {
        assert!(Instant::now() < deadline, "the loop never paused");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Polls (bounded) until the tick's inbound queue holds `n` messages: the commands
/// sent meanwhile have reached the server.
async fn until_queued(ts: &TestServer, n: usize) {
    let deadline = Instant::now() + T;
    while ts.server.state.game.inbound_queued() < n {
        assert!(
            Instant::now() < deadline,
            "commands never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sends `accept` from a task; the task ends once it is acknowledged.
fn accept_later(mut p: Player) -> tokio::task::JoinHandle<Player> {
    tokio::spawn(async move {
        p.choose("accept").await;
        p
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_longest_waiting_commands_are_committed_first_in_a_batch_of_their_own() {
    // 2 Hz: a period of 500 ms; a command that waited 400 ms for its tick is urgent.
    let ts = TestServer::start_with(|c| c.tick.rate_hz = 2.0).await;
    let admin = ts.admin("root@example.com").await;
    let mut players = players_offered_accept(&ts, "urgent", 3).await.into_iter();
    let (a, b, c) = (
        players.next().unwrap(),
        players.next().unwrap(),
        players.next().unwrap(),
    );
    pause_ticks(&ts, &admin).await;
    let queued = ts.server.state.game.inbound_queued();

    // A tick with one fresh command: one batch.
    let before = batches_logged(&ts).await;
    let a = accept_later(a);
    until_queued(&ts, queued + 1).await;
    tick(&ts, &admin, "tick.step").await;
    let mut a = tokio::time::timeout(T, a).await.unwrap().unwrap();
    assert_eq!(batches_logged(&ts).await, (before.0 + 1, before.1));

    // A tick with a command that waited past the urgent bound and a fresh one: the
    // first is made durable (and answered) in a batch of its own, the second in the
    // next. The server ages commands by its real clock, so b's must really wait.
    let urgent_wait = ts.server.state.game.config().urgent_wait.unwrap();
    let before = batches_logged(&ts).await;
    let b = accept_later(b);
    until_queued(&ts, queued + 1).await;
    tokio::time::sleep(urgent_wait + Duration::from_millis(100)).await;
    let c = accept_later(c);
    until_queued(&ts, queued + 2).await;
    tick(&ts, &admin, "tick.step").await;
    let mut b = tokio::time::timeout(T, b).await.unwrap().unwrap();
    let mut c = tokio::time::timeout(T, c).await.unwrap().unwrap();
    assert_eq!(batches_logged(&ts).await, (before.0 + 2, before.1 + 1));

    // Every answer followed its events, dense and in order (`Player` checks), and
    // play goes on.
    tick(&ts, &admin, "tick.resume").await;
    for p in [&mut a, &mut b, &mut c] {
        assert_eq!(p.acked.last().map(|(n, _)| n.as_str()), Some("accept"));
        p.wait_for("plan", node("plan")).await;
        p.choose("go_sneak").await;
    }
    ts.stop().await;
}
