//! Webhooks: the `webhook_endpoints` a user registers, the durable outbox of messages
//! (`webhook_messages`, one per event and matching endpoint) and the delivery log
//! (`webhook_attempts`).
//!
//! Delivery is at least once and in order per subject: [`claim`] hands out only the
//! earliest pending message of each (endpoint, subject), leased until the attempt's end,
//! and every result is fenced by the attempt number it was claimed with
//! ([`record_many`]).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::StoreError;
use crate::generation::kinds::DeliveryStatus;

/// An endpoint row. `secret` is sealed by the generation crate; callers never expose it.
#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub id: Uuid,
    pub user_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub secret: String,
}

/// Creates an endpoint unless the user has `max_per_user` already (`None` then).
pub async fn create_endpoint(
    pool: &PgPool,
    new: &NewEndpoint,
    max_per_user: i64,
) -> Result<Option<EndpointRow>, StoreError> {
    let row = sqlx::query_as!(
        EndpointRow,
        r#"INSERT INTO webhook_endpoints (id, user_id, url, events, description, secret)
           SELECT $1, $2, $3, $4, $5, $6
           WHERE (SELECT count(*) FROM webhook_endpoints WHERE user_id = $2) < $7
           RETURNING id, user_id, url, events, description, secret, created_at"#,
        new.id,
        new.user_id,
        new.url,
        &new.events,
        new.description,
        new.secret,
        max_per_user,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// The endpoints of a user, oldest first.
pub async fn list_endpoints(pool: &PgPool, user_id: Uuid) -> Result<Vec<EndpointRow>, StoreError> {
    let rows = sqlx::query_as!(
        EndpointRow,
        "SELECT id, user_id, url, events, description, secret, created_at
         FROM webhook_endpoints WHERE user_id = $1 ORDER BY created_at, id",
        user_id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// One endpoint.
pub async fn get_endpoint(pool: &PgPool, id: Uuid) -> Result<Option<EndpointRow>, StoreError> {
    let row = sqlx::query_as!(
        EndpointRow,
        "SELECT id, user_id, url, events, description, secret, created_at
         FROM webhook_endpoints WHERE id = $1",
        id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Deletes an endpoint of this user, and with it its messages and their log.
pub async fn delete_endpoint(pool: &PgPool, id: Uuid, user_id: Uuid) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM webhook_endpoints WHERE id = $1 AND user_id = $2",
        id,
        user_id,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The users that have at least one endpoint.
pub async fn users_with_endpoints(pool: &PgPool) -> Result<Vec<Uuid>, StoreError> {
    let rows =
        sqlx::query_scalar!(r#"SELECT DISTINCT user_id AS "user_id!" FROM webhook_endpoints"#)
            .fetch_all(pool)
            .await?;
    Ok(rows)
}

/// One event to fan out to the endpoints of its user that want its type.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub user_id: Uuid,
    pub event_type: String,
    pub subject_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub body: String,
}

/// Writes one message per (event, endpoint of the event's user whose `events` name its
/// type or `*`), in the order of `events`. Returns the number of messages written.
pub async fn enqueue(pool: &PgPool, events: &[NewEvent]) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let users: Vec<Uuid> = events.iter().map(|e| e.user_id).collect();
    let types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
    let subjects: Vec<Uuid> = events.iter().map(|e| e.subject_id).collect();
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
    let bodies: Vec<String> = events.iter().map(|e| e.body.clone()).collect();
    let done = sqlx::query!(
        "INSERT INTO webhook_messages (id, endpoint_id, event_type, subject_id, occurred_at, body)
         SELECT gen_random_uuid(), e.id, ev.event_type, ev.subject_id, ev.occurred_at, ev.body
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::text[])
              WITH ORDINALITY AS ev (user_id, event_type, subject_id, occurred_at, body, ord)
         JOIN webhook_endpoints e
           ON e.user_id = ev.user_id AND (ev.event_type = ANY (e.events) OR '*' = ANY (e.events))
         ORDER BY ev.ord, e.id",
        &users,
        &types,
        &subjects,
        &times,
        &bodies,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A message claimed for one attempt, with what sending it needs.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub body: String,
    /// This attempt's number (all attempts of the message, from 1).
    pub attempt: i32,
    /// Attempts since the message was (re)queued, this one included.
    pub round_attempt: i32,
    pub url: String,
    /// The endpoint's sealed secret.
    pub secret: String,
}

/// Claims up to `limit` due messages, each the earliest pending one of its (endpoint,
/// subject), and leases them for `lease_secs` (an attempt not recorded by then is due
/// again). Concurrent claimers skip each other's rows.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    let rows = sqlx::query_as!(
        ClaimedMessage,
        r#"WITH due AS (
               SELECT m.id FROM webhook_messages m
               WHERE m.status = 'pending' AND m.next_attempt_at <= now()
                 AND NOT EXISTS (
                     SELECT 1 FROM webhook_messages p
                     WHERE p.endpoint_id = m.endpoint_id AND p.subject_id = m.subject_id
                       AND p.status = 'pending' AND (p.occurred_at, p.seq) < (m.occurred_at, m.seq))
               ORDER BY m.next_attempt_at, m.seq
               LIMIT $1
               FOR UPDATE OF m SKIP LOCKED)
           UPDATE webhook_messages m
           SET attempts = m.attempts + 1, round_attempts = m.round_attempts + 1,
               next_attempt_at = now() + make_interval(secs => $2)
           FROM due, webhook_endpoints e
           WHERE m.id = due.id AND e.id = m.endpoint_id
           RETURNING m.id AS "id!", m.endpoint_id AS "endpoint_id!", m.event_type AS "event_type!",
                     m.body AS "body!", m.attempts AS "attempt!", m.round_attempts AS "round_attempt!",
                     e.url AS "url!", e.secret AS "secret!""#,
        limit,
        lease_secs,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub message_id: Uuid,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// `Delivered`, `Failed` (no retry left) or `Pending` with `retry_at`.
    pub status: DeliveryStatus,
    pub retry_at: Option<DateTime<Utc>>,
}

/// Logs attempts and moves their messages on, in one statement: a message claimed
/// again since an attempt (its lease ran out) only gets that attempt logged. Returns
/// how many messages moved on.
pub async fn record_many(pool: &PgPool, results: &[AttemptResult]) -> Result<u64, StoreError> {
    if results.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = results.iter().map(|r| r.message_id).collect();
    let attempts: Vec<i32> = results.iter().map(|r| r.attempt).collect();
    let started: Vec<DateTime<Utc>> = results.iter().map(|r| r.started_at).collect();
    let durations: Vec<i32> = results.iter().map(|r| r.duration_ms).collect();
    let codes: Vec<Option<i32>> = results.iter().map(|r| r.status_code).collect();
    let errors: Vec<Option<String>> = results.iter().map(|r| r.error.clone()).collect();
    let statuses: Vec<String> = results
        .iter()
        .map(|r| r.status.as_str().to_owned())
        .collect();
    let retries: Vec<Option<DateTime<Utc>>> = results.iter().map(|r| r.retry_at).collect();
    let done = sqlx::query!(
        "WITH r AS (
             SELECT * FROM unnest($1::uuid[], $2::int4[], $3::timestamptz[], $4::int4[],
                                  $5::int4[], $6::text[], $7::text[], $8::timestamptz[])
                 AS r (message_id, attempt, started_at, duration_ms, status_code, error,
                       status, retry_at)
         ), logged AS (
             INSERT INTO webhook_attempts (message_id, attempt, started_at, duration_ms, status_code, error)
             SELECT message_id, attempt, started_at, duration_ms, status_code, error FROM r
             ON CONFLICT DO NOTHING)
         UPDATE webhook_messages m
         SET status = r.status,
             next_attempt_at = COALESCE(r.retry_at, m.next_attempt_at),
             delivered_at = CASE WHEN r.status = 'delivered' THEN now() END,
             last_status = r.status_code, last_error = r.error
         FROM r
         WHERE m.id = r.message_id AND m.attempts = r.attempt AND m.status = 'pending'",
        &ids,
        &attempts,
        &started,
        &durations,
        &codes as &[Option<i32>],
        &errors as &[Option<String>],
        &statuses,
        &retries as &[Option<DateTime<Utc>>],
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A message as the delivery log shows it.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub subject_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

/// A page of an endpoint's messages, newest first, optionally of one status; and how
/// many there are in all.
pub async fn list_messages(
    pool: &PgPool,
    endpoint_id: Uuid,
    status: Option<DeliveryStatus>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<MessageRow>, i64), StoreError> {
    let rows = sqlx::query_as!(
        MessageRow,
        r#"SELECT id, endpoint_id, event_type, subject_id, occurred_at, body,
                  status AS "status: _", attempts, next_attempt_at, created_at, delivered_at,
                  last_status, last_error
           FROM webhook_messages
           WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
           ORDER BY seq DESC LIMIT $3 OFFSET $4"#,
        endpoint_id,
        status as _,
        limit,
        offset,
    )
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM webhook_messages
           WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)"#,
        endpoint_id,
        status as _,
    )
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// One attempt of the log.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub message_id: Uuid,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// The attempts of these messages, in attempt order.
pub async fn attempts_of(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<AttemptRow>, StoreError> {
    let rows = sqlx::query_as!(
        AttemptRow,
        "SELECT message_id, attempt, started_at, duration_ms, status_code, error
         FROM webhook_attempts WHERE message_id = ANY ($1) ORDER BY message_id, attempt",
        ids,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Puts a delivered or failed message of this endpoint back in the queue, due now, with
/// a fresh retry schedule. `None` when there is no such message or it is pending.
pub async fn redeliver(
    pool: &PgPool,
    endpoint_id: Uuid,
    message_id: Uuid,
) -> Result<Option<MessageRow>, StoreError> {
    let row = sqlx::query_as!(
        MessageRow,
        r#"UPDATE webhook_messages
           SET status = 'pending', round_attempts = 0, next_attempt_at = now(), delivered_at = NULL
           WHERE id = $1 AND endpoint_id = $2 AND status <> 'pending'
           RETURNING id, endpoint_id, event_type, subject_id, occurred_at, body,
                     status AS "status: _", attempts, next_attempt_at, created_at, delivered_at,
                     last_status, last_error"#,
        message_id,
        endpoint_id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// One message of an endpoint.
pub async fn get_message(
    pool: &PgPool,
    endpoint_id: Uuid,
    message_id: Uuid,
) -> Result<Option<MessageRow>, StoreError> {
    let row = sqlx::query_as!(
        MessageRow,
        r#"SELECT id, endpoint_id, event_type, subject_id, occurred_at, body,
                  status AS "status: _", attempts, next_attempt_at, created_at, delivered_at,
                  last_status, last_error
           FROM webhook_messages WHERE id = $1 AND endpoint_id = $2"#,
        message_id,
        endpoint_id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// Deletes the delivered and failed messages written before `before` (and their log).
pub async fn prune(pool: &PgPool, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM webhook_messages WHERE created_at < $1 AND status <> 'pending'",
        before,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
