//! Several nodes over Redis pub/sub (optional; one node needs nothing of it).
//!
//! Every node publishes on one channel (`PipelineConfig::redis_channel`) messages
//! tagged with its node id:
//! - `wake`: a job became due (created, resumed, retried, an account changed): idle
//!   workers of every node claim at once instead of at their next poll;
//! - `event`: each [`GenerationEvent`] of this node, which the other nodes re-emit on
//!   their local broadcast (so a user's sockets on any node see every job event);
//! - `cancel`: a job was cancelled: the node running it stops the attempt at once.
//! - `poll`: a provider's webhook reached one node about a submission: the node
//!   polling it polls now.
//!
//! A node drops its own messages. Messages are hints: the queue in PostgreSQL stays the
//! truth, so a lost message only costs latency (a poll interval, a heartbeat). The
//! publisher never blocks the pipeline: events go through a bounded queue and are
//! dropped (and counted) when Redis is slow or away. After a reconnect the node wakes
//! its own workers, in case a wake-up was missed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::outbox::{Message, Outbox};
use crate::shared::Shared;

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: Uuid,
    #[serde(flatten)]
    msg: Message,
}

/// The running link to Redis (see the module docs). It runs until the shutdown future
/// given to [`crate::GenerationService::connect_redis`] resolves; dropping this handle
/// only detaches it.
#[derive(Debug)]
pub struct RedisBridge {
    ready: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RedisBridge {
    /// Whether the node is subscribed right now.
    pub fn is_subscribed(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the node is subscribed (false on timeout).
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut rx = self.ready.clone();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the bridge has stopped (after the shutdown future resolved).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Why [`start`] refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("invalid Redis URL: {0}")]
    Url(redis::RedisError),
    #[error("this service is already connected to Redis")]
    AlreadyConnected,
}

/// How many queued messages go out in one pipeline at most.
const BATCH: usize = 256;
/// Queued messages waiting for Redis at most (then they are dropped).
const QUEUE: usize = 16_384;

/// Starts the bridge: installs the outbox in `shared` and spawns the publisher and the
/// subscriber. Fails only on an invalid URL; an unreachable Redis is retried.
pub(crate) fn start(
    shared: Arc<Shared>,
    url: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RedisBridge, StartError> {
    let client = redis::Client::open(url).map_err(StartError::Url)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let outbox = Arc::new(Outbox::new(tx));
    if shared.outbox.set(outbox.clone()).is_err() {
        return Err(StartError::AlreadyConnected);
    }
    let (ready_tx, ready) = watch::channel(false);
    let channel = shared.cfg.redis_channel.clone();
    let pub_loop = publish_loop(client.clone(), channel.clone(), shared.node_id, outbox, rx);
    let sub_loop = subscribe_loop(client, channel, shared, ready_tx);
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => {}
            _ = async { tokio::join!(pub_loop, sub_loop) } => {}
        }
    });
    Ok(RedisBridge { ready, task })
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6))).min(Duration::from_secs(5))
}

async fn publish_loop(
    client: redis::Client,
    channel: String,
    node: Uuid,
    outbox: Arc<Outbox>,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut conn = connect_with_retry(&client, "generation publisher").await;
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            biased;
            got = rx.recv() => match got {
                Some(m) => batch.push(m),
                None => return,
            },
            _ = outbox.wake_requested() => batch.push(Message::Wake),
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        for msg in batch.drain(..) {
            match serde_json::to_string(&Envelope { node, msg }) {
                Ok(payload) => {
                    pipe.cmd("PUBLISH").arg(&channel).arg(payload).ignore();
                }
                Err(e) => tracing::warn!("unserialisable cross-node message: {e}"),
            }
        }
        // The manager reconnects by itself; what fails meanwhile is lost (hints only).
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::debug!("redis publish failed: {e}");
        }
    }
}

async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    shared: Arc<Shared>,
    ready: watch::Sender<bool>,
) {
    subscribe_forever(
        &client,
        &channel,
        |up| {
            let _ = ready.send(up);
            if up {
                // A wake-up may have been missed while away.
                shared.wake_local();
            }
        },
        |payload| {
            let env: Envelope = match serde_json::from_slice(payload) {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!("ignoring a foreign message on {channel}: {e}");
                    return;
                }
            };
            if env.node == shared.node_id {
                return;
            }
            match env.msg {
                Message::Wake => shared.wake_local(),
                Message::Event { event } => {
                    // Only the local broadcast: never published again.
                    let _ = shared.events.send(*event);
                }
                Message::Cancel { job_id } => shared.stop_running(job_id),
                Message::Poll { remote_id } => {
                    shared.poke(&remote_id);
                }
            }
        },
    )
    .await
}

/// A Redis connection for publishing, retried with backoff until Redis answers (it
/// reconnects by itself afterwards). `who` names the caller in the log.
pub async fn connect_with_retry(
    client: &redis::Client,
    who: &str,
) -> redis::aio::ConnectionManager {
    let mut failures = 0u32;
    loop {
        match redis::aio::ConnectionManager::new(client.clone()).await {
            Ok(c) => return c,
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("{who} cannot reach redis (retrying): {e}");
                }
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

/// Subscribes to `channel` and hands every message's payload to `on_payload`, for
/// ever: a lost subscription is made again, with backoff while Redis is away.
/// `on_state` hears `true` each time the subscription is up, `false` when it is lost.
pub async fn subscribe_forever(
    client: &redis::Client,
    channel: &str,
    mut on_state: impl FnMut(bool),
    mut on_payload: impl FnMut(&[u8]),
) {
    let mut failures = 0u32;
    loop {
        let subscribed = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(ps)
        }
        .await;
        let mut ps = match subscribed {
            Ok(ps) => ps,
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("redis subscriber of {channel} cannot connect (retrying): {e}");
                }
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        if failures > 0 {
            tracing::info!("redis subscriber of {channel} connected");
        }
        failures = 0;
        on_state(true);
        let mut stream = ps.on_message();
        while let Some(msg) = stream.next().await {
            on_payload(msg.get_payload_bytes());
        }
        on_state(false);
        tracing::warn!("redis subscription to {channel} lost; reconnecting");
    }
}
