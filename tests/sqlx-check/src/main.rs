//! `cargo run -p sqlx-check [-- prepare]`: the sqlx offline data in `.sqlx/` (at the
//! workspace root) against the schema the migrations make.
//!
//! It starts an embedded PostgreSQL of its own (data under the system temp dir, one per
//! checkout, stopped on exit), makes a fresh database with every migration of
//! `migrations/` applied, and runs `cargo check` on the crates that use the query macros
//! ONLINE against it (`DATABASE_URL`, `SQLX_OFFLINE=false`), with `SQLX_OFFLINE_DIR`
//! pointing at an empty directory where the macros write one `query-<hash>.json` per
//! query. It checks them in the build's own target dir (`cargo rustc --profile check`
//! with a `--cfg` that changes every run, so every macro expands again while the
//! sources and the build's other artifacts are left as they are).
//!
//! - no argument: fails, naming the differences, when that directory and `.sqlx/` differ
//!   (a query added, changed or removed without regenerating; a migration that changes
//!   a column a query reads);
//! - `prepare`: replaces `.sqlx/` with it (`make sqlx-prepare`).

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

    // The build's own target dir: the dependencies `make lint` or an earlier run checked
    // are reused, and only the crates below are checked again.
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
            .current_dir(&root)
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
            .env("DATABASE_URL", &url)
            .env("SQLX_OFFLINE", "false")
            .env("SQLX_OFFLINE_DIR", &out)
            .args(["--", "-A", "unexpected_cfgs", "--cfg"])
            .arg(format!("sqlx_check_run=\"{nonce}\""))
            .status()?;
        if !status.success() {
            eprintln!(
                "sqlx-check: checking `{krate}` against the migrated database failed ({status})"
            );
            return Ok(false);
        }
    }
    let fresh = read_dir(&out)?;
    let checked_in_dir = root.join(".sqlx");
    let ok = if prepare {
        if checked_in_dir.exists() {
            std::fs::remove_dir_all(&checked_in_dir)?;
        }
        std::fs::create_dir_all(&checked_in_dir)?;
        for (name, body) in &fresh {
            std::fs::write(checked_in_dir.join(name), body)?;
        }
        println!("sqlx-check: wrote {} queries to .sqlx/", fresh.len());
        true
    } else {
        let checked_in = if checked_in_dir.exists() {
            read_dir(&checked_in_dir)?
        } else {
            BTreeMap::new()
        };
        compare(&fresh, &checked_in)
    };
    drop(pg);
    eprintln!(
        "sqlx-check: {} queries, {:.1} s",
        fresh.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ok)
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

/// True when both sets are equal; prints each difference otherwise.
fn compare(fresh: &BTreeMap<String, Vec<u8>>, checked_in: &BTreeMap<String, Vec<u8>>) -> bool {
    let mut differences = Vec::new();
    for (name, body) in fresh {
        match checked_in.get(name) {
            None => differences.push(format!(
                "missing from .sqlx/: {name} (a new or changed query)"
            )),
            Some(old) if old != body => differences.push(format!(
                "out of date in .sqlx/: {name} (the schema changed)"
            )),
            Some(_) => {}
        }
    }
    for name in checked_in.keys() {
        if !fresh.contains_key(name) {
            differences.push(format!(
                "stale in .sqlx/: {name} (no query has it any more)"
            ));
        }
    }
    if differences.is_empty() {
        println!("sqlx-check: .sqlx/ matches the {} queries", fresh.len());
        return true;
    }
    for d in &differences {
        eprintln!("sqlx-check: {d}");
    }
    eprintln!(
        "sqlx-check: the checked-in sqlx offline data is out of date: run `make sqlx-prepare` \
         and commit .sqlx/"
    );
    false
}
