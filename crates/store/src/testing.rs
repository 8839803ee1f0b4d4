//! A fresh database per test.
//!
//! All test processes of one checkout share one embedded PostgreSQL cluster, started
//! detached on first use (its data dir is [`test_cluster_dir`]); `make test` stops it
//! at the end (`cargo run -p tests --bin test-cluster -- stop`). Like every embedded
//! cluster it requires the password kept next to its data dir (`pg.password`, mode
//! 0600); the URLs handed out here carry it. A cluster made before that (trust
//! authentication) is upgraded in place by the first test process that starts, under
//! the cluster's file lock, so concurrent test processes do not race.
//! `PIXSIM_TEST_DATABASE_URL` names another server to use instead (a URL whose user may
//! create databases).
//!
//! Each test gets its own database cloned from a template that has every migration
//! applied; the template's name carries a hash of the migrations, so changing a
//! migration builds a new one.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::OnceCell;

use crate::{MIGRATOR, PoolConfig, StoreError};

/// Environment variable naming an external server for tests.
pub const TEST_DATABASE_URL_ENV: &str = "PIXSIM_TEST_DATABASE_URL";

/// Errors of the test harness.
#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    #[error("could not start the embedded test cluster: {0}")]
    Embedded(#[from] embedded::EmbeddedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the embedded cluster start task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A database of its own for one test, dropped (`WITH (FORCE)`) when this handle is
/// dropped, so a whole test run never holds more than its running tests' databases.
/// Databases left by a killed run are dropped when the cluster next starts.
pub struct TestDatabase {
    pub name: String,
    /// Carries the cluster's password (see `embedded::postgres::password_file`).
    pub url: String,
    pub pool: PgPool,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("url", &redacted(&self.url))
            .finish_non_exhaustive()
    }
}

/// `url` with its password replaced by `***`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(server) = SERVER.get().cloned() else {
            return;
        };
        let name = self.name.clone();
        // A thread with a runtime of its own: drop may run inside any runtime (or none),
        // and must not wait on the one it blocks.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await?;
                conn.close().await
            })
            .map_err(|e: sqlx::Error| e.to_string())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} not dropped: {e}", self.name),
            Err(_) => eprintln!(
                "test database {} not dropped: the dropping thread panicked",
                self.name
            ),
        }
    }
}

/// Where the shared test cluster keeps its data: under the system temp dir (so a
/// non-root postgres user can reach it even when the checkout is under /root), one
/// per checkout.
pub fn test_cluster_dir() -> PathBuf {
    let checkout = env!("CARGO_MANIFEST_DIR");
    let hash = hex::encode(&Sha256::digest(checkout.as_bytes())[..6]);
    std::env::temp_dir()
        .join(format!("pixsim-test-{hash}"))
        .join("pg")
}

static SERVER: OnceCell<String> = OnceCell::const_new();

/// URL of the server's maintenance database, starting the shared cluster if needed.
pub async fn server_url() -> Result<String, TestDbError> {
    SERVER
        .get_or_try_init(|| async {
            if let Ok(url) = std::env::var(TEST_DATABASE_URL_ENV) {
                return Ok(url);
            }
            let dir = test_cluster_dir();
            let pg = tokio::task::spawn_blocking(move || {
                let mut opts = embedded::postgres::PgOptions::new(dir).with_test_settings();
                opts.lifetime = embedded::postgres::Lifetime::Detached;
                opts.start_timeout = Duration::from_secs(60);
                opts.extra_settings
                    .push(("max_connections".into(), "400".into()));
                embedded::postgres::EmbeddedPostgres::start(opts)
            })
            .await??;
            let url = pg.url("postgres");
            if !pg.adopted() {
                drop_leftover_databases(&url).await?;
            }
            // Dropping a Detached handle leaves the cluster running for other tests.
            drop(pg);
            Ok(url)
        })
        .await
        .cloned()
}

fn with_database(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => format!("{url}/{db}"),
    }
}

async fn drop_leftover_databases(url: &str) -> Result<(), TestDbError> {
    let mut conn = PgConnection::connect(url).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'pixsim_test_%'")
            .fetch_all(&mut conn)
            .await?;
    for name in names {
        conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
            .await?;
    }
    Ok(())
}

fn template_name() -> String {
    let mut h = Sha256::new();
    for m in MIGRATOR.iter() {
        h.update(m.version.to_le_bytes());
        h.update(&m.checksum);
    }
    format!("pixsim_tpl_{}", hex::encode(&h.finalize()[..8]))
}

async fn ensure_template(server: &str) -> Result<String, TestDbError> {
    let name = template_name();
    let mut conn = PgConnection::connect(server).await?;
    // One builder at a time across processes.
    sqlx::query("SELECT pg_advisory_lock(74_201_121)")
        .execute(&mut conn)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let building = format!("{name}_building");
        conn.execute(format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)").as_str())
            .await?;
        conn.execute(format!("CREATE DATABASE \"{building}\"").as_str())
            .await?;
        {
            let mut tpl = PgConnection::connect(&with_database(server, &building)).await?;
            MIGRATOR.run(&mut tpl).await.map_err(StoreError::from)?;
            tpl.close().await?;
        }
        conn.execute(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\"").as_str())
            .await?;
    }
    sqlx::query("SELECT pg_advisory_unlock(74_201_121)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(name)
}

/// A new, migrated, empty database for one test.
pub async fn fresh_database() -> Result<TestDatabase, TestDbError> {
    let server = server_url().await?;
    let template = ensure_template(&server).await?;
    let name = format!("pixsim_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&server).await?;
    // CREATE DATABASE … TEMPLATE fails while another session is connected to the
    // template; only the builder ever connects, under the advisory lock, so retry briefly.
    let mut attempt = 0;
    loop {
        let created = conn
            .execute(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"").as_str())
            .await;
        match created {
            Ok(_) => break,
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::debug!("create test database: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    let url = with_database(&server, &name);
    let pool = crate::connect(&PoolConfig {
        url: url.clone(),
        max_connections: 10,
        acquire_timeout: Duration::from_secs(10),
    })
    .await?;
    Ok(TestDatabase { name, url, pool })
}

/// A cluster of its own in `data_dir` (created when missing) with the server's durable
/// settings (`fsync` and `synchronous_commit` on), for benchmarks whose figures must be
/// durable ones; it stops when the handle is dropped.
pub async fn durable_cluster(
    data_dir: PathBuf,
) -> Result<embedded::postgres::EmbeddedPostgres, TestDbError> {
    let opts = embedded::postgres::PgOptions::new(data_dir);
    Ok(
        tokio::task::spawn_blocking(move || embedded::postgres::EmbeddedPostgres::start(opts))
            .await??,
    )
}

/// The settings that decide whether a commit is durable, as benchmarks print them:
/// `fsync=on, synchronous_commit=on`.
pub async fn durability(pool: &PgPool) -> Result<String, sqlx::Error> {
    let mut settings = Vec::new();
    for name in ["fsync", "synchronous_commit"] {
        let v: String = sqlx::query_scalar(&format!("SHOW {name}"))
            .fetch_one(pool)
            .await?;
        settings.push(format!("{name}={v}"));
    }
    Ok(settings.join(", "))
}

/// A pending text-to-video job of `user` for tests: `label` makes its prompt and
/// parameter hash; priority 5 (the default), due now, no key, limits or deadline.
pub fn new_job(user: uuid::Uuid, label: &str) -> crate::generation::jobs::NewJob {
    crate::generation::jobs::NewJob {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        provider: "local".into(),
        operation: crate::generation::kinds::Operation::TextToVideo,
        params: serde_json::json!({ "prompt": label }),
        inputs: serde_json::json!([]),
        params_hash: format!("hash-{label}"),
        priority: 5,
        scheduled_at: None,
        idempotency_key: None,
        force_new: false,
        preferred_account_id: None,
        parent_generation_id: None,
        max_retries: 3,
        metadata: serde_json::json!({}),
        estimated_credits: 0,
        deadline_at: None,
        reuse_asset_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn debug_output_hides_the_password() {
        assert_eq!(
            redacted("postgres://postgres:s3cret@127.0.0.1:5/db"),
            "postgres://postgres:***@127.0.0.1:5/db"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
    }
}
