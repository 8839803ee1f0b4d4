//! A PostgreSQL 18 (+ pgvector) cluster managed by this process.
//!
//! Files next to the data directory `DATA`:
//! * `DATA.lock` — `flock`ed while [`EmbeddedPostgres::start`] / [`stop_dir`] run, so
//!   concurrent processes never race on `initdb`/startup/upgrade (the second one adopts).
//! * `DATA.password` — the superuser's password ([`password_file`]): random, generated
//!   once, mode 0600, owned by the user the server runs as. `pg_hba.conf` allows
//!   `scram-sha-256` only, the data directory is mode 0700, and the server listens on
//!   127.0.0.1 only (no Unix socket). [`EmbeddedPostgres::url`] carries the password.
//!   A data directory initialised with `trust` (as before) is upgraded in place on
//!   start, also while it runs (see `pgauth.rs` for the interruption-safe order).
//! * `DATA.log` — server log (default of [`PgOptions::log_file`]), appended to; rotated to
//!   `DATA.log.old` when it exceeds 16 MiB at start.
//! * `DATA.initdb-tmp` — transient: `initdb` runs there and is renamed to `DATA` when
//!   complete, so an interrupted `initdb` never leaves a half-initialised data directory.
//!
//! When the process runs as root the server runs as an unprivileged user (see
//! [`PgOptions::run_as`]); that user owns `DATA` and must be able to traverse every
//! ancestor directory of `DATA` and of the binaries. If it cannot, `start` fails with
//! [`EmbeddedError::NotTraversable`] naming the directory (no silent relocation).
//!
//! The parts: [`pidfile`] finds a cluster already running on the data directory (to
//! adopt), [`datadir`] initialises and prepares the data directory, [`process`] starts,
//! waits for and stops the server; the password handling is in `pgauth`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::pgauth::{self, Password};
use crate::pgcmd::{clear_libpq_env, sibling};
use crate::sys::{self, User};
use crate::{EmbeddedError, Result, wheel};

mod datadir;
mod pidfile;
mod process;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use pidfile::{PidState, Running};

/// Major version of the bundled server; data directories of other versions are refused.
pub const PG_MAJOR: &str = "18";

pub use crate::pgauth::password_file;
pub use crate::pgcmd::SUPERUSER;
pub use process::default_shared_buffers_mb;

/// What happens to the server when the [`EmbeddedPostgres`] handle goes away.
///
/// Either way, a cluster this process did not start (one that was already running on
/// the data directory, [`EmbeddedPostgres::adopted`]) is never stopped through the
/// handle: neither drop nor [`EmbeddedPostgres::stop`] touches it. Only the process that
/// started a cluster stops it (or [`stop_dir`], explicitly). Before, an `Owned` handle
/// stopped an adopted cluster too, so `pixsim-server migrate` pointed at the state dir
/// of a running server took that server's database down on exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lifetime {
    /// Stopped when the handle is dropped or [`EmbeddedPostgres::stop`] is called, and
    /// killed with this process (`PR_SET_PDEATHSIG` = `SIGINT`, i.e. a fast shutdown).
    /// The server gets its own process group so a terminal Ctrl-C reaches only us, letting
    /// us flush to the database before stopping it. An adopted cluster is left running.
    #[default]
    Owned,
    /// Keeps running after the handle is dropped and after this process exits (new
    /// session via `setsid`); stop it with [`stop_dir`]. An adopted cluster is left alone.
    Detached,
}

/// Options for [`EmbeddedPostgres::start`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Cluster data directory; created and initialised (`initdb`) when missing or empty,
    /// reused otherwise.
    pub data_dir: PathBuf,
    /// Wheel cache (see [`crate::default_cache_dir`]).
    pub cache_dir: PathBuf,
    /// TCP port on 127.0.0.1; 0 picks a free one. Ignored when adopting a running cluster.
    pub port: u16,
    /// User to run the server as when this process is root. Default: `postgres` if it
    /// exists, else `pixsim` (created with `useradd --system`), else `nobody`. Must be
    /// unset (or the current user) when not running as root.
    pub run_as: Option<String>,
    /// See [`Lifetime`].
    pub lifetime: Lifetime,
    /// How long to wait for the server to accept connections.
    pub start_timeout: Duration,
    /// Server log (stdout+stderr); default `<data_dir>.log`.
    pub log_file: Option<PathBuf>,
    /// Extra `-c name=value` settings, applied after the defaults
    /// (`listen_addresses=127.0.0.1`, `unix_socket_directories=''`, `max_connections=200`,
    /// `shared_buffers` from [`default_shared_buffers_mb`]).
    /// Tests typically pass `fsync=off`, `synchronous_commit=off`, `full_page_writes=off`.
    pub extra_settings: Vec<(String, String)>,
}

impl PgOptions {
    /// Defaults: default cache dir, free port, owned lifetime, 60 s start timeout.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            cache_dir: crate::default_cache_dir(),
            port: 0,
            run_as: None,
            lifetime: Lifetime::Owned,
            start_timeout: Duration::from_secs(60),
            log_file: None,
            extra_settings: Vec::new(),
        }
    }

    /// The settings used by the test suite: no fsync, no synchronous commit, no full pages.
    pub fn with_test_settings(mut self) -> Self {
        for (k, v) in [
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            // Creating a database from a template writes it to the WAL; keep the WAL small.
            ("max_wal_size", "128MB"),
            ("min_wal_size", "32MB"),
        ] {
            self.extra_settings.push((k.to_owned(), v.to_owned()));
        }
        self
    }
}

/// A running cluster (started by us or adopted). See [`Lifetime`] for what drop does.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    pginstall: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    pid: i32,
    /// Our child process (Owned lifetime, started by us).
    child: Option<Child>,
    /// The superuser's password (not shown by `Debug`).
    password: Password,
    lifetime: Lifetime,
    adopted: bool,
    initialized: bool,
    stopped: bool,
}

/// Where a cluster lives: the binaries, the data directory and the server log.
struct Site {
    pginstall: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
}

/// Resolves the data directory, the server user and the binaries (fetched on first
/// use), checks that the user can reach them, and creates the data directory's parent.
fn locate(opts: &PgOptions) -> Result<(PathBuf, Option<User>, PathBuf)> {
    if opts.data_dir.as_os_str().is_empty() {
        return Err(EmbeddedError::Config("data_dir is empty".into()));
    }
    let data_dir = sys::absolute(&opts.data_dir)?;
    let user = sys::resolve_server_user(opts.run_as.as_deref())?;
    let pginstall = wheel::ensure_pginstall(&opts.cache_dir)?;
    if let Some(user) = &user {
        sys::check_traversable(user, &pginstall.join("bin").join("postgres"), false)?;
        sys::check_traversable(user, &data_dir, false)?;
    }
    let parent = data_dir.parent().unwrap_or(Path::new("/")).to_path_buf();
    fs::create_dir_all(&parent)
        .map_err(|e| EmbeddedError::io("cannot create parent of data directory", &parent, e))?;
    if let Some(user) = &user {
        // Directories just created under a restrictive umask count too.
        sys::check_traversable(user, &data_dir, false)?;
    }
    Ok((data_dir, user, pginstall))
}

/// The server log's path (`DATA.log` by default), its directory created.
fn log_file(opts: &PgOptions, data_dir: &Path) -> Result<PathBuf> {
    let log_file = match &opts.log_file {
        Some(p) => sys::absolute(p)?,
        None => sibling(data_dir, ".log"),
    };
    if let Some(dir) = log_file.parent() {
        fs::create_dir_all(dir)
            .map_err(|e| EmbeddedError::io("cannot create log directory", dir, e))?;
    }
    Ok(log_file)
}

impl EmbeddedPostgres {
    /// Starts (or adopts) the cluster on `opts.data_dir`; blocks until it accepts
    /// connections. See the module docs for the files it uses.
    pub fn start(opts: PgOptions) -> Result<Self> {
        let (data_dir, user, pginstall) = locate(&opts)?;
        let _lock = sys::lock_exclusive(&sibling(&data_dir, ".lock"))?;
        let site = Site {
            log_file: log_file(&opts, &data_dir)?,
            pginstall,
            data_dir,
        };
        let deadline = Instant::now() + opts.start_timeout;
        match pidfile::settle(&site.data_dir, deadline, opts.start_timeout)? {
            Some(running) => Self::adopt(site, running, &opts, deadline),
            None => Self::start_new(site, user.as_ref(), &opts, deadline),
        }
    }

    /// Takes a cluster already running on the data directory: waits until it is ready,
    /// secures it (see `pgauth`) and checks the password. Never stopped by this handle.
    fn adopt(site: Site, running: Running, opts: &PgOptions, deadline: Instant) -> Result<Self> {
        let Running { pid, port } = running;
        if opts.port != 0 && opts.port != port {
            tracing::warn!(
                "adopting running cluster on port {port} (requested {})",
                opts.port
            );
        }
        tracing::info!(
            "adopting running postgres (pid {pid}) on 127.0.0.1:{port}, data {}",
            site.data_dir.display()
        );
        process::wait_ready(
            &site.pginstall,
            port,
            pid,
            None,
            deadline,
            opts.start_timeout,
            &site.log_file,
        )?;
        let password = pgauth::secure_running(&site.pginstall, &site.data_dir, port)?;
        pgauth::verify(&site.pginstall, &site.data_dir, port, &password)?;
        Ok(Self {
            pginstall: site.pginstall,
            data_dir: site.data_dir,
            log_file: site.log_file,
            port,
            pid,
            child: None,
            password,
            lifetime: opts.lifetime,
            adopted: true,
            initialized: false,
            stopped: false,
        })
    }

    /// Initialises the data directory when needed, secures it, and starts the server;
    /// on a free port (`opts.port` 0) a port taken meanwhile is retried on another.
    fn start_new(
        site: Site,
        user: Option<&User>,
        opts: &PgOptions,
        deadline: Instant,
    ) -> Result<Self> {
        let initialized = datadir::init_if_needed(&site.pginstall, &site.data_dir, user)?;
        datadir::prepare_data_dir(&site.data_dir, user)?;
        let password = pgauth::secure_stopped(&site.pginstall, &site.data_dir, user)?;
        datadir::rotate_log(&site.log_file);
        let mut attempt = 0;
        let (child, pid, port) = loop {
            attempt += 1;
            let port = match opts.port {
                0 => sys::free_port()
                    .map_err(|e| EmbeddedError::io("cannot find a free port", "127.0.0.1", e))?,
                p => p,
            };
            match launch(&site, port, opts, user, &password, deadline) {
                Ok((child, pid)) => break (child, pid, port),
                Err(err)
                    if opts.port == 0
                        && process::is_bind_failure(&err)
                        && attempt < 5
                        && Instant::now() < deadline =>
                {
                    tracing::warn!("port {port} was taken, retrying on another port");
                }
                Err(err) => return Err(err),
            }
        };
        tracing::info!(
            "postgres listening on 127.0.0.1:{port} (pid {pid}, data {})",
            site.data_dir.display()
        );
        let child = match opts.lifetime {
            Lifetime::Owned => Some(child),
            Lifetime::Detached => {
                process::reap_in_background(child);
                None
            }
        };
        Ok(Self {
            pginstall: site.pginstall,
            data_dir: site.data_dir,
            log_file: site.log_file,
            port,
            pid,
            child,
            password,
            lifetime: opts.lifetime,
            adopted: false,
            initialized,
            stopped: false,
        })
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/database`, the password
    /// percent-encoded. It is a secret: log [`EmbeddedPostgres::redacted_url`] instead.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password.url_encoded(),
            self.port
        )
    }

    /// [`EmbeddedPostgres::url`] with `***` for the password, for logs and messages.
    pub fn redacted_url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:***@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The file holding the superuser's password (mode 0600), see [`password_file`].
    pub fn password_file(&self) -> PathBuf {
        password_file(&self.data_dir)
    }

    /// The `pginstall` directory (`bin/`, `lib/`, `share/`).
    pub fn pginstall(&self) -> &Path {
        &self.pginstall
    }

    /// The (absolute) data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Server log file (for an adopted cluster: our default log path, which may be stale).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Process id of the postmaster.
    pub fn pid(&self) -> u32 {
        u32::try_from(self.pid).unwrap_or_default()
    }

    /// True when this handle adopted a cluster that was already running (started by
    /// another process or handle). Such a cluster is never stopped through this handle.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// True when `initdb` ran during this `start` (fresh data directory).
    pub fn freshly_initialized(&self) -> bool {
        self.initialized
    }

    /// The lifetime this handle was started with.
    pub fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    /// A `psql` command connected to `database` as the superuser (`-X -v ON_ERROR_STOP=1`),
    /// the password in its environment (`PGPASSWORD`, never on the command line).
    pub fn psql(&self, database: &str) -> Command {
        let mut cmd = Command::new(self.pginstall.join("bin").join("psql"));
        cmd.args(["-X", "-w", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", SUPERUSER, "-d", database]);
        clear_libpq_env(&mut cmd);
        cmd.env("PGPASSFILE", "/dev/null")
            .env("PGPASSWORD", self.password.as_str());
        cmd
    }

    /// Stops the cluster now if this handle started it, whatever the lifetime (an
    /// explicit stop also stops a detached cluster): `SIGINT` (fast shutdown), up to 10 s,
    /// then `SIGQUIT`, then `SIGKILL`. An adopted cluster is left running (see
    /// [`Lifetime`]; [`stop_dir`] stops any cluster). Dropping the handle afterwards does
    /// nothing.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if self.adopted {
            tracing::info!(
                "leaving postgres (pid {}) on port {} running: this process adopted it and \
                 did not start it",
                self.pid,
                self.port
            );
            return Ok(());
        }
        tracing::info!("stopping postgres (pid {}) on port {}", self.pid, self.port);
        let result = process::shutdown(self.pid);
        if let Some(mut child) = self.child.take() {
            // Reaped already by shutdown() in the normal case; this only reaps stragglers.
            let _ = child.try_wait();
        }
        result.map(drop)
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if self.lifetime == Lifetime::Owned
            && !self.adopted
            && let Err(e) = self.stop_inner()
        {
            tracing::warn!("stopping postgres on drop: {e}");
        }
    }
}

/// Stops the cluster running on `data_dir` (read from its `postmaster.pid`). Returns true
/// if one was running and has been stopped; a stale pid file is removed.
pub fn stop_dir(data_dir: &Path) -> Result<bool> {
    let data_dir = sys::absolute(data_dir)?;
    if !data_dir.exists() {
        return Ok(false);
    }
    let _lock = sys::lock_exclusive(&sibling(&data_dir, ".lock"))?;
    match pidfile::inspect(&data_dir) {
        PidState::None => Ok(false),
        PidState::Stale(_) => {
            let _ = fs::remove_file(data_dir.join("postmaster.pid"));
            Ok(false)
        }
        PidState::Running { pid, .. } => {
            tracing::info!("stopping postgres (pid {pid}) on {}", data_dir.display());
            process::shutdown(pid)
        }
    }
}

/// Port of the cluster running on `data_dir`, if one is running (and not shutting down).
pub fn status(data_dir: &Path) -> Option<u16> {
    let data_dir = sys::absolute(data_dir).ok()?;
    match pidfile::inspect(&data_dir) {
        PidState::Running {
            port: Some(port),
            stopping: false,
            ..
        } => Some(port),
        _ => None,
    }
}

/// Starts the server on `port` and waits until it accepts the password; a server that
/// did not get there is stopped and reaped before the error is returned.
fn launch(
    site: &Site,
    port: u16,
    opts: &PgOptions,
    user: Option<&User>,
    password: &Password,
    deadline: Instant,
) -> Result<(Child, i32)> {
    let mut child = process::spawn_postgres(
        &site.pginstall,
        &site.data_dir,
        port,
        opts,
        user,
        &site.log_file,
    )?;
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let ready = process::wait_ready(
        &site.pginstall,
        port,
        pid,
        Some(&mut child),
        deadline,
        opts.start_timeout,
        &site.log_file,
    )
    .and_then(|()| pgauth::verify(&site.pginstall, &site.data_dir, port, password));
    match ready {
        Ok(()) => Ok((child, pid)),
        Err(err) => {
            if sys::pid_alive(pid) {
                let _ = process::shutdown(pid);
            }
            let _ = child.wait();
            Err(err)
        }
    }
}
