//! PostgreSQL access: the pool, migrations and repositories.
//!
//! **API Boundary**: every SQL statement of the server lives in this crate. Callers
//! get domain types and [`StoreError`], never rows.

use std::time::Duration;

use sqlx::ConnectOptions;
/// The connection pool callers hold: they name no `sqlx`.
pub use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub mod auth_sessions;
pub mod game;
pub mod generation;
pub mod logs;
pub mod users;
pub mod webhooks;

#[cfg(feature = "testing")]
pub mod testing;

/// The migrations in `migrations/` at the repository root, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; names what was duplicated.
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True when the database could not be reached (as opposed to a refused query).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
            )
        )
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// A pooled connection idle this long is tested before it is handed out.
const IDLE_TEST_AFTER: Duration = Duration::from_secs(1);

/// Connects a pool, failing fast with the cause when the database is unreachable.
pub async fn connect(cfg: &PoolConfig) -> Result<PgPool, StoreError> {
    let opts: PgConnectOptions = cfg.url.parse()?;
    let opts = opts
        .application_name("pixsim")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    let pool = PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .acquire_timeout(cfg.acquire_timeout)
        // A connection is tested (a round trip) before use only when it sat idle for a
        // second or more: one that was just used is alive, and under load the test on
        // every acquire cost the database about as much as a short statement.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_TEST_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(opts)
        .await?;
    Ok(pool)
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Creates database `name` on the server `admin_url` points at, unless it exists;
/// returns whether it created it. `name` is quoted as an identifier.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<bool, StoreError> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name,
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        // Runtime: an identifier cannot be a parameter.
        let quoted = name.replace('"', "\"\"");
        conn.execute(format!("CREATE DATABASE \"{quoted}\"").as_str())
            .await?;
    }
    conn.close().await.ok();
    Ok(!exists)
}

/// How many migrations the database has applied.
pub async fn applied_migrations(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM _sqlx_migrations"#)
            .fetch_one(pool)
            .await?,
    )
}

/// `SELECT 1` within `timeout`; for health checks.
pub async fn ping(pool: &PgPool, timeout: Duration) -> Result<(), StoreError> {
    let one = sqlx::query_scalar!("SELECT 1 AS one").fetch_one(pool);
    match tokio::time::timeout(timeout, one).await {
        Ok(r) => r.map(|_| ()).map_err(StoreError::from),
        Err(_) => Err(StoreError::Db(sqlx::Error::PoolTimedOut)),
    }
}

/// Maps a unique-violation to [`StoreError::Conflict`].
pub(crate) fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Db(e),
    }
}
