//! The database the server talks to: an external one (`database.url`) or the embedded
//! PostgreSQL it starts (and stops) itself, created and migrated through `store`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use store::PgPool;

use crate::Config;

/// Name of the database the server creates in the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "pixsim";

/// The database the server talks to, and the embedded cluster when it owns one.
pub struct Database {
    pub pool: PgPool,
    pub url: String,
    pub embedded: Option<embedded::postgres::EmbeddedPostgres>,
}

impl Database {
    /// Closes the pool and stops the embedded cluster, if any.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        stop_embedded(self.embedded).await
    }
}

/// Stops the embedded cluster if this process started it. One it adopted (started by
/// another process on the same state dir, e.g. a running server when this is
/// `pixsim-server migrate`) is left running: `EmbeddedPostgres::stop` never stops it.
pub(crate) async fn stop_embedded(
    pg: Option<embedded::postgres::EmbeddedPostgres>,
) -> anyhow::Result<()> {
    if let Some(pg) = pg {
        let adopted = pg.adopted();
        tokio::task::spawn_blocking(move || pg.stop())
            .await
            .context("stopping the embedded PostgreSQL")??;
        if adopted {
            tracing::info!("embedded PostgreSQL left running (another process started it)");
        } else {
            tracing::info!("embedded PostgreSQL stopped");
        }
    }
    Ok(())
}

/// Removes the password from a database URL for display.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn euid_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Starts the embedded cluster for `state_dir`, falling back to a root-owned location
/// when run as root from a directory the postgres user cannot reach.
fn start_embedded_blocking(cfg: &Config) -> anyhow::Result<embedded::postgres::EmbeddedPostgres> {
    use embedded::postgres::{EmbeddedPostgres, PgOptions};
    let cache_dir = embedded::default_cache_dir();
    let make = |data_dir: PathBuf| {
        let mut opts = PgOptions::new(data_dir);
        opts.cache_dir = cache_dir.clone();
        opts.port = cfg.database.embedded_port;
        opts.run_as = cfg.database.embedded_user.clone();
        if let Some(mb) = cfg.database.embedded_shared_buffers_mb {
            opts.extra_settings
                .push(("shared_buffers".into(), format!("{}MB", mb.max(16))));
        }
        opts.start_timeout = Duration::from_secs(60);
        opts
    };
    let state_dir = absolute(&cfg.state_dir)?;
    match EmbeddedPostgres::start(make(state_dir.join("postgres"))) {
        Err(embedded::EmbeddedError::NotTraversable { dir, .. }) if euid_is_root() => {
            use sha2::Digest;
            let hash =
                hex::encode(&sha2::Sha256::digest(state_dir.as_os_str().as_encoded_bytes())[..6]);
            let fallback = PathBuf::from("/var/lib/pixsim").join(hash).join("postgres");
            tracing::warn!(
                unreachable = %dir.display(),
                data_dir = %fallback.display(),
                "the PostgreSQL user cannot reach the state dir; keeping the database elsewhere"
            );
            Ok(EmbeddedPostgres::start(make(fallback))?)
        }
        other => Ok(other?),
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(p)
        .with_context(|| format!("creating the state dir {}", p.display()))?;
    p.canonicalize()
        .with_context(|| format!("resolving the state dir {}", p.display()))
}

/// Connects to `database.url`, or starts the embedded PostgreSQL, then migrates.
pub async fn open_database(cfg: &Config) -> anyhow::Result<Database> {
    let (url, embedded) = match &cfg.database.url {
        Some(url) => (url.clone(), None),
        None => {
            tracing::info!("DATABASE_URL is unset: starting the embedded PostgreSQL");
            let c = cfg.clone();
            let pg = tokio::task::spawn_blocking(move || start_embedded_blocking(&c))
                .await
                .context("starting the embedded PostgreSQL")??;
            tracing::info!(port = pg.port(), data_dir = %pg.data_dir().display(), "embedded PostgreSQL ready");
            if pg.adopted() {
                tracing::info!(
                    pid = pg.pid(),
                    "the embedded PostgreSQL was already running (another process on this \
                     state dir started it): using it, and leaving it running on exit"
                );
            }
            let admin = pg.url("postgres");
            if let Err(e) = create_database_if_missing(&admin, EMBEDDED_DATABASE).await {
                stop_embedded(Some(pg)).await.ok();
                return Err(e);
            }
            (pg.url(EMBEDDED_DATABASE), Some(pg))
        }
    };
    let pool = match connect_and_migrate(cfg, &url).await {
        Ok(pool) => pool,
        Err(e) => {
            stop_embedded(embedded).await.ok();
            return Err(e);
        }
    };
    Ok(Database {
        pool,
        url,
        embedded,
    })
}

async fn create_database_if_missing(admin_url: &str, name: &str) -> anyhow::Result<()> {
    if store::create_database_if_missing(admin_url, name)
        .await
        .context("creating the database on the embedded PostgreSQL")?
    {
        tracing::info!(database = name, "created database");
    }
    Ok(())
}

async fn connect_and_migrate(cfg: &Config, url: &str) -> anyhow::Result<PgPool> {
    let pool = store::connect(&store::PoolConfig {
        url: url.to_owned(),
        max_connections: cfg.database.max_connections,
        acquire_timeout: Duration::from_secs(cfg.database.connect_timeout_secs),
    })
    .await
    .with_context(|| format!("cannot reach the database at {}", redact_url(url)))?;
    store::migrate(&pool)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }
}
