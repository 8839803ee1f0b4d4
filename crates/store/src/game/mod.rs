//! Game sessions and their event log (`game_sessions`, `game_events`).
//!
//! The tick's write-behind goes through [`write_batch`]: one transaction per batch
//! (group commit), so every state change and event of a tick is durable together.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::StoreError;

/// One stored session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub world: String,
    pub scene: Option<String>,
    pub seed: i64,
    pub status: String,
    /// The last committed save (JSON text), `None` before the first committed tick.
    pub save: Option<String>,
    pub next_seq: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SessionRow {
    pub fn ended(&self) -> bool {
        self.status == "ended"
    }
}

/// One stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub at_ms: i64,
    pub event: Vec<u8>,
}

const COLUMNS: &str = "id, user_id, world, scene, seed, status, save::text AS save, next_seq, \
                       created_at, updated_at";

/// Inserts a new session (before the simulation starts it).
pub async fn create(
    pool: &PgPool,
    id: Uuid,
    user: Uuid,
    world: &str,
    scene: Option<&str>,
    seed: i64,
) -> Result<SessionRow, StoreError> {
    let row = sqlx::query_as::<_, SessionRow>(&format!(
        "INSERT INTO game_sessions (id, user_id, world, scene, seed) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(world)
    .bind(scene)
    .bind(seed)
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// A session by id.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<SessionRow>, StoreError> {
    Ok(sqlx::query_as::<_, SessionRow>(&format!(
        "SELECT {COLUMNS} FROM game_sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// A user's sessions, newest first.
pub async fn list_for_user(
    pool: &PgPool,
    user: Uuid,
    limit: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    Ok(sqlx::query_as::<_, SessionRow>(&format!(
        "SELECT {COLUMNS} FROM game_sessions WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2"
    ))
    .bind(user)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The retained events of a session with `seq >= from`, oldest first.
pub async fn events_from(
    pool: &PgPool,
    session: Uuid,
    from: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as::<_, EventRow>(
        "SELECT seq, at_ms, event FROM game_events WHERE session_id = $1 AND seq >= $2 \
         ORDER BY seq LIMIT $3",
    )
    .bind(session)
    .bind(from)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The state of one session after a tick.
#[derive(Debug, Clone)]
pub struct SessionWrite {
    pub id: Uuid,
    /// New save (JSON); `None` keeps the stored one.
    pub save: Option<String>,
    pub ended: bool,
    pub next_seq: i64,
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct EventWrite {
    pub session: Uuid,
    pub seq: i64,
    pub at_ms: i64,
    pub event: Vec<u8>,
}

/// Everything one or more ticks changed.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub sessions: Vec<SessionWrite>,
    pub events: Vec<EventWrite>,
    /// Events with `seq` below `keep_from` are deleted: `(session, keep_from)`.
    pub trim: Vec<(Uuid, i64)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.events.is_empty() && self.trim.is_empty()
    }
}

/// The latest world time (ms) of any stored event: the simulation clock resumes from it
/// after a restart, so world time never goes backwards.
pub async fn latest_world_time(pool: &PgPool) -> Result<i64, StoreError> {
    let t: Option<i64> = sqlx::query_scalar("SELECT max(at_ms) FROM game_events")
        .fetch_one(pool)
        .await?;
    Ok(t.unwrap_or(0))
}

/// Writes a batch in one transaction (group commit). Session writes must be unique
/// per id within a batch (the last write of a session wins when merging ticks).
pub async fn write_batch(pool: &PgPool, batch: &Batch) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    if !batch.sessions.is_empty() {
        let ids: Vec<Uuid> = batch.sessions.iter().map(|s| s.id).collect();
        let saves: Vec<Option<String>> = batch.sessions.iter().map(|s| s.save.clone()).collect();
        let ended: Vec<bool> = batch.sessions.iter().map(|s| s.ended).collect();
        let next: Vec<i64> = batch.sessions.iter().map(|s| s.next_seq).collect();
        sqlx::query(
            "UPDATE game_sessions AS s SET \
               save = COALESCE(v.save::jsonb, s.save), \
               status = CASE WHEN v.ended THEN 'ended' ELSE s.status END, \
               next_seq = GREATEST(s.next_seq, v.next_seq), \
               updated_at = now() \
             FROM UNNEST($1::uuid[], $2::text[], $3::bool[], $4::int8[]) AS v(id, save, ended, next_seq) \
             WHERE s.id = v.id",
        )
        .bind(&ids)
        .bind(&saves)
        .bind(&ended)
        .bind(&next)
        .execute(&mut *tx)
        .await?;
    }
    if !batch.events.is_empty() {
        let sessions: Vec<Uuid> = batch.events.iter().map(|e| e.session).collect();
        let seqs: Vec<i64> = batch.events.iter().map(|e| e.seq).collect();
        let ats: Vec<i64> = batch.events.iter().map(|e| e.at_ms).collect();
        let bodies: Vec<Vec<u8>> = batch.events.iter().map(|e| e.event.clone()).collect();
        sqlx::query(
            "INSERT INTO game_events (session_id, seq, at_ms, event) \
             SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::bytea[]) \
             ON CONFLICT (session_id, seq) DO NOTHING",
        )
        .bind(&sessions)
        .bind(&seqs)
        .bind(&ats)
        .bind(&bodies)
        .execute(&mut *tx)
        .await?;
    }
    if !batch.trim.is_empty() {
        let sessions: Vec<Uuid> = batch.trim.iter().map(|t| t.0).collect();
        let keep: Vec<i64> = batch.trim.iter().map(|t| t.1).collect();
        sqlx::query(
            "DELETE FROM game_events AS e USING UNNEST($1::uuid[], $2::int8[]) AS t(session_id, keep_from) \
             WHERE e.session_id = t.session_id AND e.seq < t.keep_from",
        )
        .bind(&sessions)
        .bind(&keep)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
