//! The game write-behind: batches, the batch log and its replay, event chunks, trimming
//! and deletes.
#![allow(clippy::unwrap_used)]

use domain::user::Role;
use store::game::{self, Batch, EventWrite, Save, SessionWrite, Writer};
use store::users::{self, NewUser};
use store::{StoreError, testing::fresh_database};
use uuid::Uuid;

async fn session(pool: &sqlx::PgPool) -> (Uuid, Uuid) {
    let user = users::create(
        pool,
        NewUser {
            email: &format!("{}@example.com", Uuid::new_v4().simple()),
            password_hash: "hash",
            display_name: None,
            role: Role::User,
        },
    )
    .await
    .unwrap();
    let id = Uuid::new_v4();
    game::create(pool, id, user.id.0, "default", Some("gallery"), 7)
        .await
        .unwrap();
    (user.id.0, id)
}

fn event(session: Uuid, seq: i64) -> EventWrite {
    EventWrite {
        session,
        seq,
        at_ms: 1000 + seq * 50,
        event: format!("event {seq}").into_bytes().into(),
    }
}

fn write(session: Uuid, seqs: std::ops::Range<i64>, save: &str) -> SessionWrite {
    write_save(session, seqs.end, Save::Json(save.to_owned()))
}

/// A session still running, with `save` and the next seq after this batch.
fn write_save(session: Uuid, next_seq: i64, save: Save) -> SessionWrite {
    SessionWrite {
        id: session,
        save: Some(save),
        ended: false,
        final_view: None,
        next_seq,
    }
}

fn seqs(rows: &[game::EventRow]) -> Vec<i64> {
    rows.iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn batches_store_saves_and_events_readable_from_any_seq() {
    let db = fresh_database().await.unwrap();
    let (_, a) = session(&db.pool).await;
    let (_, b) = session(&db.pool).await;
    let mut writer = Writer::new(&db.pool);
    // Two sessions' events interleaved, as a tick emits them.
    let batch = Batch {
        sessions: vec![write(a, 0..3, r#"{"n":1}"#), write(b, 0..2, r#"{"n":2}"#)],
        events: vec![
            event(a, 0),
            event(b, 0),
            event(a, 1),
            event(b, 1),
            event(a, 2),
        ],
        trim: vec![],
    };
    writer.write_batch(&batch).await.unwrap();
    let batch = Batch {
        sessions: vec![write(a, 3..5, r#"{"n":3}"#)],
        events: vec![event(a, 3), event(a, 4)],
        trim: vec![],
    };
    writer.write_batch(&batch).await.unwrap();

    let rows = game::events_from(&db.pool, a, 0, 100).await.unwrap();
    assert_eq!(seqs(&rows), vec![0, 1, 2, 3, 4]);
    assert_eq!(rows[3].event, &b"event 3"[..]);
    assert_eq!(rows[3].at_ms, 1150);
    // From inside a chunk, and a limit across chunks.
    assert_eq!(
        seqs(&game::events_from(&db.pool, a, 2, 2).await.unwrap()),
        vec![2, 3]
    );
    assert_eq!(
        seqs(&game::events_from(&db.pool, a, 5, 10).await.unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(
        seqs(&game::events_from(&db.pool, b, 1, 10).await.unwrap()),
        vec![1]
    );

    let row = game::get(&db.pool, a).await.unwrap().unwrap();
    assert_eq!(row.save.as_deref(), Some(r#"{"n":3}"#));
    assert_eq!(row.next_seq, 5);
    assert!(!row.ended());
    // One chunk per session and batch, not one row per event.
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM game_event_chunks")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(chunks, 3);
    assert_eq!(game::latest_world_time(&db.pool).await.unwrap(), 1200);
}

async fn logged(pool: &sqlx::PgPool) -> i64 {
    game::logged_batches(pool).await.unwrap()
}

#[tokio::test]
async fn a_logged_batch_is_applied_once_however_often_it_was_logged() {
    let db = fresh_database().await.unwrap();
    let (_, a) = session(&db.pool).await;
    let mut log = Writer::new(&db.pool);
    let mut applier = Writer::applier(&db.pool);
    let batch = Batch {
        sessions: vec![write(a, 0..2, r#"{"n":1}"#)],
        events: vec![event(a, 0), event(a, 1)],
        trim: vec![],
    };
    let id = log.log(&batch).await.unwrap();
    // Durable in the log, not yet in the tables.
    assert_eq!(logged(&db.pool).await, 1);
    assert_eq!(game::get(&db.pool, a).await.unwrap().unwrap().save, None);
    applier.apply(id, &batch).await.unwrap();
    assert_eq!(logged(&db.pool).await, 0);
    let row = game::get(&db.pool, a).await.unwrap().unwrap();
    assert_eq!(row.save.as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(row.next_seq, 2);

    // As if an insert had committed but its reply was lost: the batch logged twice,
    // then the next one. Replaying stores each event once and the latest save.
    log.log(&batch).await.unwrap();
    log.log(&batch).await.unwrap();
    let next = Batch {
        sessions: vec![write(a, 2..3, r#"{"n":2}"#)],
        events: vec![event(a, 2)],
        trim: vec![],
    };
    log.log(&next).await.unwrap();
    assert_eq!(game::replay(&db.pool).await.unwrap(), 3);
    assert_eq!(game::replay(&db.pool).await.unwrap(), 0);
    let rows = game::events_from(&db.pool, a, 0, 100).await.unwrap();
    assert_eq!(seqs(&rows), vec![0, 1, 2]);
    let row = game::get(&db.pool, a).await.unwrap().unwrap();
    assert_eq!(row.save.as_deref(), Some(r#"{"n":2}"#));
    assert_eq!(row.next_seq, 3);
    // Applying straight (no log row) is idempotent too.
    applier.write_batch(&next).await.unwrap();
    assert_eq!(
        seqs(&game::events_from(&db.pool, a, 0, 100).await.unwrap()),
        vec![0, 1, 2]
    );
}

/// A save as the tick writes it: binary, with its JSON for comparison.
fn binary_save(node: &str) -> (Save, String) {
    let json = format!(
        r#"{{"version":1,"content_version":"c1","rng":42,"stack":[{{"scene":"intro","node":"{node}"}}],"elapsed_in_node_ms":5,"wait":{{"type":"choices","offered":["go"]}},"vars":{{"mood":"calm"}},"visits":{{"scenes":{{"intro":1}}}},"progress":{{"xp":3,"level":1}}}}"#
    );
    let save: domain::narrative::SessionSave = serde_json::from_str(&json).unwrap();
    let mut bin = Vec::new();
    save.encode_binary(&mut bin).unwrap();
    (Save::Binary(bin), json)
}

#[tokio::test]
async fn binary_saves_are_logged_as_they_are_and_stored_as_json() {
    let db = fresh_database().await.unwrap();
    let (_, a) = session(&db.pool).await;
    let mut log = Writer::new(&db.pool);
    let mut applier = Writer::applier(&db.pool);
    let (save, json) = binary_save("start");
    let batch = Batch {
        sessions: vec![write_save(a, 1, save)],
        events: vec![event(a, 0)],
        trim: vec![],
    };
    let id = log.log(&batch).await.unwrap();
    applier.apply(id, &batch).await.unwrap();
    let row = game::get(&db.pool, a).await.unwrap().unwrap();
    assert_eq!(row.save.as_deref(), Some(json.as_str()));
    // Replayed from the log at startup: decoded from the row, stored as JSON.
    let (save, json) = binary_save("next");
    let next = Batch {
        sessions: vec![write_save(a, 2, save)],
        events: vec![event(a, 1)],
        trim: vec![],
    };
    log.log(&next).await.unwrap();
    assert_eq!(game::replay(&db.pool).await.unwrap(), 1);
    let row = game::get(&db.pool, a).await.unwrap().unwrap();
    assert_eq!(row.save.as_deref(), Some(json.as_str()));
    // A binary save that does not decode is refused whole, and the tables keep the
    // last good state.
    let bad = Batch {
        sessions: vec![write_save(a, 3, Save::Binary(vec![1, 2, 3]))],
        events: vec![event(a, 2)],
        trim: vec![],
    };
    let err = applier.write_batch(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("binary save"), "{err}");
    let row = game::get(&db.pool, a).await.unwrap().unwrap();
    assert_eq!(
        (row.save.as_deref(), row.next_seq),
        (Some(json.as_str()), 2)
    );
}

#[tokio::test]
async fn a_batch_for_a_deleted_session_leaves_nothing_and_a_corrupt_log_row_is_named() {
    let db = fresh_database().await.unwrap();
    let (user, a) = session(&db.pool).await;
    let mut log = Writer::new(&db.pool);
    let batch = Batch {
        sessions: vec![write(a, 0..1, "{}")],
        events: vec![event(a, 0)],
        trim: vec![],
    };
    log.log(&batch).await.unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(game::replay(&db.pool).await.unwrap(), 1);
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM game_event_chunks")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(chunks, 0);

    let id: i64 = sqlx::query_scalar(
        "INSERT INTO game_batch_log (body) VALUES ('\\x0100000005') RETURNING id",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let err = game::replay(&db.pool).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains(&format!("row {id}")), "{err}");
    // Nothing was lost: the row is still there for a fixed build to replay.
    assert_eq!(logged(&db.pool).await, 1);
}

#[tokio::test]
async fn trimming_drops_whole_chunks_below_the_window() {
    let db = fresh_database().await.unwrap();
    let (_, a) = session(&db.pool).await;
    let (_, b) = session(&db.pool).await;
    let mut writer = Writer::new(&db.pool);
    for range in [0..3, 3..6, 6..9] {
        let batch = Batch {
            sessions: vec![write(a, range.clone(), "{}"), write(b, range.clone(), "{}")],
            events: range
                .clone()
                .flat_map(|s| [event(a, s), event(b, s)])
                .collect(),
            trim: vec![],
        };
        writer.write_batch(&batch).await.unwrap();
    }
    // Keep from 4: chunk 0..3 goes, chunk 3..6 stays whole (it holds 4 and 5). Two ticks
    // merged into one batch may trim a session twice: the later (higher) bound wins.
    // The other session is untouched.
    let batch = Batch {
        sessions: vec![write(a, 9..10, "{}")],
        events: vec![event(a, 9)],
        trim: vec![(a, 2), (a, 4)],
    };
    writer.write_batch(&batch).await.unwrap();
    let all = game::events_from(&db.pool, a, 0, 100).await.unwrap();
    assert_eq!(seqs(&all), vec![3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        seqs(&game::events_from(&db.pool, b, 0, 100).await.unwrap()),
        (0..9).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&game::events_from(&db.pool, a, 4, 100).await.unwrap()),
        vec![4, 5, 6, 7, 8, 9]
    );
}

#[tokio::test]
async fn ending_and_deleting_a_user_removes_sessions_and_their_events() {
    let db = fresh_database().await.unwrap();
    let (user, a) = session(&db.pool).await;
    let (_, other) = session(&db.pool).await;
    let mut writer = Writer::new(&db.pool);
    let batch = Batch {
        sessions: vec![
            SessionWrite {
                id: a,
                save: None,
                ended: true,
                final_view: None,
                next_seq: 1,
            },
            write(other, 0..1, "{}"),
        ],
        events: vec![event(a, 0), event(other, 0)],
        trim: vec![],
    };
    writer.write_batch(&batch).await.unwrap();
    assert!(game::get(&db.pool, a).await.unwrap().unwrap().ended());

    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user)
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(game::get(&db.pool, a).await.unwrap().is_none());
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT session_id FROM game_event_chunks")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![other]);
}

#[tokio::test]
async fn chunks_in_the_migration_format_decode_and_bad_ones_are_reported() {
    let db = fresh_database().await.unwrap();
    let (_, a) = session(&db.pool).await;
    // The encoding the migration used for events stored one per row before.
    sqlx::query(
        "INSERT INTO game_event_chunks (session_id, first_seq, last_seq, last_at_ms, events) \
         VALUES ($1, 0, 0, 777, int8send(777::int8) || int4send(3) || '\\x616263'::bytea)",
    )
    .bind(a)
    .execute(&db.pool)
    .await
    .unwrap();
    let rows = game::events_from(&db.pool, a, 0, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].seq, rows[0].at_ms, &rows[0].event[..]),
        (0, 777, &b"abc"[..])
    );

    // A chunk claiming more events than it holds.
    sqlx::query(
        "INSERT INTO game_event_chunks (session_id, first_seq, last_seq, last_at_ms, events) \
         VALUES ($1, 1, 2, 800, int8send(800::int8) || int4send(1) || '\\x61'::bytea)",
    )
    .bind(a)
    .execute(&db.pool)
    .await
    .unwrap();
    let err = game::events_from(&db.pool, a, 0, 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

/// The chunk migration converts events stored one per row: applied by hand on a
/// database migrated up to just before it.
#[tokio::test]
async fn the_chunk_migration_keeps_events_stored_the_old_way() {
    use sqlx::{Connection, Executor};
    const CHUNKS: i64 = 20261127000001;
    let server = store::testing::server_url().await.unwrap();
    let name = format!("pixsim_test_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap();
    let url = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => unreachable!("a server URL names a database"),
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for m in store::MIGRATOR.iter().filter(|m| m.version < CHUNKS) {
        conn.execute(&*m.sql).await.unwrap();
    }
    let user = Uuid::new_v4();
    let session = Uuid::new_v4();
    conn.execute(
        format!(
            "INSERT INTO users (id, email, password_hash, role) VALUES ('{user}', 'old@example.com', 'x', 'user');
             INSERT INTO game_sessions (id, user_id, seed, save, next_seq) VALUES ('{session}', '{user}', 1, '{{\"a\": 1}}', 2);
             INSERT INTO game_events (session_id, seq, at_ms, event) VALUES
               ('{session}', 0, 500, '\\x0102'), ('{session}', 1, 550, '\\x');"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let m = store::MIGRATOR
        .iter()
        .find(|m| m.version == CHUNKS)
        .unwrap();
    conn.execute(&*m.sql).await.unwrap();
    // And the later ones, so the queries below find the columns they read.
    for m in store::MIGRATOR.iter().filter(|m| m.version > CHUNKS) {
        conn.execute(&*m.sql).await.unwrap();
    }
    conn.close().await.unwrap();

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows = game::events_from(&pool, session, 0, 10).await.unwrap();
    let got: Vec<(i64, i64, Vec<u8>)> = rows
        .into_iter()
        .map(|r| (r.seq, r.at_ms, r.event.to_vec()))
        .collect();
    assert_eq!(got, vec![(0, 500, vec![1, 2]), (1, 550, vec![])]);
    let row = game::get(&pool, session).await.unwrap().unwrap();
    assert_eq!(row.save.as_deref(), Some(r#"{"a": 1}"#));
    assert_eq!(game::latest_world_time(&pool).await.unwrap(), 550);
    pool.close().await;
    admin
        .execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
}
