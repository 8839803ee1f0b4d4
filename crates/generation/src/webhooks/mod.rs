//! Webhooks: users register endpoints (`POST /api/v1/webhooks`: a URL and the event
//! types it wants); every job and asset event of theirs is delivered to each matching
//! endpoint as a signed POST following the Standard Webhooks convention ([`sign`]).
//!
//! The way of an event:
//! 1. [`crate::shared::Shared::emit`] offers every event to the [`WebhookHub`]; one of a
//!    user with endpoints (a set read every `refresh`, and at once when this node
//!    registers one) is queued in memory, with its body already serialized;
//! 2. the writer ([`GenerationService::run_webhooks`]) writes queued events in batches to
//!    the outbox in PostgreSQL, one message per matching endpoint, and wakes the
//!    dispatcher;
//! 3. the dispatcher claims due messages (the earliest pending one of each endpoint and
//!    subject, so a job's events go out one at a time, in order), POSTs them through
//!    the SSRF guard, logs each attempt and schedules a retry on anything but a 2xx,
//!    along the retry schedule (about a day), after which the message is `failed`.
//!
//! Delivery is at least once: a node that dies mid-attempt leaves the message to be
//! sent again when its lease ends, with the same `webhook-id`, which receivers use to
//! drop duplicates. The outbox is written after the change an event reports was
//! committed, so a crash in between (one write batch, milliseconds) loses those events'
//! messages; the job itself, readable over REST, is the truth.

mod deliver;
pub mod sign;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use chrono::{DateTime, Utc};
use domain::user::UserId;
use serde::{Deserialize, Serialize};
use store::webhooks::{self as store_webhooks, AttemptRow, EndpointRow, MessageRow, NewEvent};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::error::GenerationError;
use crate::events::GenerationEvent;
use crate::model::{Actor, DeliveryStatus, Page};
use crate::params::Issues;
use crate::service::GenerationService;

/// The event types an endpoint may ask for (`*`: all of them).
pub const EVENT_TYPES: &[&str] = &[
    "job:created",
    "job:updated",
    "job:completed",
    "job:failed",
    "asset:created",
];

/// The longest endpoint URL accepted.
const MAX_URL_LEN: usize = 2048;
const MAX_DESCRIPTION_LEN: usize = 500;
/// Attempts shown per delivery (the newest).
const MAX_ATTEMPTS_SHOWN: usize = 20;

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where messages are POSTed: http(s), a public address (the SSRF guard refuses
    /// private, loopback and link-local ones unless the server allows them).
    pub url: String,
    /// Event types: `job:created`, `job:updated` (status or progress changed),
    /// `job:completed`, `job:failed`, `asset:created`, or `*` for all.
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A registered endpoint. Its secret is shown once, when it is created.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// The answer to a create: the endpoint and its signing secret (`whsec_…`), shown this
/// once only.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// Verify each message's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

/// One attempt to deliver a message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookAttempt {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i32>,
    /// Why the attempt failed (no answer, a refused destination, a non-2xx status).
    pub error: Option<String>,
}

/// One event for one endpoint, and how its delivery went.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    pub id: Uuid,
    /// The `webhook-id` header of every attempt (the same each time: receivers drop
    /// duplicates by it).
    pub message_id: String,
    pub event_type: String,
    /// The job (or asset) the event is about.
    pub subject_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// While pending: when the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// The body sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// The newest attempts (at most 20), oldest first.
    pub attempt_log: Vec<WebhookAttempt>,
}

/// Filter of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub offset: u32,
    pub limit: Option<u32>,
}

/// The `webhook-id` of a message.
pub fn message_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}

/// The body of a message: `{"type", "timestamp", "data"}` (Standard Webhooks), where
/// `data` holds the event's fields (`generation`, `asset`) as the WebSocket sends them.
fn body(ev: &GenerationEvent, occurred_at: DateTime<Utc>) -> Option<String> {
    let mut data = serde_json::to_value(ev).ok()?;
    if let Some(o) = data.as_object_mut() {
        o.remove("type");
    }
    serde_json::to_string(&serde_json::json!({
        "type": ev.kind(),
        "timestamp": occurred_at,
        "data": data,
    }))
    .ok()
}

/// The subject (job or asset id) and time of an event.
fn subject(ev: &GenerationEvent) -> (Uuid, DateTime<Utc>) {
    match ev {
        GenerationEvent::AssetCreated { asset } => (asset.id, asset.created_at),
        GenerationEvent::JobCreated { generation }
        | GenerationEvent::JobUpdated { generation }
        | GenerationEvent::JobCompleted { generation, .. }
        | GenerationEvent::JobFailed { generation } => (generation.id, generation.updated_at),
    }
}

/// Where events wait for the outbox writer. Held by [`crate::shared::Shared`].
#[derive(Debug, Default)]
pub(crate) struct WebhookHub {
    /// Set once [`GenerationService::run_webhooks`] runs: without it nothing is queued.
    tx: OnceLock<mpsc::Sender<NewEvent>>,
    /// The users with at least one endpoint.
    users: RwLock<Arc<HashSet<Uuid>>>,
    /// Wakes the dispatcher (messages were written, or an attempt ended).
    pub(crate) wake: Notify,
    /// Events dropped because the writer could not keep up.
    pub(crate) dropped: AtomicU64,
    /// Messages delivered and attempts failed by this process.
    pub(crate) delivered: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
}

impl WebhookHub {
    /// Queues an event for the outbox when its user has endpoints.
    pub(crate) fn offer(&self, ev: &GenerationEvent) {
        let Some(tx) = self.tx.get() else {
            return;
        };
        let user = ev.user_id().0;
        let wanted = self
            .users
            .read()
            .map(|u| u.contains(&user))
            .unwrap_or(false);
        if !wanted {
            return;
        }
        let (subject_id, occurred_at) = subject(ev);
        let Some(body) = body(ev, occurred_at) else {
            return;
        };
        let event = NewEvent {
            user_id: user,
            event_type: ev.kind().to_owned(),
            subject_id,
            occurred_at,
            body,
        };
        if tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n + 1,
                    "webhook events dropped: the outbox writer is behind"
                );
            }
        }
    }

    fn set_users(&self, users: HashSet<Uuid>) {
        if let Ok(mut u) = self.users.write() {
            *u = Arc::new(users);
        }
    }

    fn add_user(&self, user: Uuid) {
        if let Ok(mut u) = self.users.write()
            && !u.contains(&user)
        {
            let mut next = (**u).clone();
            next.insert(user);
            *u = Arc::new(next);
        }
    }
}

fn to_webhook(r: EndpointRow) -> Webhook {
    Webhook {
        id: r.id,
        url: r.url,
        events: r.events,
        description: r.description,
        created_at: r.created_at,
    }
}

fn to_delivery(m: MessageRow, attempts: &[AttemptRow]) -> WebhookDelivery {
    let mut log: Vec<WebhookAttempt> = attempts
        .iter()
        .filter(|a| a.message_id == m.id)
        .map(|a| WebhookAttempt {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error.clone(),
        })
        .collect();
    if log.len() > MAX_ATTEMPTS_SHOWN {
        log.drain(..log.len() - MAX_ATTEMPTS_SHOWN);
    }
    WebhookDelivery {
        id: m.id,
        message_id: message_id(m.id),
        event_type: m.event_type,
        subject_id: m.subject_id,
        occurred_at: m.occurred_at,
        next_attempt_at: (m.status == DeliveryStatus::Pending).then_some(m.next_attempt_at),
        status: m.status,
        attempts: m.attempts,
        delivered_at: m.delivered_at,
        created_at: m.created_at,
        last_status_code: m.last_status,
        last_error: m.last_error,
        payload: serde_json::from_str(&m.body).unwrap_or(serde_json::Value::Null),
        attempt_log: log,
    }
}

impl GenerationService {
    /// Registers an endpoint of the actor. The answer carries its secret, this once.
    ///
    /// Errors: `invalid_parameters` (URL not http(s), refused by the SSRF guard, too
    /// long; unknown or no event types; description too long), `conflict` (the user
    /// has `max_endpoints_per_user` already).
    pub async fn create_webhook(
        &self,
        actor: Actor,
        new: NewWebhook,
    ) -> Result<WebhookCreated, GenerationError> {
        let mut issues = Issues::default();
        match reqwest::Url::parse(&new.url) {
            _ if new.url.len() > MAX_URL_LEN => issues.push(
                "url",
                "too_long",
                format!("at most {MAX_URL_LEN} characters"),
            ),
            Ok(url) => {
                if let Err(e) =
                    crate::guard::Guard::new(self.shared.cfg.guard.clone()).check_url(&url)
                {
                    issues.push("url", "not_allowed", e.to_string());
                }
            }
            Err(e) => issues.push("url", "invalid_url", e.to_string()),
        }
        let mut events: Vec<String> = Vec::new();
        for e in &new.events {
            if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
                issues.push(
                    "events",
                    "unknown_event",
                    format!(
                        "unknown event type {e:?}; one of {}, or *",
                        EVENT_TYPES.join(", ")
                    ),
                );
            } else if !events.contains(e) {
                events.push(e.clone());
            }
        }
        if new.events.is_empty() {
            issues.push("events", "required", "name at least one event type, or *");
        }
        if new.description.chars().count() > MAX_DESCRIPTION_LEN {
            issues.push(
                "description",
                "too_long",
                format!("at most {MAX_DESCRIPTION_LEN} characters"),
            );
        }
        if !issues.is_empty() {
            return Err(GenerationError::InvalidParameters(issues.0));
        }
        let id = Uuid::now_v7();
        let secret = sign::new_secret();
        let limit = self.shared.cfg.webhooks.max_endpoints_per_user;
        let row = store_webhooks::create_endpoint(
            &self.shared.pool,
            &store_webhooks::NewEndpoint {
                id,
                user_id: actor.user_id.0,
                url: new.url,
                events,
                description: new.description,
                secret: self.shared.cfg.secret_key.seal(id, &secret),
            },
            limit,
        )
        .await?
        .ok_or_else(|| {
            GenerationError::Conflict(format!(
                "at most {limit} webhooks per user; delete one first"
            ))
        })?;
        self.shared.webhooks.add_user(actor.user_id.0);
        let w = to_webhook(row);
        Ok(WebhookCreated {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            created_at: w.created_at,
            secret,
        })
    }

    /// The actor's endpoints.
    pub async fn list_webhooks(&self, actor: Actor) -> Result<Vec<Webhook>, GenerationError> {
        let rows = store_webhooks::list_endpoints(&self.shared.pool, actor.user_id.0).await?;
        Ok(rows.into_iter().map(to_webhook).collect())
    }

    /// One endpoint of the actor (another user's is `not_found`, admins included: an
    /// endpoint is its owner's).
    pub async fn get_webhook(&self, actor: Actor, id: Uuid) -> Result<Webhook, GenerationError> {
        Ok(to_webhook(self.own_endpoint(actor.user_id, id).await?))
    }

    async fn own_endpoint(&self, user: UserId, id: Uuid) -> Result<EndpointRow, GenerationError> {
        store_webhooks::get_endpoint(&self.shared.pool, id)
            .await?
            .filter(|r| r.user_id == user.0)
            .ok_or(GenerationError::NotFound("webhook"))
    }

    /// Deletes an endpoint of the actor with its pending messages and log.
    pub async fn delete_webhook(&self, actor: Actor, id: Uuid) -> Result<(), GenerationError> {
        if store_webhooks::delete_endpoint(&self.shared.pool, id, actor.user_id.0).await? {
            Ok(())
        } else {
            Err(GenerationError::NotFound("webhook"))
        }
    }

    /// The delivery log of an endpoint of the actor, newest first.
    pub async fn webhook_deliveries(
        &self,
        actor: Actor,
        id: Uuid,
        filter: DeliveryFilter,
    ) -> Result<Page<WebhookDelivery>, GenerationError> {
        self.own_endpoint(actor.user_id, id).await?;
        let limit = crate::service::page_limit(filter.limit);
        let (rows, total) = store_webhooks::list_messages(
            &self.shared.pool,
            id,
            filter.status,
            i64::from(limit),
            i64::from(filter.offset),
        )
        .await?;
        let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
        let attempts = store_webhooks::attempts_of(&self.shared.pool, &ids).await?;
        Ok(Page {
            items: rows
                .into_iter()
                .map(|m| to_delivery(m, &attempts))
                .collect(),
            total,
            offset: filter.offset,
            limit,
        })
    }

    /// Sends a delivered or failed message of an endpoint of the actor again, now, with
    /// a fresh retry schedule (same `webhook-id`).
    ///
    /// Errors: `not_found`, `conflict` when it is still pending.
    pub async fn redeliver_webhook(
        &self,
        actor: Actor,
        id: Uuid,
        delivery_id: Uuid,
    ) -> Result<WebhookDelivery, GenerationError> {
        self.own_endpoint(actor.user_id, id).await?;
        let pool = &self.shared.pool;
        let Some(m) = store_webhooks::redeliver(pool, id, delivery_id).await? else {
            return match store_webhooks::get_message(pool, id, delivery_id).await? {
                Some(_) => Err(GenerationError::Conflict(
                    "the delivery is pending already".into(),
                )),
                None => Err(GenerationError::NotFound("delivery")),
            };
        };
        self.shared.webhooks.wake.notify_one();
        let attempts = store_webhooks::attempts_of(pool, &[m.id]).await?;
        Ok(to_delivery(m, &attempts))
    }

    /// Webhook counters of this process: (messages delivered, attempts failed, events
    /// dropped before the outbox).
    pub fn webhook_counters(&self) -> (u64, u64, u64) {
        let h = &self.shared.webhooks;
        (
            h.delivered.load(Ordering::Relaxed),
            h.failed_attempts.load(Ordering::Relaxed),
            h.dropped.load(Ordering::Relaxed),
        )
    }
}
