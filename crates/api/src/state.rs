//! Shared state of the HTTP handlers.

use std::sync::Arc;
use std::time::Duration;

use auth::AuthService;
use sqlx::PgPool;
use tick::{TickControl, TickStats};

/// Everything a handler may reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: PgPool,
    pub auth: AuthService,
    pub tick: TickHandle,
    pub redis: Option<RedisProbe>,
    pub info: Arc<ServerInfo>,
}

/// Read and steer the tick loop from async code.
#[derive(Clone, Debug)]
pub struct TickHandle {
    pub stats: TickStats,
    pub control: TickControl,
}

/// Facts about this server shown by health and docs.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub version: String,
    pub quic_addr: Option<String>,
    pub quic_fingerprint: Option<String>,
}

/// Checks a configured Redis without holding a connection open.
#[derive(Clone, Debug)]
pub struct RedisProbe {
    client: redis::Client,
    timeout: Duration,
}

impl RedisProbe {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            timeout,
        })
    }

    /// PING within the timeout; the error text when it fails.
    pub async fn ping(&self) -> Result<(), String> {
        let attempt = async {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}
