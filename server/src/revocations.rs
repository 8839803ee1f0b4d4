//! Ended sessions across nodes: with `redis.url`, what this node's
//! [`auth::Revocations`] announces is published on one Redis channel, and what other
//! nodes publish is announced to this node's live connections. So a logout on one node
//! closes the user's WebSockets, SSE streams and QUIC connections on every node at
//! once. Messages are hints: a lost one costs at most a watch's re-check period
//! ([`auth::RevocationWatch::RECHECK`]), since every watch re-reads its session row.

use std::future::Future;
use std::time::Duration;

use auth::{Revocations, Revoked};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

/// The Redis channel of revocations.
pub const CHANNEL: &str = "pixsim:revocations";

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: Uuid,
    revoked: Revoked,
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6))).min(Duration::from_secs(5))
}

/// Starts the relay (see the module docs) until `shutdown` resolves. Fails only on an
/// invalid URL; an unreachable Redis is retried.
pub fn connect(
    url: &str,
    revocations: &Revocations,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let node = Uuid::new_v4();
    let (tx, rx) = mpsc::channel(1024);
    if !revocations.set_relay(tx) {
        anyhow::bail!("the revocation relay is already connected");
    }
    let local = revocations.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {}
            _ = async {
                tokio::join!(publish(client.clone(), node, rx), subscribe(client, node, local))
            } => {}
        }
    });
    Ok(())
}

async fn publish(client: redis::Client, node: Uuid, mut rx: mpsc::Receiver<Revoked>) {
    let mut failures = 0u32;
    let mut conn = loop {
        match redis::aio::ConnectionManager::new(client.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("revocation publisher cannot reach redis (retrying): {e}");
                }
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    };
    while let Some(revoked) = rx.recv().await {
        let payload = match serde_json::to_string(&Envelope { node, revoked }) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("unserialisable revocation: {e}");
                continue;
            }
        };
        let sent: redis::RedisResult<()> = redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(payload)
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!("revocation not published (other nodes catch up on re-check): {e}");
        }
    }
}

async fn subscribe(client: redis::Client, node: Uuid, local: Revocations) {
    let mut failures = 0u32;
    loop {
        let subscribed = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(ps)
        }
        .await;
        let mut ps = match subscribed {
            Ok(ps) => ps,
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("revocation subscriber cannot reach redis (retrying): {e}");
                }
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        failures = 0;
        let mut messages = ps.on_message();
        while let Some(msg) = messages.next().await {
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Envelope>(&payload) {
                Ok(e) if e.node != node => local.announce_from_peer(e.revoked),
                Ok(_) => {}
                Err(e) => tracing::warn!("malformed revocation message: {e}"),
            }
        }
        // The connection dropped: subscribe again.
    }
}
