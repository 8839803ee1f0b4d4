//! Game sessions and their event log (`game_sessions`, `game_event_chunks`).
//!
//! The tick's write-behind: [`Writer::log`] makes a batch durable as one row of
//! `game_batch_log` (group commit: every state change and event of the sessions in it, for
//! one tick or more, together), and
//! [`Writer::apply`] then writes it into the session and event tables, deleting the row,
//! in one statement. [`replay`] applies rows left by a crash. Events are stored as chunks,
//! one row per session and batch (`game_event_chunks`).

mod log;

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
    /// An ended session's final progression (JSON text of a
    /// `protocol::v2::ProgressionView`, what its events leave the player with); `None`
    /// while it runs, and for sessions ended before it was stored.
    pub final_view: Option<String>,
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
    /// The event, encoded.
    pub event: bytes::Bytes,
}

/// Inserts a new session (before the simulation starts it).
pub async fn create(
    pool: &PgPool,
    id: Uuid,
    user: Uuid,
    world: &str,
    scene: Option<&str>,
    seed: i64,
) -> Result<SessionRow, StoreError> {
    let row = sqlx::query_as!(
        SessionRow,
        "INSERT INTO game_sessions (id, user_id, world, scene, seed) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, user_id, world, scene, seed, status, save, final_view, next_seq, created_at, updated_at",
        id,
        user,
        world,
        scene,
        seed,
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// A session by id.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<SessionRow>, StoreError> {
    Ok(sqlx::query_as!(
        SessionRow,
        "SELECT id, user_id, world, scene, seed, status, save, final_view, next_seq, created_at, updated_at FROM game_sessions WHERE id = $1",
        id,
    )
    .fetch_optional(pool)
    .await?)
}

/// A page of a user's sessions, newest first (ties by id, so pages never overlap).
pub async fn list_for_user(
    pool: &PgPool,
    user: Uuid,
    offset: i64,
    limit: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    Ok(sqlx::query_as!(
        SessionRow,
        "SELECT id, user_id, world, scene, seed, status, save, final_view, next_seq, created_at, updated_at FROM game_sessions
         WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        user,
        limit,
        offset,
    )
    .fetch_all(pool)
    .await?)
}

/// The retained events of a session with `seq >= from`, oldest first, at most `limit`.
pub async fn events_from(
    pool: &PgPool,
    session: Uuid,
    from: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let chunks = sqlx::query!(
        "SELECT first_seq, last_seq, events FROM game_event_chunks
         WHERE session_id = $1 AND last_seq >= $2 ORDER BY first_seq",
        session,
        from,
    )
    .fetch_all(pool)
    .await?;
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut out = Vec::new();
    for c in chunks {
        for ev in decode_chunk(c.first_seq, c.last_seq, &c.events)? {
            if out.len() >= limit {
                return Ok(out);
            }
            if ev.seq >= from && out.last().is_none_or(|p: &EventRow| p.seq < ev.seq) {
                out.push(ev);
            }
        }
    }
    Ok(out)
}

/// Encodes consecutive events (see the `game_event_chunks` migration for the format).
fn encode_chunk(events: &[&EventWrite]) -> Vec<u8> {
    let len: usize = events.iter().map(|e| 12 + e.event.len()).sum();
    let mut out = Vec::with_capacity(len);
    for e in events {
        out.extend_from_slice(&e.at_ms.to_be_bytes());
        // An event is far below 4 GiB (frames are capped much lower).
        out.extend_from_slice(&(e.event.len() as u32).to_be_bytes());
        out.extend_from_slice(&e.event);
    }
    out
}

fn decode_chunk(
    first_seq: i64,
    last_seq: i64,
    mut bytes: &[u8],
) -> Result<Vec<EventRow>, StoreError> {
    let corrupt =
        |what: &str| StoreError::Corrupt(format!("event chunk at seq {first_seq}: {what}"));
    let mut out = Vec::new();
    let mut seq = first_seq;
    while !bytes.is_empty() {
        let (head, rest) = bytes
            .split_first_chunk::<12>()
            .ok_or_else(|| corrupt("truncated header"))?;
        let (at, len) = head.split_at(8);
        let at_ms = i64::from_be_bytes(at.try_into().map_err(|_| corrupt("header"))?);
        let len = u32::from_be_bytes(len.try_into().map_err(|_| corrupt("header"))?) as usize;
        if rest.len() < len {
            return Err(corrupt("truncated event"));
        }
        let (event, rest) = rest.split_at(len);
        out.push(EventRow {
            seq,
            at_ms,
            event: bytes::Bytes::copy_from_slice(event),
        });
        seq += 1;
        bytes = rest;
    }
    if seq != last_seq + 1 {
        return Err(corrupt("event count does not match its sequence range"));
    }
    Ok(out)
}

/// A session's save on its way to the tables, which store it as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Save {
    /// JSON text, stored as it is.
    Json(String),
    /// The binary form of a `domain::narrative::SessionSave`
    /// (`domain::narrative::save_bin`): what the tick writes, cheaper to encode on the
    /// acknowledgement path. The batch log keeps it; the tables get its JSON.
    Binary(Vec<u8>),
}

impl Save {
    /// The save's JSON text, as the tables store it.
    pub fn to_json(&self) -> Result<std::borrow::Cow<'_, str>, StoreError> {
        match self {
            Save::Json(json) => Ok(std::borrow::Cow::Borrowed(json)),
            Save::Binary(bytes) => {
                let save = domain::narrative::SessionSave::decode_binary(bytes)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                serde_json::to_string(&save)
                    .map(std::borrow::Cow::Owned)
                    .map_err(|e| StoreError::Corrupt(format!("cannot encode a save: {e}")))
            }
        }
    }

    /// Encoded length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Save::Json(json) => json.len(),
            Save::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The state of one session after a tick.
#[derive(Debug, Clone)]
pub struct SessionWrite {
    pub id: Uuid,
    /// New save; `None` keeps the stored one.
    pub save: Option<Save>,
    pub ended: bool,
    /// The final progression of a session that ended (JSON text, see
    /// [`SessionRow::final_view`]); `None` keeps the stored one.
    pub final_view: Option<String>,
    pub next_seq: i64,
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct EventWrite {
    pub session: Uuid,
    pub seq: i64,
    pub at_ms: i64,
    /// The event, encoded (shared: a server delivers the same bytes).
    pub event: bytes::Bytes,
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
    let t = sqlx::query_scalar!("SELECT max(last_at_ms) FROM game_event_chunks")
        .fetch_one(pool)
        .await?;
    Ok(t.unwrap_or(0))
}

/// Applies every batch still in the log, oldest first (at startup, before anything
/// reads sessions or events). Returns how many were applied.
pub async fn replay(pool: &PgPool) -> Result<u64, StoreError> {
    let mut writer = Writer::new(pool);
    let mut applied = 0u64;
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query!(
            "SELECT id, body FROM game_batch_log WHERE id > $1 ORDER BY id LIMIT 64",
            after,
        )
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(applied);
        }
        for sqlx_row in rows {
            let (id, body) = (sqlx_row.id, sqlx_row.body);
            let batch = log::decode(id, &body)?;
            writer.apply(id, &batch).await?;
            applied += 1;
            after = id;
        }
    }
}

/// Batches logged and not applied yet.
pub async fn logged_batches(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM game_batch_log"#)
            .fetch_one(pool)
            .await?,
    )
}

/// One chunk row: a session's run of consecutive events in a batch.
struct Chunk<'a> {
    session: Uuid,
    events: Vec<&'a EventWrite>,
}

/// Groups a batch's events into runs of consecutive sequence numbers per session,
/// keeping each session's order.
fn chunks(events: &[EventWrite]) -> Vec<Chunk<'_>> {
    let mut out: Vec<Chunk<'_>> = Vec::new();
    let mut open: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
    for e in events {
        if let Some(&i) = open.get(&e.session)
            && let Some(chunk) = out.get_mut(i)
            && chunk.events.last().is_some_and(|p| p.seq + 1 == e.seq)
        {
            chunk.events.push(e);
            continue;
        }
        open.insert(e.session, out.len());
        out.push(Chunk {
            session: e.session,
            events: vec![e],
        });
    }
    out
}

/// A connection of its own, outside the pool: no acquire and no health-check round
/// trip. The persister has two: one logs batches (durable commits), one applies them
/// ([`Writer::applier`]).
pub struct Writer {
    options: sqlx::postgres::PgConnectOptions,
    conn: Option<sqlx::PgConnection>,
    /// Commits without waiting for the WAL flush (`synchronous_commit = off`).
    async_commit: bool,
    /// Log bodies are encoded here (kept between batches: no allocation, and no fresh
    /// pages to fault in, per batch).
    plain: Vec<u8>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("connected", &self.conn.is_some())
            .field("async_commit", &self.async_commit)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer connecting with the pool's options; every commit is durable before it
    /// returns. It connects on first use, so a database that is down now only delays
    /// the first batch.
    pub fn new(pool: &PgPool) -> Self {
        Writer {
            options: (*pool.connect_options()).clone(),
            conn: None,
            async_commit: false,
            plain: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A writer for [`Writer::apply`] whose commits do not wait for the WAL flush: the
    /// logged batch is the durable copy, and a lost apply leaves its log row to be
    /// replayed.
    pub fn applier(pool: &PgPool) -> Self {
        Writer {
            async_commit: true,
            ..Writer::new(pool)
        }
    }

    async fn conn(&mut self) -> Result<&mut sqlx::PgConnection, StoreError> {
        use sqlx::{ConnectOptions, Executor};
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                let mut c = self.options.connect().await?;
                if self.async_commit {
                    c.execute("SET synchronous_commit = off").await?;
                }
                c
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// Makes `batch` durable as one row of the batch log (one insert, one WAL flush) and
    /// returns the row's id, for [`Writer::apply`]. After an error the connection is
    /// dropped; logging the same batch again is safe (applying is idempotent).
    pub async fn log(&mut self, batch: &Batch) -> Result<i64, StoreError> {
        let mut body = std::mem::take(&mut self.body);
        let id = self.log_body(batch, &mut body).await;
        self.body = body;
        id
    }

    async fn log_body(&mut self, batch: &Batch, body: &mut Vec<u8>) -> Result<i64, StoreError> {
        log::encode_into(batch, &mut self.plain, body)?;
        let conn = self.conn().await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO game_batch_log (body) VALUES ($1) RETURNING id",
            &body[..],
        )
        .fetch_one(&mut *conn)
        .await;
        id.map_err(|e| {
            self.conn = None;
            e.into()
        })
    }

    /// Writes logged batch `id` into the session and event tables and deletes its log
    /// row, atomically. Idempotent; apply batches in log order.
    pub async fn apply(&mut self, id: i64, batch: &Batch) -> Result<(), StoreError> {
        self.write(Some(id), batch).await
    }

    /// Writes a batch straight into the session and event tables, atomically and durably
    /// (without a log row). Session writes must be unique per id within a batch. After an
    /// error the connection is dropped and the next call opens a new one; writing the
    /// same batch again is safe.
    pub async fn write_batch(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(None, batch).await
    }

    async fn write(&mut self, log_id: Option<i64>, batch: &Batch) -> Result<(), StoreError> {
        let c = BatchColumns::of(batch)?;
        let saves: Vec<Option<&str>> = c.saves.iter().map(|s| s.as_deref()).collect();
        let finals: Vec<Option<&str>> = batch
            .sessions
            .iter()
            .map(|s| s.final_view.as_deref())
            .collect();
        let conn = self.conn().await?;
        // A batch applied as one statement (one round trip, atomic): session updates
        // (final views in `$13`), event chunks, trims, and the deletion of its log row (`$12`, NULL when there is
        // none). Idempotent, since a logged batch may be stored twice (a retried insert
        // whose first attempt committed unheard): chunks already there are skipped, and
        // the session update keeps the furthest `next_seq`. Chunks of sessions deleted
        // meanwhile are dropped. The trim finds its chunks through the primary key
        // (`session_id = ANY`): joined to the unnested list instead, the generic plan
        // hashed it against a scan of the whole table.
        let result = sqlx::query!(
            "WITH l AS (
  DELETE FROM game_batch_log WHERE id = $12
  RETURNING 1
), s AS (
  UPDATE game_sessions AS s SET
    save = COALESCE(v.save, s.save),
    final_view = COALESCE(v.final_view, s.final_view),
    status = CASE WHEN v.ended THEN 'ended' ELSE s.status END,
    next_seq = GREATEST(s.next_seq, v.next_seq),
    updated_at = now()
  FROM UNNEST($1::uuid[], $2::text[], $3::bool[], $4::int8[], $13::text[])
    AS v(id, save, ended, next_seq, final_view)
  WHERE s.id = v.id
  RETURNING 1
), e AS (
  INSERT INTO game_event_chunks (session_id, first_seq, last_seq, last_at_ms, events)
  SELECT u.* FROM UNNEST($5::uuid[], $6::int8[], $7::int8[], $8::int8[], $9::bytea[])
    AS u(session_id, first_seq, last_seq, last_at_ms, events)
  WHERE EXISTS (SELECT 1 FROM game_sessions g WHERE g.id = u.session_id)
  ON CONFLICT (session_id, first_seq) DO NOTHING
  RETURNING 1
), t AS (
  DELETE FROM game_event_chunks AS c
  WHERE c.session_id = ANY($10::uuid[])
    AND c.last_seq < (SELECT max(t.keep_from)
                      FROM UNNEST($10::uuid[], $11::int8[]) AS t(session_id, keep_from)
                      WHERE t.session_id = c.session_id)
  RETURNING 1
)
SELECT (SELECT count(*) FROM l) + (SELECT count(*) FROM s) + (SELECT count(*) FROM e)
  + (SELECT count(*) FROM t) AS n",
            &c.ids,
            // Nullable elements: `as _` skips the macro's `Vec<String>` check.
            &saves as _,
            &c.ended,
            &c.next,
            &c.chunk_sessions,
            &c.firsts,
            &c.lasts,
            &c.last_ats,
            &c.bodies,
            &c.trim_sessions,
            &c.keep,
            log_id,
            &finals as _,
        )
        // One row: the count of rows touched (unused).
        .fetch_one(&mut *conn)
        .await;
        if let Err(e) = result {
            self.conn = None;
            return Err(e.into());
        }
        Ok(())
    }
}

/// A batch as the columns [`Writer::write`] binds: sessions (`$1`..`$4`; their final
/// views, `$13`, are bound from the batch), event chunks (`$5`..`$9`) and trims (`$10`,
/// `$11`).
struct BatchColumns<'a> {
    ids: Vec<Uuid>,
    saves: Vec<Option<std::borrow::Cow<'a, str>>>,
    ended: Vec<bool>,
    next: Vec<i64>,
    chunk_sessions: Vec<Uuid>,
    firsts: Vec<i64>,
    lasts: Vec<i64>,
    last_ats: Vec<i64>,
    bodies: Vec<Vec<u8>>,
    trim_sessions: Vec<Uuid>,
    keep: Vec<i64>,
}

impl<'a> BatchColumns<'a> {
    fn of(batch: &'a Batch) -> Result<Self, StoreError> {
        let sessions = &batch.sessions;
        let saves = sessions
            .iter()
            .map(|s| s.save.as_ref().map(Save::to_json).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let chunks = chunks(&batch.events);
        Ok(BatchColumns {
            ids: sessions.iter().map(|s| s.id).collect(),
            saves,
            ended: sessions.iter().map(|s| s.ended).collect(),
            next: sessions.iter().map(|s| s.next_seq).collect(),
            chunk_sessions: chunks.iter().map(|c| c.session).collect(),
            firsts: chunks
                .iter()
                .map(|c| c.events.first().map_or(0, |e| e.seq))
                .collect(),
            lasts: chunks
                .iter()
                .map(|c| c.events.last().map_or(0, |e| e.seq))
                .collect(),
            last_ats: chunks
                .iter()
                .map(|c| c.events.last().map_or(0, |e| e.at_ms))
                .collect(),
            bodies: chunks.iter().map(|c| encode_chunk(&c.events)).collect(),
            trim_sessions: batch.trim.iter().map(|t| t.0).collect(),
            keep: batch.trim.iter().map(|t| t.1).collect(),
        })
    }
}
