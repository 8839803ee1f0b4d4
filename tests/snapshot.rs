//! Join and rejoin snapshots over QUIC: a session longer than the resend window, joined
//! fresh and from an old `last_seq`, renders from its snapshot with nothing lost or
//! duplicated afterwards; a connection dropped mid-scene rejoins with the snapshot and
//! the resent events; the newer connection takes a session over; an ended session's
//! snapshot is the fold of all its events, also after a restart. The reference is a
//! client that starts from the create snapshot (the initial progression) and folds
//! every event in.

use std::collections::BTreeMap;

use game_client::Client;
use protocol::CloseCode;
use protocol::v2::{
    Change, Choice, ErrorCode, GameCommand, GameEvent, MiniGamePrompt, Playback, Position,
    Presentation, ProgressionView, ServerMessage, Snapshot,
};
use tests::TestServer;

use crate::game::{Answer, Player, T, connect, node, to_vault_door};

/// What a client that replayed every event from 0 would show: the reference a snapshot
/// must agree with.
#[derive(Debug, Default)]
struct Replayed {
    position: Option<Position>,
    presentation: Option<Presentation>,
    choices: Vec<Choice>,
    minigame: Option<MiniGamePrompt>,
    stats: BTreeMap<(String, String, String), i64>,
    items: BTreeMap<String, u32>,
    quests: BTreeMap<String, String>,
    objectives: BTreeMap<(String, String), u32>,
    vars: BTreeMap<String, String>,
    xp: i64,
    level: Option<u32>,
    unlocked: Vec<String>,
    ended: Option<String>,
}

/// Replays `events` onto the create snapshot's progression `initial`.
fn replay(initial: &ProgressionView, events: &[(u64, GameEvent)]) -> Replayed {
    let mut r = Replayed {
        vars: initial
            .vars
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        stats: initial
            .stats
            .iter()
            .map(|st| {
                (
                    (st.stat.clone(), st.entity.clone(), st.axis.clone()),
                    st.value,
                )
            })
            .collect(),
        ..Replayed::default()
    };
    for (i, (seq, e)) in events.iter().enumerate() {
        assert_eq!(*seq, i as u64, "the reference replays from seq 0");
        match e.clone() {
            GameEvent::NodeEntered {
                scene,
                node,
                kind,
                media,
                media_pending,
                lines,
                prompt,
                presentation,
            } => {
                r.presentation = Some(presentation);
                r.position = Some(Position {
                    scene,
                    node,
                    kind,
                    media,
                    media_pending,
                    lines,
                    prompt,
                });
                r.choices.clear();
                r.minigame = None;
            }
            GameEvent::MediaReady { node, media, .. } => {
                if let Some(p) = r.position.as_mut().filter(|p| p.node == node) {
                    p.media = Some(media);
                    p.media_pending = false;
                }
            }
            GameEvent::ChoicesOffered { choices, .. } => r.choices = choices,
            GameEvent::PlaybackStep { step, .. } => {
                if let Some(Playback::Steps { current, .. }) =
                    r.presentation.as_mut().map(|p| &mut p.playback)
                {
                    *current = step;
                }
            }
            GameEvent::MiniGamePrompt {
                game,
                round,
                rounds,
                nonce,
                opens_at_ms,
                closes_at_ms,
            } => {
                r.minigame = Some(MiniGamePrompt {
                    game,
                    round,
                    rounds,
                    nonce,
                    opens_at_ms,
                    closes_at_ms,
                })
            }
            GameEvent::MiniGameRound { .. } | GameEvent::MiniGameResult { .. } => r.minigame = None,
            GameEvent::StateDelta { changes } => {
                for c in changes {
                    apply(&mut r, c);
                }
            }
            GameEvent::SessionEnded { reason } => {
                r.ended = Some(reason);
                r.position = None;
                r.presentation = None;
                r.choices.clear();
                r.minigame = None;
            }
            // The figures of pending media: nothing a snapshot holds.
            GameEvent::MediaProgress { .. }
            | GameEvent::SessionStarted { .. }
            | GameEvent::Resumed { .. }
            | GameEvent::QuestUpdated { .. }
            | GameEvent::ObjectiveUpdated { .. }
            | GameEvent::LevelUp { .. }
            | GameEvent::SceneUnlocked { .. }
            | GameEvent::Error { .. } => {}
        }
    }
    r
}

fn apply(r: &mut Replayed, c: Change) {
    match c {
        Change::Var { name, value } => {
            r.vars.insert(name, value);
        }
        Change::Stat {
            stat,
            entity,
            axis,
            value,
        } => {
            r.stats.insert((stat, entity, axis), value);
        }
        Change::Item { item, count } => {
            r.items.insert(item, count);
        }
        Change::Quest { quest, status } => {
            r.quests.insert(quest, status);
        }
        Change::Objective {
            quest,
            objective,
            progress,
            ..
        } => {
            r.objectives.insert((quest, objective), progress);
        }
        Change::Xp { xp } => r.xp = xp,
        Change::Level { level } => r.level = Some(level),
        Change::Unlocked { scene } => r.unlocked.push(scene),
    }
}

/// The snapshot shows what the events replayed onto the create snapshot's
/// progression `initial` show.
fn assert_agrees(s: &Snapshot, initial: &ProgressionView, events: &[(u64, GameEvent)]) {
    let r = replay(initial, events);
    assert_eq!(s.position, r.position, "position");
    assert_eq!(s.presentation, r.presentation, "presentation");
    assert_eq!(s.choices, r.choices, "choices");
    assert_eq!(s.minigame, r.minigame, "open round");
    assert_eq!(s.ended, r.ended, "end");
    let p = &s.progression;
    assert_eq!(p.xp, r.xp);
    assert_eq!(p.level, r.level.unwrap_or(1));
    let mut unlocked = r.unlocked.clone();
    unlocked.sort();
    assert_eq!(p.unlocked, unlocked);
    let items: Vec<(String, u32)> = r
        .items
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    let got: Vec<(String, u32)> = p.items.iter().map(|i| (i.item.clone(), i.count)).collect();
    assert_eq!(got, items, "items");
    // Stats: every axis, as the events last reported it, else as created.
    let stats: BTreeMap<(String, String, String), i64> = p
        .stats
        .iter()
        .map(|st| {
            (
                (st.stat.clone(), st.entity.clone(), st.axis.clone()),
                st.value,
            )
        })
        .collect();
    assert_eq!(stats, r.stats, "stats");
    assert_eq!(stats.len(), p.stats.len(), "each axis once");
    // Variables: every one, as the events last reported it, else as created.
    let vars: Vec<(String, String)> = p
        .vars
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    let replayed: Vec<(String, String)> = r.vars.clone().into_iter().collect();
    assert_eq!(vars, replayed, "vars");
    let quests: Vec<(String, String)> = r
        .quests
        .iter()
        .filter(|(_, s)| *s != "inactive" && *s != "hidden")
        .map(|(q, s)| (q.clone(), s.clone()))
        .collect();
    let got: Vec<(String, String)> = p
        .quests
        .iter()
        .map(|q| (q.quest.clone(), q.status.clone()))
        .collect();
    assert_eq!(got, quests, "quests");
    for q in &p.quests {
        for o in &q.objectives {
            let reported = r
                .objectives
                .get(&(q.quest.clone(), o.objective.clone()))
                .copied()
                .unwrap_or(0);
            assert_eq!(o.progress, reported, "{}.{}", q.quest, o.objective);
            assert_eq!(o.completed, o.progress >= o.target);
        }
    }
}

/// An ended session's snapshot is the fold of all its events.
fn assert_ended_is_fold(s: &Snapshot, initial: &ProgressionView, events: &[(u64, GameEvent)]) {
    assert_agrees(s, initial, events);
}

/// The create snapshot: nothing shown yet, and the initial progression: every declared
/// variable at its initial value, every stat axis at its default, nothing else.
fn assert_is_initial(ts: &TestServer, s: &Snapshot) {
    let content = ts.server.state.game.content();
    let vars: Vec<(String, String)> = content
        .world
        .variables
        .iter()
        .map(|(name, def)| (name.clone(), def.initial().to_string()))
        .collect();
    assert!(!vars.is_empty(), "the demo declares variables");
    let mut stats = Vec::new();
    for (stat, def) in &content.world.stats {
        let mut entities = if def.entities.is_empty() {
            content.world.entities.clone()
        } else {
            def.entities.clone()
        };
        entities.sort();
        for entity in entities {
            for (axis, ax) in &def.axes {
                stats.push(protocol::v2::StatValue {
                    stat: stat.clone(),
                    entity: entity.clone(),
                    axis: axis.clone(),
                    value: ax.default,
                });
            }
        }
    }
    assert!(!stats.is_empty(), "the demo declares stats");
    let expected = Snapshot {
        progression: ProgressionView {
            stats,
            vars: vars
                .into_iter()
                .map(|(name, value)| protocol::v2::VarValue { name, value })
                .collect(),
            level: 1,
            ..ProgressionView::default()
        },
        ..Snapshot::default()
    };
    assert_eq!(s, &expected, "nothing happened yet");
}

async fn authenticated(ts: &TestServer, token: &str) -> Client {
    let mut c = connect(ts.server.quic_addr, &ts.server.quic_fingerprint).await;
    c.authenticate(token).await.unwrap();
    c
}

/// A player continuing on `client` from a join: it has seen everything below
/// `next_seq` (through the snapshot), so the next event it records must be `next_seq`.
fn continuing(client: Client, joined: &game_client::Joined) -> Player {
    let mut p = Player::new(client, joined);
    p.last_seq = joined.next_seq.checked_sub(1);
    p
}

/// The older connection is told the session was taken over (an `Error`, which the close
/// flow delivers before the close), and closed with that code.
async fn assert_taken_over(c: &mut Client) {
    let mut told = false;
    loop {
        match c.recv_within(T).await {
            Ok(ServerMessage::Error { code, .. }) => {
                assert_eq!(code, ErrorCode::SessionTakenOver);
                told = true;
            }
            Ok(ServerMessage::Event { .. }) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => {
                let e = match e.close_code() {
                    Some(_) => e,
                    None => c.closed().await,
                };
                assert_eq!(e.close_code(), Some(CloseCode::SessionTakenOver), "{e:?}");
                assert!(told, "the Error saying why comes before the close");
                return;
            }
        }
    }
}

/// A small resend window, still above the events of one command (a forwarder reads a
/// batch's events after they are published, and the window is trimmed then).
const WINDOW: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn a_session_longer_than_the_resend_window_rejoins_from_its_snapshot() {
    let ts = TestServer::start_with(|c| c.game.resend_window = WINDOW).await;
    let token = ts.user("snapshot@example.com").await;
    let mut c = authenticated(&ts, &token).await;
    let created = c.create_session(None).await.unwrap();
    assert_eq!(created.next_seq, 0);
    assert_is_initial(&ts, &created.snapshot);
    let initial = created.snapshot.progression.clone();
    let mut p = Player::new(c, &created);
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    // Studying leads back to the plan (its events came before the answer): the
    // session waits for a choice, everything so far is in p.events.
    p.choose("go_study").await;
    let history = p.events.clone();
    assert!(
        history.len() > 4 * 3,
        "longer than the window: {}",
        history.len()
    );

    // A fresh join (no last_seq) renders from the snapshot; nothing is resent, and it
    // is not closed as a slow consumer for the events it never saw.
    let mut c2 = authenticated(&ts, &token).await;
    let joined = c2.join_session(p.session, None).await.unwrap();
    assert_eq!(joined.next_seq, history.len() as u64);
    assert!(!joined.ended);
    assert_agrees(&joined.snapshot, &initial, &history);
    let position = joined.snapshot.position.as_ref().unwrap();
    assert_eq!(position.node, "plan");
    assert!(!joined.snapshot.progression.stats.is_empty(), "{joined:?}");
    assert!(!joined.snapshot.progression.vars.is_empty(), "{joined:?}");
    // The older connection lost the session to this one.
    assert_taken_over(&mut p.client).await;

    // The session goes on from next_seq: the first event is exactly next_seq.
    let mut p2 = continuing(c2, &joined);
    p2.choose("go_sneak").await;
    for _ in 0..3 {
        p2.react().await;
    }
    p2.wait_for("vault door", node("door")).await;
    let mut all = history.clone();
    all.extend(p2.events.iter().cloned());

    // Rejoined from a last_seq older than the window: the snapshot again, no resend.
    let mut c3 = authenticated(&ts, &token).await;
    let joined = c3.join_session(p.session, Some(0)).await.unwrap();
    assert_eq!(joined.next_seq, all.len() as u64);
    assert_agrees(&joined.snapshot, &initial, &all);
    let quests = &joined.snapshot.progression.quests;
    assert!(
        quests.iter().any(|q| q
            .objectives
            .iter()
            .any(|o| o.objective == "get_keycard" && o.completed)),
        "{quests:?}"
    );
    assert_taken_over(&mut p2.client).await;

    // Rejoined from a last_seq inside the window: exactly the events after it.
    let mut c4 = authenticated(&ts, &token).await;
    let last = joined.next_seq - 3;
    let joined = c4.join_session(p.session, Some(last)).await.unwrap();
    assert_eq!(joined.next_seq, all.len() as u64);
    assert_agrees(&joined.snapshot, &initial, &all);
    let mut resent = Vec::new();
    while resent.len() < 2 {
        match c4.recv_within(T).await.unwrap() {
            ServerMessage::Event { seq, event, .. } => {
                resent.push((seq, event.known().cloned().unwrap()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(resent, all[all.len() - 2..].to_vec());
    assert!(
        !joined.snapshot.choices.is_empty(),
        "the door offers choices"
    );
    let mut p4 = continuing(c4, &joined);
    let left = p4.command(protocol::v2::GameCommand::Leave).await;
    assert!(matches!(left, Answer::Ack(_)), "{left:?}");
    assert!(
        p4.events
            .first()
            .is_some_and(|(seq, _)| *seq == joined.next_seq)
    );
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_mid_round_rejoins_with_the_snapshot_and_the_resent_events() {
    let ts = TestServer::start().await;
    let token = ts.user("drop@example.com").await;
    let mut c = authenticated(&ts, &token).await;
    let created = c.create_session(None).await.unwrap();
    let initial = created.snapshot.progression.clone();
    let mut p = Player::new(c, &created);
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    p.choose("accept").await;
    p.choose("go_sneak").await;
    p.wait_for("a reflex prompt", |e| {
        matches!(e, GameEvent::MiniGamePrompt { round: 1, .. })
    })
    .await;
    let seen = p.events.clone();
    let last = p.last_seq.unwrap();

    // The connection drops mid-round; a new one rejoins having seen all but the last
    // two events.
    p.client.connection().close(0u32.into(), b"gone");
    let mut c = authenticated(&ts, &token).await;
    let joined = c.join_session(p.session, Some(last - 2)).await.unwrap();
    assert_eq!(joined.next_seq, last + 1, "nothing happened meanwhile");
    assert_agrees(&joined.snapshot, &initial, &seen);
    let round = joined.snapshot.minigame.clone().expect("the open round");
    assert_eq!(round.round, 1);
    assert_eq!(
        joined.snapshot.position.as_ref().map(|p| p.node.as_str()),
        Some("sneak")
    );
    let mut resent = Vec::new();
    while resent.len() < 2 {
        if let ServerMessage::Event { seq, event, .. } = c.recv_within(T).await.unwrap() {
            resent.push((seq, event.known().cloned().unwrap()));
        }
    }
    assert_eq!(resent, seen[seen.len() - 2..].to_vec());

    // The round is answered from the snapshot alone, and the story goes on without a
    // lost or duplicated event.
    let mut p = continuing(c, &joined);
    let answer = p
        .command(protocol::v2::GameCommand::MiniGameInput {
            round: round.round,
            nonce: round.nonce,
            client_time_ms: round.opens_at_ms + 20,
        })
        .await;
    assert!(matches!(answer, Answer::Ack(_)), "{answer:?}");
    for _ in 0..2 {
        p.react().await;
    }
    p.wait_for("vault door", node("door")).await;
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_session_joins_with_its_end_and_progression() {
    let ts = TestServer::start().await;
    let token = ts.user("ended@example.com").await;
    let mut c = authenticated(&ts, &token).await;
    let created = c.create_session(None).await.unwrap();
    let mut p = Player::new(c, &created);
    p.wait_for("arrive", node("arrive")).await;
    p.choose("arrive_next").await;
    assert!(matches!(
        p.command(protocol::v2::GameCommand::Leave).await,
        Answer::Ack(_)
    ));
    assert_eq!(p.wait_end().await, "left");
    let mut c = authenticated(&ts, &token).await;
    let joined = c.join_session(p.session, None).await.unwrap();
    assert!(joined.ended);
    assert_eq!(joined.next_seq, p.last_seq.unwrap() + 1);
    assert_eq!(joined.snapshot.ended.as_deref(), Some("left"));
    assert_eq!(joined.snapshot.position, None);
    assert_ended_is_fold(&joined.snapshot, &created.snapshot.progression, &p.events);
    // A command on it is refused, and no event precedes the refusal.
    c.command(1, protocol::v2::GameCommand::Leave)
        .await
        .unwrap();
    match c.recv_within(T).await.unwrap() {
        ServerMessage::Rejected { code, .. } => assert_eq!(code, "session_ended"),
        other => panic!("unexpected {other:?}"),
    }
    ts.stop().await;
}

/// POSTs a choice, retrying while it is not revealed yet.
async fn rest_choose(ts: &TestServer, token: &str, id: &str, edge: &str) -> serde_json::Value {
    let choose = format!("/api/v1/game/sessions/{id}/choose");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = ts
            .post(&choose, Some(token), serde_json::json!({ "edge": edge }))
            .await;
        if status == 200 {
            return body;
        }
        assert_eq!(body["error"]["details"]["reason"], "not_revealed", "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "{edge} never revealed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_sends_the_snapshot_on_a_gap_and_goes_on() {
    let ts = TestServer::start_with(|c| c.game.resend_window = WINDOW).await;
    let token = ts.user("sse-gap@example.com").await;
    let (status, s) = ts
        .post("/api/v1/game/sessions", Some(&token), serde_json::json!({}))
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    rest_choose(&ts, &token, &id, "arrive_next").await;
    rest_choose(&ts, &token, &id, "accept").await;
    let studied = rest_choose(&ts, &token, &id, "go_study").await;
    let next_seq = studied["through_seq"].as_u64().unwrap() + 1;
    assert!(next_seq > WINDOW as u64, "{next_seq}");

    // From 0, older than the window: the snapshot, then the events from its next_seq.
    let mut res = ts
        .http
        .get(ts.url(&format!("/api/v1/game/sessions/{id}/events?from_seq=0")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(T, res.chunk()).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.starts_with("event: snapshot\n"), "{text}");
    let data: serde_json::Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["next_seq"].as_u64(), Some(next_seq), "{data}");
    assert_eq!(data["snapshot"]["position"]["node"], "plan", "{data}");
    // The stream goes on: the next choice's events follow, from next_seq.
    rest_choose(&ts, &token, &id, "go_sneak").await;
    while !text.contains("id:") {
        let chunk = tokio::time::timeout(T, res.chunk()).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let first: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("id:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    assert_eq!(first, next_seq, "{text}");
    ts.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_caller_lists_its_sessions_newest_first() {
    let ts = TestServer::start().await;
    let token = ts.user("lister@example.com").await;
    let other = ts.user("other-lister@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, s) = ts
            .post("/api/v1/game/sessions", Some(&token), serde_json::json!({}))
            .await;
        assert_eq!(status, 201, "{s}");
        ids.push(s["id"].as_str().unwrap().to_owned());
    }
    let (status, _) = ts
        .post("/api/v1/game/sessions", Some(&other), serde_json::json!({}))
        .await;
    assert_eq!(status, 201);
    // The oldest one moves on, then ends.
    rest_choose(&ts, &token, &ids[0], "arrive_next").await;
    let (status, _) = ts
        .post(
            &format!("/api/v1/game/sessions/{}/choose", ids[0]),
            Some(&token),
            serde_json::json!({"leave": true}),
        )
        .await;
    assert_eq!(status, 200);

    // Newest first, only the caller's; each says where it stands once its state is
    // stored (written behind the commit: waited for, bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let list = loop {
        let (status, list) = ts.get("/api/v1/game/sessions", Some(&token)).await;
        assert_eq!(status, 200, "{list}");
        let items = list["items"].as_array().unwrap();
        if items
            .iter()
            .all(|i| i["ended"] == true || i["node"].is_string())
            && items.iter().any(|i| i["ended"] == true)
        {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let items = list["items"].as_array().unwrap();
    let listed: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first, "{list}");
    for i in items {
        assert_eq!(i["scene"], "gallery", "{i}");
        assert!(
            i["created_at"].is_string() && i["updated_at"].is_string(),
            "{i}"
        );
    }
    assert_eq!(items[0]["node"], "arrive");
    assert_eq!(items[0]["ended"], false);
    assert_eq!(items[2]["ended"], true);
    assert_eq!(items[2]["node"], "mara_talk", "its last stored position");

    // Pages.
    let (_, page) = ts.get("/api/v1/game/sessions?limit=2", Some(&token)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["id"], ids[2].as_str());
    assert_eq!(page["limit"], 2);
    let (_, page) = ts
        .get("/api/v1/game/sessions?limit=2&offset=2", Some(&token))
        .await;
    let rest = page["items"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["id"], ids[0].as_str());
    let (status, _) = ts.get("/api/v1/game/sessions?limit=0", Some(&token)).await;
    assert_eq!(status, 200, "a limit below 1 is taken as 1");
    let (status, _) = ts.get("/api/v1/game/sessions", None).await;
    assert_eq!(status, 401);
    ts.stop().await;
}

/// Answers each round of the reflex game before its window opens (a miss) until the
/// game's result, which is a failure.
async fn fumble_the_reflex_game(p: &mut Player) {
    let mut seen = p.events.len();
    loop {
        while let Some((_, e)) = p.events.get(seen).cloned() {
            seen += 1;
            match e {
                GameEvent::MiniGamePrompt {
                    round,
                    nonce,
                    opens_at_ms,
                    ..
                } => {
                    let input = GameCommand::MiniGameInput {
                        round,
                        nonce,
                        client_time_ms: opens_at_ms - 1,
                    };
                    let answer = p.command(input).await;
                    assert!(matches!(answer, Answer::Ack(_)), "{answer:?}");
                }
                GameEvent::MiniGameResult { success, .. } => {
                    assert!(!success, "every round missed");
                    return;
                }
                _ => {}
            }
        }
        p.pump().await.unwrap();
    }
}

/// Stops the server and starts a new one on the same database and state directory.
async fn restart(ts: TestServer) -> TestServer {
    let TestServer {
        server,
        http,
        db,
        state_dir,
        ..
    } = ts;
    server.shutdown().await.unwrap();
    let server = pixsim_server::Server::start(tests::test_config(&db.url, state_dir.clone()))
        .await
        .unwrap();
    TestServer {
        base: format!("http://{}", server.http_addr),
        server,
        http,
        db,
        state_dir,
    }
}

/// The value of variable `name` in a snapshot.
fn var<'a>(s: &'a Snapshot, name: &str) -> Option<&'a str> {
    let vars = &s.progression.vars;
    vars.iter()
        .find(|v| v.name == name)
        .map(|v| v.value.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_session_snapshot_is_the_fold_of_its_events_also_after_a_restart() {
    let ts = TestServer::start().await;
    let token = ts.user("final@example.com").await;
    let busted = async {
        // Caught twice: the second time the alarm reaches 2 and the session ends, busted,
        // in the tick that raised the alarm and the guard's tension.
        let mut c = authenticated(&ts, &token).await;
        let created = c.create_session(None).await.unwrap();
        let mut p = Player::new(c, &created);
        p.wait_for("arrive", node("arrive")).await;
        p.choose("arrive_next").await;
        p.choose("accept").await;
        for _ in 0..2 {
            p.choose("go_sneak").await;
            fumble_the_reflex_game(&mut p).await;
        }
        assert_eq!(p.wait_end().await, "failure");
        assert!(p.saw(node("busted")));
        (p, created.snapshot.progression)
    };
    let backed_off = async {
        // At the vault door, backing off returns no loot: `loot` is set to 0, its
        // initial value, in the session's last tick.
        let mut c = authenticated(&ts, &token).await;
        let created = c.create_session(None).await.unwrap();
        let mut p = Player::new(c, &created);
        to_vault_door(&mut p).await;
        p.choose("back_off").await;
        assert_eq!(p.wait_end().await, "failure");
        assert!(p.saw(|e| matches!(e, GameEvent::StateDelta { changes }
            if changes.contains(&Change::Var { name: "loot".into(), value: "0".into() }))));
        (p, created.snapshot.progression)
    };
    let (busted, backed_off) = futures::join!(busted, backed_off);
    let check = |s: &Snapshot, (p, initial): &(Player, ProgressionView)| {
        assert_ended_is_fold(s, initial, &p.events);
        assert_eq!(s.ended.as_deref(), Some("failure"));
    };

    let mut c = authenticated(&ts, &token).await;
    let joined = c.join_session(busted.0.session, None).await.unwrap();
    assert!(joined.ended);
    assert_eq!(joined.next_seq, busted.0.last_seq.unwrap() + 1);
    check(&joined.snapshot, &busted);
    assert_eq!(var(&joined.snapshot, "alarm"), Some("2"));
    assert!(
        joined
            .snapshot
            .progression
            .stats
            .iter()
            .any(|s| s.entity == "guard" && s.axis == "tension" && s.value == 40),
        "{joined:?}"
    );
    let joined = c.join_session(backed_off.0.session, None).await.unwrap();
    check(&joined.snapshot, &backed_off);
    assert_eq!(var(&joined.snapshot, "loot"), Some("0"), "set back: listed");

    // After a restart the sessions load ended from the database: the same snapshots.
    let ts = restart(ts).await;
    let mut c = authenticated(&ts, &token).await;
    for played in [&busted, &backed_off] {
        let joined = c.join_session(played.0.session, None).await.unwrap();
        assert!(joined.ended);
        assert_eq!(joined.next_seq, played.0.last_seq.unwrap() + 1);
        check(&joined.snapshot, played);
    }
    ts.stop().await;
}
