//! The server's implementations of what the API asks for without knowing the parts:
//! the Redis health probe ([`api::HealthProbe`]) over a `redis::Client`, and the QUIC
//! endpoint's figures ([`api::ChannelStats`]) over [`quic::QuicStats`].

use std::sync::Arc;
use std::time::Duration;

/// A PING of the Redis at `url` within `timeout`, without holding a connection open.
pub fn redis_probe(url: &str, timeout: Duration) -> Result<api::HealthProbe, redis::RedisError> {
    let client = redis::Client::open(url)?;
    Ok(api::HealthProbe::new(move || {
        let client = client.clone();
        async move {
            let attempt = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            }
        }
    }))
}

/// The QUIC endpoint's connection figures, read on each `/metrics` scrape.
pub fn quic_figures(stats: quic::QuicStats) -> api::ChannelStats {
    Arc::new(move || api::ChannelFigures {
        connections: stats.connections(),
        accepted_total: stats.total_accepted(),
    })
}
