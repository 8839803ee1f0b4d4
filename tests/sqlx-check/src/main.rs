//! `sqlx-check [prepare]`: the sqlx offline data in `.sqlx/` (at the workspace root)
//! against the schema the migrations make.
//!
//! It starts an embedded PostgreSQL of its own (data under the system temp dir, one per
//! checkout, stopped on exit) and makes a fresh database with every migration of
//! `migrations/` applied.
//!
//! - no argument (`make test`): asks that database to describe each checked-in query,
//!   exactly as the query macros do when they compile online, and fails, naming the
//!   query, where the description differs from the checked-in one (a migration that
//!   changed a column a query reads or writes, a hand-edited file). It compiles nothing:
//!   a query that has no checked-in data at all already fails the offline build of
//!   `store` (`SQLX_OFFLINE`), which `make test` runs first.
//! - `prepare` (`make sqlx-prepare`): runs the query macros of the crates that use them
//!   ONLINE against that database (`cargo rustc --profile check` with `DATABASE_URL`,
//!   `SQLX_OFFLINE=false` and `SQLX_OFFLINE_DIR` pointing at an empty directory, and a
//!   `--cfg` that changes every run, so every macro expands again while the sources and
//!   the build's other artifacts are left as they are), then replaces `.sqlx/` with the
//!   files they wrote, so stale entries go too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};

/// The crates whose sources use `sqlx::query!` and friends.
const CRATES: &[&str] = &["store"];

/// The database the macros describe their queries against.
const DATABASE: &str = "pixsim_sqlx_check";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let prepare = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("prepare") => true,
        Some(_) => {
            eprintln!("usage: sqlx-check [prepare]");
            return ExitCode::from(2);
        }
    };
    match run(prepare) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sqlx-check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    // tests/sqlx-check → the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(prepare: bool) -> Result<bool, Error> {
    let started = Instant::now();
    let root = root().canonicalize()?;
    let hash = hex::encode(&Sha256::digest(root.to_string_lossy().as_bytes())[..6]);
    let mut opts = embedded::postgres::PgOptions::new(
        std::env::temp_dir()
            .join(format!("pixsim-sqlx-check-{hash}"))
            .join("pg"),
    )
    .with_test_settings();
    opts.start_timeout = Duration::from_secs(120);
    // Owned: stopped when `pg` is dropped, at the end of this function.
    let pg = embedded::postgres::EmbeddedPostgres::start(opts)?;
    let url = pg.url(DATABASE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(fresh_database(&pg.url("postgres"), &url))?;
    let checked_in_dir = root.join(".sqlx");
    let (ok, queries) = if prepare {
        let fresh = run_macros(&root, &url)?;
        let n = fresh.as_ref().map_or(0, BTreeMap::len);
        if let Some(fresh) = fresh {
            if checked_in_dir.exists() {
                std::fs::remove_dir_all(&checked_in_dir)?;
            }
            std::fs::create_dir_all(&checked_in_dir)?;
            for (name, body) in &fresh {
                std::fs::write(checked_in_dir.join(name), body)?;
            }
            println!("sqlx-check: wrote {n} queries to .sqlx/");
        }
        (n > 0, n)
    } else {
        let checked_in = if checked_in_dir.exists() {
            read_dir(&checked_in_dir)?
        } else {
            BTreeMap::new()
        };
        let n = checked_in.len();
        (rt.block_on(describe_all(&url, &checked_in))?, n)
    };
    drop(pg);
    eprintln!(
        "sqlx-check: {queries} queries, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ok)
}

/// Runs the query macros of [`CRATES`] online against `url`; the files they write, or
/// `None` when a crate failed to check (its errors are printed).
fn run_macros(root: &Path, url: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, Error> {
    // The build's own target dir: the dependencies an earlier build checked are reused,
    // and only the crates below are checked again.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |t| root.join(t));
    let out = target.join("sqlx-check").join("offline");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // A `--cfg` that differs on every run makes cargo check each crate again, so every
    // macro expands again, without touching a source file: a newer mtime would also
    // make the next `cargo build` rebuild the crate and everything above it.
    let nonce = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_nanos();
    for krate in CRATES {
        let status = Command::new(&cargo)
            .current_dir(root)
            .args([
                "rustc",
                "--quiet",
                "--profile",
                "check",
                "--lib",
                "-p",
                krate,
            ])
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env("DATABASE_URL", url)
            .env("SQLX_OFFLINE", "false")
            .env("SQLX_OFFLINE_DIR", &out)
            .args(["--", "-A", "unexpected_cfgs", "--cfg"])
            .arg(format!("sqlx_check_run=\"{nonce}\""))
            .status()?;
        if !status.success() {
            eprintln!(
                "sqlx-check: checking `{krate}` against the migrated database failed ({status})"
            );
            return Ok(None);
        }
    }
    Ok(Some(read_dir(&out)?))
}

/// Asks the database at `url` to describe each checked-in query, as the query macros
/// do online, and compares the answer with the checked-in description. True when all
/// match; prints each difference otherwise.
async fn describe_all(url: &str, checked_in: &BTreeMap<String, Vec<u8>>) -> Result<bool, Error> {
    let mut conn = PgConnection::connect(url).await?;
    let mut differences = Vec::new();
    for (name, body) in checked_in {
        let data: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!(".sqlx/{name} is not JSON: {e}"))?;
        let Some(query) = data.get("query").and_then(serde_json::Value::as_str) else {
            differences.push(format!("{name}: no `query` in the file"));
            continue;
        };
        let hash = hex::encode(Sha256::digest(query.as_bytes()));
        if name != &format!("query-{hash}.json") {
            differences.push(format!(
                "{name}: named for another query text (hand-edited?)"
            ));
            continue;
        }
        let fresh = match (&mut conn).describe(query).await {
            Ok(d) => serde_json::to_value(&d)?,
            Err(e) => {
                differences.push(format!(
                    "{name}: the migrated schema refuses the query: {e}"
                ));
                continue;
            }
        };
        if data.get("describe") != Some(&fresh) {
            differences.push(format!(
                "{name}: out of date (the schema changed what the query reads or takes)"
            ));
        }
    }
    conn.close().await?;
    if differences.is_empty() {
        println!(
            "sqlx-check: .sqlx/ matches the {} queries",
            checked_in.len()
        );
        return Ok(true);
    }
    for d in &differences {
        eprintln!("sqlx-check: {d}");
    }
    eprintln!(
        "sqlx-check: the checked-in sqlx offline data is out of date: run `make sqlx-prepare` \
         and commit .sqlx/"
    );
    Ok(false)
}

/// Drops and recreates [`DATABASE`], then applies every migration.
async fn fresh_database(admin_url: &str, url: &str) -> Result<(), Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{DATABASE}\" WITH (FORCE)").as_str())
        .await?;
    admin
        .execute(format!("CREATE DATABASE \"{DATABASE}\"").as_str())
        .await?;
    admin.close().await?;
    let mut conn = PgConnection::connect(url).await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// The `query-*.json` files of a directory, by name.
fn read_dir(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("query-") && name.ends_with(".json") {
            files.insert(name, std::fs::read(entry.path())?);
        }
    }
    Ok(files)
}
