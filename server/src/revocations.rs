//! Ended sessions across nodes: with `redis.url`, what this node's
//! [`auth::Revocations`] announces is published on one Redis channel, and what other
//! nodes publish is announced to this node's live connections. So a logout on one node
//! closes the user's WebSockets, SSE streams and QUIC connections on every node at
//! once. Messages are hints: a lost one costs at most a watch's re-check period
//! ([`auth::RevocationWatch::RECHECK`]), since every watch re-reads its session row.

use std::future::Future;

use auth::{Revocations, Revoked};
use generation::cluster::{connect_with_retry, subscribe_forever};
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
    let mut conn = connect_with_retry(&client, "revocation publisher").await;
    while let Some(revoked) = rx.recv().await {
        let payload = match serde_json::to_string(&Envelope { node, revoked }) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("unserialisable revocation: {e}");
                continue;
            }
        };
        let mut pipe = redis::pipe();
        pipe.cmd("PUBLISH").arg(CHANNEL).arg(payload).ignore();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!("revocation not published (other nodes catch up on re-check): {e}");
        }
    }
}

async fn subscribe(client: redis::Client, node: Uuid, local: Revocations) {
    subscribe_forever(
        &client,
        CHANNEL,
        |_| {},
        |payload| match serde_json::from_slice::<Envelope>(payload) {
            Ok(e) if e.node != node => local.announce_from_peer(e.revoked),
            Ok(_) => {}
            Err(e) => tracing::warn!("malformed revocation message: {e}"),
        },
    )
    .await
}
