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

use std::fs::{self, OpenOptions};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pgauth::{self, Password};
use crate::sys::{self, User};
use crate::{EmbeddedError, Result, wheel};

/// Major version of the bundled server; data directories of other versions are refused.
pub const PG_MAJOR: &str = "18";
/// Superuser created by `initdb` (password authentication on 127.0.0.1).
pub const SUPERUSER: &str = "postgres";

pub use crate::pgauth::password_file;

const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
const STOP_GRACE: Duration = Duration::from_secs(10);

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
    /// (`listen_addresses=127.0.0.1`, `unix_socket_directories=''`, `max_connections=200`).
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

impl EmbeddedPostgres {
    /// Starts (or adopts) the cluster on `opts.data_dir`; blocks until it accepts
    /// connections. See the module docs for the files it uses.
    pub fn start(opts: PgOptions) -> Result<Self> {
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
        let _lock = sys::lock_exclusive(&sibling(&data_dir, ".lock"))?;
        let log_file = match &opts.log_file {
            Some(p) => sys::absolute(p)?,
            None => sibling(&data_dir, ".log"),
        };
        if let Some(dir) = log_file.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| EmbeddedError::io("cannot create log directory", dir, e))?;
        }

        // A cluster may already run on this data directory.
        let deadline = Instant::now() + opts.start_timeout;
        loop {
            match inspect(&data_dir) {
                PidState::None => break,
                PidState::Stale(pid) => {
                    tracing::warn!(
                        "removing stale {}/postmaster.pid (pid {pid} is not a live postgres)",
                        data_dir.display()
                    );
                    let pidfile = data_dir.join("postmaster.pid");
                    fs::remove_file(&pidfile)
                        .or_else(ignore_not_found)
                        .map_err(|e| {
                            EmbeddedError::io("cannot remove stale postmaster.pid", &pidfile, e)
                        })?;
                    break;
                }
                PidState::Running {
                    pid,
                    port,
                    stopping,
                } => {
                    if stopping || port.is_none() {
                        // Shutting down or still writing its pid file: wait and re-check.
                        if Instant::now() >= deadline {
                            return Err(EmbeddedError::DataDir {
                                path: data_dir,
                                reason: format!(
                                    "postgres pid {pid} is using it but neither finished \
                                     starting nor stopping within {:?}",
                                    opts.start_timeout
                                ),
                            });
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    let port = port.unwrap_or_default();
                    if opts.port != 0 && opts.port != port {
                        tracing::warn!(
                            "adopting running cluster on port {port} (requested {})",
                            opts.port
                        );
                    }
                    tracing::info!(
                        "adopting running postgres (pid {pid}) on 127.0.0.1:{port}, data {}",
                        data_dir.display()
                    );
                    wait_ready(
                        &pginstall,
                        port,
                        pid,
                        None,
                        deadline,
                        opts.start_timeout,
                        &log_file,
                    )?;
                    let password = pgauth::secure_running(&pginstall, &data_dir, port)?;
                    pgauth::verify(&pginstall, &data_dir, port, &password)?;
                    return Ok(Self {
                        pginstall,
                        data_dir,
                        log_file,
                        port,
                        pid,
                        child: None,
                        password,
                        lifetime: opts.lifetime,
                        adopted: true,
                        initialized: false,
                        stopped: false,
                    });
                }
            }
        }

        let initialized = init_if_needed(&pginstall, &data_dir, user.as_ref())?;
        prepare_data_dir(&data_dir, user.as_ref())?;
        let password = pgauth::secure_stopped(&pginstall, &data_dir, user.as_ref())?;
        rotate_log(&log_file);

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match opts.port {
                0 => sys::free_port()
                    .map_err(|e| EmbeddedError::io("cannot find a free port", "127.0.0.1", e))?,
                p => p,
            };
            let mut child =
                spawn_postgres(&pginstall, &data_dir, port, &opts, user.as_ref(), &log_file)?;
            let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
            let ready = wait_ready(
                &pginstall,
                port,
                pid,
                Some(&mut child),
                deadline,
                opts.start_timeout,
                &log_file,
            )
            .and_then(|()| pgauth::verify(&pginstall, &data_dir, port, &password));
            match ready {
                Ok(()) => {
                    tracing::info!(
                        "postgres listening on 127.0.0.1:{port} (pid {pid}, data {})",
                        data_dir.display()
                    );
                    let child = match opts.lifetime {
                        Lifetime::Owned => Some(child),
                        Lifetime::Detached => {
                            reap_in_background(child);
                            None
                        }
                    };
                    return Ok(Self {
                        pginstall,
                        data_dir,
                        log_file,
                        port,
                        pid,
                        child,
                        password: password.clone(),
                        lifetime: opts.lifetime,
                        adopted: false,
                        initialized,
                        stopped: false,
                    });
                }
                Err(err) => {
                    if sys::pid_alive(pid) {
                        let _ = shutdown(pid);
                    }
                    let _ = child.wait();
                    let bind_failure = matches!(&err, EmbeddedError::Exited { log_tail, .. }
                        if log_tail.contains("could not bind") || log_tail.contains("Address already in use")
                            || log_tail.contains("could not create any TCP/IP sockets"));
                    if opts.port == 0 && bind_failure && attempt < 5 && Instant::now() < deadline {
                        tracing::warn!("port {port} was taken, retrying on another port");
                        continue;
                    }
                    return Err(err);
                }
            }
        }
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
        let result = shutdown(self.pid);
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
    match inspect(&data_dir) {
        PidState::None => Ok(false),
        PidState::Stale(_) => {
            let _ = fs::remove_file(data_dir.join("postmaster.pid"));
            Ok(false)
        }
        PidState::Running { pid, .. } => {
            tracing::info!("stopping postgres (pid {pid}) on {}", data_dir.display());
            shutdown(pid)
        }
    }
}

/// Port of the cluster running on `data_dir`, if one is running (and not shutting down).
pub fn status(data_dir: &Path) -> Option<u16> {
    let data_dir = sys::absolute(data_dir).ok()?;
    match inspect(&data_dir) {
        PidState::Running {
            port: Some(port),
            stopping: false,
            ..
        } => Some(port),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------

/// `DATA` + suffix, e.g. `/x/pgdata.lock`.
pub(crate) fn sibling(data_dir: &Path, suffix: &str) -> PathBuf {
    let mut s = data_dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn ignore_not_found(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

enum PidState {
    /// No `postmaster.pid`.
    None,
    /// `postmaster.pid` whose process is dead or is not a postgres on this data dir.
    Stale(i32),
    Running {
        pid: i32,
        port: Option<u16>,
        stopping: bool,
    },
}

fn inspect(data_dir: &Path) -> PidState {
    let Ok(text) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return PidState::None;
    };
    let lines: Vec<&str> = text.lines().collect();
    let pid = lines
        .first()
        .and_then(|l| l.trim().parse::<i32>().ok())
        .unwrap_or(0);
    if pid <= 0 || !sys::pid_alive(pid) || !is_postgres_on(pid, data_dir) {
        return PidState::Stale(pid);
    }
    let port = lines.get(3).and_then(|l| l.trim().parse::<u16>().ok());
    let stopping = lines.get(7).is_some_and(|l| l.trim() == "stopping");
    PidState::Running {
        pid,
        port,
        stopping,
    }
}

/// Is `pid` a postgres process (per /proc comm or cmdline) whose cwd is `data_dir`
/// (checked only when /proc/PID/cwd is readable)?
fn is_postgres_on(pid: i32, data_dir: &Path) -> bool {
    let comm_ok = fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().starts_with("postgres"))
        .unwrap_or(false);
    let cmdline_ok = || {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
                let argv0 = String::from_utf8_lossy(argv0);
                argv0
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .starts_with("postgres")
            })
            .unwrap_or(false)
    };
    if !comm_ok && !cmdline_ok() {
        return false;
    }
    // The postmaster chdirs into its data directory.
    match (
        fs::read_link(format!("/proc/{pid}/cwd")),
        fs::canonicalize(data_dir),
    ) {
        (Ok(cwd), Ok(dir)) => cwd == dir,
        _ => true,
    }
}

fn rotate_log(log_file: &Path) {
    if fs::metadata(log_file).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = fs::rename(log_file, sibling(log_file, ".old"));
    }
}

pub(crate) fn clear_libpq_env(cmd: &mut Command) {
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGOPTIONS",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGSSLMODE",
        "PGPASSFILE",
        "PGPASSWORD",
        "PGDATA",
    ] {
        cmd.env_remove(var);
    }
}

/// Applies the uid/gid switch (when `user` is set) and a neutral cwd/locale.
pub(crate) fn as_server_user(cmd: &mut Command, user: Option<&User>) {
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
        cmd.env("USER", &user.name).env("LOGNAME", &user.name);
    }
    cmd.current_dir("/").env("LC_ALL", "C");
    clear_libpq_env(cmd);
}

fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

/// Runs `initdb` unless `data_dir` already holds a cluster. Returns true if it ran.
fn init_if_needed(pginstall: &Path, data_dir: &Path, user: Option<&User>) -> Result<bool> {
    let version_file = data_dir.join("PG_VERSION");
    if version_file.exists() {
        let version = fs::read_to_string(&version_file)
            .map_err(|e| EmbeddedError::io("cannot read", &version_file, e))?;
        if version.trim() != PG_MAJOR {
            return Err(EmbeddedError::DataDir {
                path: data_dir.to_path_buf(),
                reason: format!(
                    "initialised by PostgreSQL {}, but the embedded server is {PG_MAJOR}; \
                     dump and restore it, or use a new data directory",
                    version.trim()
                ),
            });
        }
        return Ok(false);
    }
    let exists = data_dir.exists();
    if exists
        && !is_empty_dir(data_dir)
            .map_err(|e| EmbeddedError::io("cannot read data directory", data_dir, e))?
    {
        return Err(EmbeddedError::DataDir {
            path: data_dir.to_path_buf(),
            reason: "not empty and not a PostgreSQL data directory (no PG_VERSION)".into(),
        });
    }

    let tmp = sibling(data_dir, ".initdb-tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp)
            .map_err(|e| EmbeddedError::io("cannot remove leftover initdb directory", &tmp, e))?;
    }
    let pwfile = pgauth::ensure_password_file(data_dir, user)?;
    run_initdb(pginstall, &tmp, user, &pwfile)?;
    if let Err(e) = fs::rename(&tmp, data_dir) {
        // E.g. DATA is a mount point: initialise in place instead.
        tracing::warn!(
            "cannot rename {} to {} ({e}); running initdb in place",
            tmp.display(),
            data_dir.display()
        );
        let _ = fs::remove_dir_all(&tmp);
        run_initdb(pginstall, data_dir, user, &pwfile)?;
    }
    Ok(true)
}

/// `initdb` with the superuser's password read from `pwfile` (by `user`) and
/// `scram-sha-256` for every connection: there is never a `trust` line.
fn run_initdb(pginstall: &Path, dir: &Path, user: Option<&User>, pwfile: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| EmbeddedError::io("cannot create data directory", dir, e))?;
    }
    prepare_data_dir(dir, user)?;
    tracing::info!("initdb {}", dir.display());
    let mut cmd = Command::new(pginstall.join("bin").join("initdb"));
    cmd.arg("-D")
        .arg(dir)
        .args(["-U", SUPERUSER])
        .arg(format!("--auth={}", pgauth::METHOD))
        .arg("--pwfile")
        .arg(pwfile)
        .args(["-E", "UTF8", "--no-locale"]);
    as_server_user(&mut cmd, user);
    sys::run_checked(&mut cmd, "")?;
    Ok(())
}

/// Owner = server user, mode 0700 (postgres refuses world-accessible data dirs; we do
/// not allow group access either).
fn prepare_data_dir(dir: &Path, user: Option<&User>) -> Result<()> {
    let meta = fs::metadata(dir).map_err(|e| EmbeddedError::io("cannot stat", dir, e))?;
    if let Some(user) = user
        && (meta.uid() != user.uid || meta.gid() != user.gid)
    {
        tracing::info!("chown -R {} {}", user.name, dir.display());
        sys::chown_recursive(dir, user.uid, user.gid)
            .map_err(|e| EmbeddedError::io(format!("cannot chown to {}", user.name), dir, e))?;
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| EmbeddedError::io("cannot chmod 0700", dir, e))?;
    }
    Ok(())
}

fn spawn_postgres(
    pginstall: &Path,
    data_dir: &Path,
    port: u16,
    opts: &PgOptions,
    user: Option<&User>,
    log_file: &Path,
) -> Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .map_err(|e| EmbeddedError::io("cannot open server log", log_file, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| EmbeddedError::io("cannot open server log", log_file, e))?;
    let mut cmd = Command::new(pginstall.join("bin").join("postgres"));
    cmd.arg("-D").arg(data_dir).arg("-p").arg(port.to_string());
    let defaults = [
        ("listen_addresses", "127.0.0.1"),
        ("unix_socket_directories", ""),
        ("max_connections", "200"),
    ];
    for (k, v) in defaults {
        cmd.arg("-c").arg(format!("{k}={v}"));
    }
    for (k, v) in &opts.extra_settings {
        cmd.arg("-c").arg(format!("{k}={v}"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    as_server_user(&mut cmd, user);
    match opts.lifetime {
        Lifetime::Owned => {
            cmd.process_group(0);
            sys::set_parent_death_signal(&mut cmd, libc::SIGINT);
        }
        Lifetime::Detached => sys::set_new_session(&mut cmd),
    }
    let desc = sys::describe(&cmd);
    tracing::info!("starting {desc}");
    sys::spawn(cmd).map_err(|source| EmbeddedError::Spawn {
        command: desc,
        hint: String::new(),
        source,
    })
}

fn reap_in_background(mut child: Child) {
    let _ = std::thread::Builder::new()
        .name("pg-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        });
}

/// Polls TCP connect + `pg_isready` until the server accepts connections.
fn wait_ready(
    pginstall: &Path,
    port: u16,
    pid: i32,
    mut child: Option<&mut Child>,
    deadline: Instant,
    timeout: Duration,
    log: &Path,
) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let exited = match child.as_deref_mut() {
            Some(c) => c.try_wait().ok().flatten().map(|s| s.to_string()),
            None => (!sys::pid_alive(pid)).then(|| "process gone".to_owned()),
        };
        if let Some(status) = exited {
            return Err(EmbeddedError::Exited {
                what: format!("postgres (pid {pid}, port {port})"),
                status,
                log: log.to_path_buf(),
                log_tail: sys::log_tail(log, 30),
            });
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            && pg_isready(pginstall, port)?
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(EmbeddedError::StartTimeout {
                what: format!("postgres (pid {pid})"),
                port,
                timeout,
                log: log.to_path_buf(),
                log_tail: sys::log_tail(log, 30),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pg_isready(pginstall: &Path, port: u16) -> Result<bool> {
    let mut cmd = Command::new(pginstall.join("bin").join("pg_isready"));
    cmd.args(["-q", "-t", "3", "-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", SUPERUSER, "-d", "postgres"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    clear_libpq_env(&mut cmd);
    let status = cmd.status().map_err(|source| EmbeddedError::Spawn {
        command: sys::describe(&cmd),
        hint: String::new(),
        source,
    })?;
    Ok(status.success())
}

/// Fast shutdown of the postmaster `pid`: SIGINT, then SIGQUIT, then SIGKILL.
/// Returns true if a process was running.
fn shutdown(pid: i32) -> Result<bool> {
    if !sys::pid_alive(pid) {
        sys::try_reap(pid);
        return Ok(false);
    }
    for (sig, grace) in [
        (libc::SIGINT, STOP_GRACE),
        (libc::SIGQUIT, Duration::from_secs(5)),
        (libc::SIGKILL, Duration::from_secs(5)),
    ] {
        if sig != libc::SIGINT {
            tracing::warn!("postgres pid {pid} still running, sending signal {sig}");
        }
        if !sys::send_signal(pid, sig) && !sys::pid_alive(pid) {
            return Ok(true);
        }
        if sys::wait_gone(pid, grace) {
            return Ok(true);
        }
    }
    Err(EmbeddedError::io(
        "postgres did not exit after SIGKILL",
        format!("/proc/{pid}"),
        io::Error::from(io::ErrorKind::TimedOut),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A temp dir the unprivileged server user can traverse (tempfile makes 0700 dirs).
    fn state_dir() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        tmp
    }

    fn opts(data: &Path) -> PgOptions {
        PgOptions::new(data).with_test_settings()
    }

    fn psql(pg: &EmbeddedPostgres, sql: &str) -> String {
        let out = pg
            .psql("postgres")
            .args(["-A", "-t", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn proc_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn owned_start_vector_stop() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(pg.freshly_initialized());
        assert!(!pg.adopted());
        assert_ne!(pg.port(), 0);
        let password = fs::read_to_string(pg.password_file()).unwrap();
        assert_eq!(
            pg.url("app"),
            format!(
                "postgres://postgres:{}@127.0.0.1:{}/app",
                password.trim(),
                pg.port()
            )
        );
        assert_eq!(status(&data), Some(pg.port()));
        // Exactly the command from the brief, with the password.
        let out = Command::new(pg.pginstall().join("bin/psql"))
            .env("PGPASSWORD", password.trim())
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port().to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-A", "-t", "-c"])
            .arg("CREATE EXTENSION vector; SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().last().unwrap().trim(), "1", "{stdout}");
        assert!(psql(&pg, "SHOW fsync") == "off");
        assert!(psql(&pg, "SHOW max_connections") == "200");
        assert!(psql(&pg, "SHOW server_version").starts_with("18."));
        if sys::is_root() {
            // The server must not run as root.
            let uid = fs::metadata(format!("/proc/{}", pg.pid())).unwrap().uid();
            assert_ne!(uid, 0);
        }
        let pid = pg.pid();
        assert!(proc_exists(pid));
        pg.stop().unwrap();
        assert!(
            !proc_exists(pid),
            "postgres pid {pid} still exists after stop"
        );
        assert_eq!(status(&data), None);
        assert!(!data.join("postmaster.pid").exists());
    }

    #[test]
    fn restart_reuses_data_dir_and_drop_stops() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(pg.freshly_initialized());
        psql(
            &pg,
            "CREATE TABLE keep_me (v int); INSERT INTO keep_me VALUES (42)",
        );
        let pid = pg.pid();
        drop(pg);
        assert!(!proc_exists(pid));

        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(
            !pg.freshly_initialized(),
            "second start must not initdb again"
        );
        assert!(!pg.adopted());
        assert_eq!(psql(&pg, "SELECT v FROM keep_me"), "42");
        let pid = pg.pid();
        drop(pg);
        assert!(!proc_exists(pid));
    }

    #[test]
    fn stale_postmaster_pid_is_removed() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        let port = pg.port();
        pg.stop().unwrap();

        // A pid that is certainly dead: a reaped child of ours.
        let mut dead = Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let fake = format!(
            "{dead_pid}\n{}\n1700000000\n{port}\n\n127.0.0.1\n  1234567  7\nready   \n",
            data.display()
        );
        fs::write(data.join("postmaster.pid"), &fake).unwrap();
        assert_eq!(status(&data), None);
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(!pg.adopted());
        assert_eq!(psql(&pg, "SELECT 1"), "1");
        pg.stop().unwrap();

        // A live pid that is not postgres (this test process) is stale too.
        let fake = fake.replacen(&dead_pid.to_string(), &std::process::id().to_string(), 1);
        fs::write(data.join("postmaster.pid"), fake).unwrap();
        assert_eq!(status(&data), None);
        assert!(!stop_dir(&data).unwrap());
        assert!(!data.join("postmaster.pid").exists());
    }

    #[test]
    fn detached_survives_drop_and_is_adopted() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let mut o = opts(&data);
        o.lifetime = Lifetime::Detached;
        let pg = EmbeddedPostgres::start(o.clone()).unwrap();
        let (pid, port) = (pg.pid(), pg.port());
        drop(pg);
        assert!(
            sys::pid_alive(pid as i32),
            "detached postgres died with its handle"
        );
        assert_eq!(status(&data), Some(port));

        // A second start (e.g. another test process) adopts it; dropping leaves it running.
        let again = EmbeddedPostgres::start(o).unwrap();
        assert!(again.adopted());
        assert_eq!((again.pid(), again.port()), (pid, port));
        assert_eq!(psql(&again, "SELECT 2"), "2");
        drop(again);
        assert_eq!(status(&data), Some(port));

        assert!(stop_dir(&data).unwrap());
        assert!(!sys::pid_alive(pid as i32));
        assert_eq!(status(&data), None);
        assert!(!stop_dir(&data).unwrap());
    }

    /// Item 9 of issue #18: `pixsim-server migrate` on the state dir of a running server
    /// adopted its cluster with an `Owned` handle and stopped it on exit, taking the
    /// server's database away. An adopter never stops a cluster it did not start.
    #[test]
    fn adopter_never_stops_the_cluster() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        // The server's cluster, started here (Owned) ...
        let server = EmbeddedPostgres::start(opts(&data)).unwrap();
        let pid = server.pid();
        assert!(!server.adopted());
        // ... and a CLI command adopting it, with an Owned handle of its own.
        let cli = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(cli.adopted());
        assert_eq!((cli.pid(), cli.port()), (pid, server.port()));
        assert_eq!(cli.url("postgres"), server.url("postgres"));
        assert_eq!(psql(&cli, "SELECT 3"), "3");
        drop(cli);
        assert!(
            sys::pid_alive(pid as i32),
            "the adopter's drop stopped the cluster"
        );
        assert_eq!(status(&data), Some(server.port()));
        assert_eq!(psql(&server, "SELECT 4"), "4");
        // An explicit stop through an adopted handle leaves it running too.
        let cli = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(cli.adopted());
        cli.stop().unwrap();
        assert!(
            sys::pid_alive(pid as i32),
            "the adopter's stop() stopped the cluster"
        );
        assert_eq!(psql(&server, "SELECT 5"), "5");
        // The process that started it stops it.
        drop(server);
        assert!(!sys::pid_alive(pid as i32));
        assert_eq!(status(&data), None);

        // Same for a detached cluster adopted by an Owned handle.
        let mut o = opts(&data);
        o.lifetime = Lifetime::Detached;
        let first = EmbeddedPostgres::start(o).unwrap();
        let pid = first.pid();
        drop(first);
        let owned = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(owned.adopted());
        drop(owned);
        assert!(sys::pid_alive(pid as i32));
        assert!(stop_dir(&data).unwrap());
        assert!(!sys::pid_alive(pid as i32));
    }

    #[test]
    fn parallel_starts_share_one_cluster() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let mut o = opts(&data);
                o.lifetime = Lifetime::Detached;
                std::thread::spawn(move || EmbeddedPostgres::start(o).unwrap())
            })
            .collect();
        let pgs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(pgs.iter().filter(|p| !p.adopted()).count(), 1);
        assert!(pgs.iter().all(|p| p.port() == pgs[0].port()));
        drop(pgs);
        assert!(stop_dir(&data).unwrap());
    }

    /// Child-process half of the lifetime tests below: starts postgres from a short-lived
    /// thread (like a tokio blocking-pool thread), prints `PID PORT`, then sleeps.
    #[test]
    #[ignore = "helper, run by other tests in a child process"]
    fn helper_child_process() {
        let Some(data) = std::env::var_os("EMBEDDED_TEST_CHILD_DATA") else {
            return;
        };
        let detached = std::env::var_os("EMBEDDED_TEST_CHILD_DETACHED").is_some();
        let pg = std::thread::spawn(move || {
            let mut o = opts(Path::new(&data));
            if detached {
                o.lifetime = Lifetime::Detached;
            }
            EmbeddedPostgres::start(o).unwrap()
        })
        .join()
        .unwrap();
        println!("PGINFO {} {}", pg.pid(), pg.port());
        if detached {
            drop(pg);
            return;
        }
        std::thread::sleep(Duration::from_secs(2)); // spawning thread is long gone
        println!("PGALIVE {}", sys::pid_alive(pg.pid() as i32));
        std::thread::sleep(Duration::from_secs(600));
    }

    /// Kills the helper process if a test assertion fails before it is reaped.
    struct KillOnDrop(Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn spawn_helper(
        data: &Path,
        detached: bool,
    ) -> (KillOnDrop, std::io::BufReader<std::process::ChildStdout>) {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "postgres::tests::helper_child_process",
            "--ignored",
            "--nocapture",
        ])
        .env("EMBEDDED_TEST_CHILD_DATA", data)
        .stdout(Stdio::piped());
        if detached {
            cmd.env("EMBEDDED_TEST_CHILD_DETACHED", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        (KillOnDrop(child), out)
    }

    fn read_tagged(out: &mut impl std::io::BufRead, tag: &str) -> Vec<String> {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "helper ended before {tag}"
            );
            if let Some(rest) = line.trim().strip_prefix(tag) {
                return rest.split_whitespace().map(str::to_owned).collect();
            }
        }
    }

    #[test]
    fn owned_dies_with_sigkilled_parent_not_with_spawning_thread() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let (mut child, mut out) = spawn_helper(&data, false);
        let info = read_tagged(&mut out, "PGINFO");
        let pid: i32 = info[0].parse().unwrap();
        assert_eq!(read_tagged(&mut out, "PGALIVE"), ["true"]);
        assert_eq!(status(&data), Some(info[1].parse().unwrap()));
        child.0.kill().unwrap(); // SIGKILL: no Drop runs
        child.0.wait().unwrap();
        assert!(
            sys::wait_gone(pid, Duration::from_secs(15)),
            "postgres outlived its parent"
        );
        assert_eq!(status(&data), None);
    }

    #[test]
    fn detached_outlives_its_process() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let (mut child, mut out) = spawn_helper(&data, true);
        let info = read_tagged(&mut out, "PGINFO");
        let pid: i32 = info[0].parse().unwrap();
        assert!(child.0.wait().unwrap().success());
        std::thread::sleep(Duration::from_millis(500));
        assert!(sys::pid_alive(pid));
        assert_eq!(status(&data), Some(info[1].parse().unwrap()));
        assert!(stop_dir(&data).unwrap());
        assert!(!sys::pid_alive(pid));
    }

    #[test]
    fn non_empty_foreign_dir_is_refused() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("precious.txt"), "x").unwrap();
        let err = EmbeddedPostgres::start(opts(&data)).unwrap_err();
        assert!(matches!(err, EmbeddedError::DataDir { .. }), "{err}");
        assert!(data.join("precious.txt").exists());
    }

    #[test]
    fn run_as_explicit_user() {
        if !sys::is_root() {
            let mut o = opts(Path::new("/nonexistent/pgdata"));
            o.run_as = Some("nobody".into());
            let err = EmbeddedPostgres::start(o).unwrap_err();
            assert!(matches!(err, EmbeddedError::User(_)), "{err}");
            return;
        }
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let mut o = opts(&data);
        o.run_as = Some("no-such-user-xyz".into());
        let err = EmbeddedPostgres::start(o.clone()).unwrap_err();
        assert!(err.to_string().contains("no-such-user-xyz"), "{err}");

        // initdb as the default user, then switch to `nobody`: ownership follows.
        EmbeddedPostgres::start(opts(&data))
            .unwrap()
            .stop()
            .unwrap();
        let nobody = sys::lookup_user("nobody").unwrap();
        o.run_as = Some("nobody".into());
        let pg = EmbeddedPostgres::start(o).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().uid(), nobody.uid);
        assert_eq!(
            fs::metadata(data.join("PG_VERSION")).unwrap().uid(),
            nobody.uid
        );
        let proc_uid = fs::metadata(format!("/proc/{}", pg.pid())).unwrap().uid();
        assert_eq!(proc_uid, nobody.uid);
        assert_eq!(psql(&pg, "SELECT current_user"), "postgres");
        pg.stop().unwrap();
    }

    #[test]
    fn untraversable_parent_is_a_clear_error() {
        if !sys::is_root() {
            return; // only relevant when switching to an unprivileged user
        }
        let tmp = state_dir();
        let locked = tmp.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
        let err = EmbeddedPostgres::start(opts(&locked.join("pgdata"))).unwrap_err();
        match &err {
            EmbeddedError::NotTraversable { dir, .. } => assert_eq!(dir, &locked),
            other => panic!("unexpected error: {other}"),
        }
        eprintln!("{err}");
        assert!(err.to_string().contains(&locked.display().to_string()));
    }

    // ---- password authentication (issue #18, item 2a) ----

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    /// Non-comment `pg_hba.conf` lines with a `trust` token (a naive check on purpose,
    /// independent of the parser in `pgauth`).
    fn trust_lines(data: &Path) -> Vec<String> {
        fs::read_to_string(data.join("pg_hba.conf"))
            .unwrap()
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().to_owned())
            .filter(|l| l.split_whitespace().any(|t| t == "trust"))
            .collect()
    }

    /// Runs `SELECT current_user` through `psql` with the given connection string and
    /// no password from anywhere else; `Err(stderr)` on failure.
    fn psql_with(pginstall: &Path, conninfo: &str) -> Result<String, String> {
        let mut cmd = Command::new(pginstall.join("bin/psql"));
        clear_libpq_env(&mut cmd);
        let out = cmd
            .env("PGPASSFILE", "/dev/null")
            .args([
                "-X",
                "-w",
                "-A",
                "-t",
                "-c",
                "SELECT current_user",
                "-d",
                conninfo,
            ])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn no_password(port: u16) -> String {
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")
    }

    /// Everything the brief asks of a secured cluster.
    fn assert_secured(pg: &EmbeddedPostgres) {
        let data = pg.data_dir();
        assert_eq!(trust_lines(data), Vec::<String>::new());
        let err = psql_with(pg.pginstall(), &no_password(pg.port())).unwrap_err();
        assert!(err.contains("password"), "{err}");
        assert_eq!(
            psql_with(pg.pginstall(), &pg.url("postgres")).as_deref(),
            Ok("postgres")
        );
        let wrong = format!("postgres://postgres:wrong@127.0.0.1:{}/postgres", pg.port());
        assert!(psql_with(pg.pginstall(), &wrong).is_err(), "{wrong}");
        let file = pg.password_file();
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        assert_eq!(mode(data), 0o700, "{}", data.display());
        if let Some(user) = sys::resolve_server_user(None).unwrap() {
            assert_eq!(fs::metadata(&file).unwrap().uid(), user.uid);
            assert_eq!(fs::metadata(data).unwrap().uid(), user.uid);
        }
        let password = fs::read_to_string(&file).unwrap();
        let password = password.trim();
        assert!(password.len() >= 32);
        assert!(pg.url("x").contains(password));
        assert!(
            !format!("{pg:?}").contains(password),
            "Debug shows the password"
        );
        assert!(!pg.redacted_url("x").contains(password));
        let log = fs::read_to_string(pg.log_file()).unwrap_or_default();
        assert!(!log.contains(password), "the server log holds the password");
    }

    /// A data directory as the code before made them: `initdb --auth=trust`.
    fn trust_data_dir(data: &Path) -> PathBuf {
        let pginstall = wheel::ensure_pginstall(&crate::default_cache_dir()).unwrap();
        let user = sys::resolve_server_user(None).unwrap();
        fs::DirBuilder::new().mode(0o700).create(data).unwrap();
        prepare_data_dir(data, user.as_ref()).unwrap();
        let mut cmd = Command::new(pginstall.join("bin/initdb"));
        cmd.arg("-D").arg(data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        as_server_user(&mut cmd, user.as_ref());
        sys::run_checked(&mut cmd, "").unwrap();
        assert_eq!(trust_lines(data).len(), 6, "initdb --auth=trust as before");
        pginstall
    }

    /// A detached postgres on a trust data directory, as the code before ran it.
    fn run_trust_cluster(pginstall: &Path, data: &Path) -> (i32, u16) {
        let user = sys::resolve_server_user(None).unwrap();
        let port = sys::free_port().unwrap();
        let mut cmd = Command::new(pginstall.join("bin/postgres"));
        cmd.arg("-D").arg(data).arg("-p").arg(port.to_string());
        cmd.args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        as_server_user(&mut cmd, user.as_ref());
        sys::set_new_session(&mut cmd);
        let child = cmd.spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        reap_in_background(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while status(data) != Some(port) || !pg_isready(pginstall, port).unwrap() {
            assert!(Instant::now() < deadline, "trust cluster did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            psql_with(pginstall, &no_password(port)).as_deref(),
            Ok("postgres")
        );
        (pid, port)
    }

    #[test]
    fn fresh_cluster_requires_the_password_in_its_url() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(pg.freshly_initialized());
        assert_eq!(pg.password_file(), tmp.path().join("pgdata.password"));
        assert_secured(&pg);
        let password = fs::read_to_string(pg.password_file()).unwrap();
        let pid = pg.pid();
        pg.stop().unwrap();
        assert!(!sys::pid_alive(pid as i32));

        // The password is generated once: a restart keeps it.
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(!pg.freshly_initialized());
        assert_eq!(fs::read_to_string(pg.password_file()).unwrap(), password);
        assert_secured(&pg);
        pg.stop().unwrap();

        // The password file deleted while the cluster is stopped: a new one is set.
        fs::remove_file(password_file(&data)).unwrap();
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert_secured(&pg);
        assert_ne!(fs::read_to_string(pg.password_file()).unwrap(), password);
        pg.stop().unwrap();
    }

    #[test]
    fn trust_data_dir_is_upgraded_on_start() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        trust_data_dir(&data);
        assert!(!password_file(&data).exists());
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert!(!pg.freshly_initialized());
        assert!(!pg.adopted());
        assert_secured(&pg);
        let password = fs::read_to_string(pg.password_file()).unwrap();
        pg.stop().unwrap();
        // Idempotent: the next start changes nothing.
        let before = fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert_secured(&pg);
        assert_eq!(
            fs::read_to_string(data.join("pg_hba.conf")).unwrap(),
            before
        );
        assert_eq!(fs::read_to_string(pg.password_file()).unwrap(), password);
        pg.stop().unwrap();
    }

    #[test]
    fn upgrade_interrupted_after_writing_the_password_file_completes() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        trust_data_dir(&data);
        // Interrupted after step 3: the file exists, pg_hba.conf still trusts, the role
        // has no password yet.
        pgauth::write_private_file(
            &password_file(&data),
            b"s3cret-from-an-interrupted-upgrade-0123456789\n",
            None,
        )
        .unwrap();
        // And a temp file of an interrupted pg_hba.conf rewrite.
        fs::write(data.join("pg_hba.conf.tmp"), "junk").unwrap();
        let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
        assert_secured(&pg);
        assert!(
            pg.url("postgres")
                .contains(":s3cret-from-an-interrupted-upgrade-0123456789@")
        );
        pg.stop().unwrap();
    }

    /// The shared test cluster today: detached, trust, and many test processes adopting
    /// it at once after this change lands.
    #[test]
    fn running_trust_cluster_is_upgraded_once_by_concurrent_adopters() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let pginstall = trust_data_dir(&data);
        let (pid, port) = run_trust_cluster(&pginstall, &data);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let mut o = opts(&data);
                o.lifetime = Lifetime::Detached;
                std::thread::spawn(move || EmbeddedPostgres::start(o).unwrap())
            })
            .collect();
        let pgs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(pgs.iter().all(|p| p.adopted() && p.pid() == pid as u32));
        assert!(pgs.iter().all(|p| p.url("x") == pgs[0].url("x")));
        assert_secured(&pgs[0]);
        drop(pgs);
        assert_eq!(status(&data), Some(port), "adopters left it running");
        assert!(stop_dir(&data).unwrap());
    }

    #[test]
    fn running_cluster_that_still_trusts_is_reloaded() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let pginstall = trust_data_dir(&data);
        let (_, port) = run_trust_cluster(&pginstall, &data);
        // Interrupted before step 5: password set, file written, pg_hba.conf rewritten,
        // but the server not reloaded, so it still lets anyone in.
        let pw = pgauth::Password::generate().unwrap();
        let out = Command::new(pginstall.join("bin/psql"))
            .args([
                "-X",
                "-w",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &no_password(port),
            ])
            .args([
                "-c",
                &format!("ALTER ROLE postgres PASSWORD '{}'", pw.as_str()),
            ])
            .env("PGPASSFILE", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pgauth::write_private_file(
            &password_file(&data),
            format!("{}\n", pw.as_str()).as_bytes(),
            None,
        )
        .unwrap();
        let hba = fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        let meta = fs::metadata(data.join("pg_hba.conf")).unwrap();
        pgauth::write_private_file(
            &data.join("pg_hba.conf"),
            pgauth::without_trust(&hba).as_bytes(),
            Some((meta.uid(), meta.gid())),
        )
        .unwrap();
        assert!(
            psql_with(&pginstall, &no_password(port)).is_ok(),
            "still trusts"
        );

        let mut o = opts(&data);
        o.lifetime = Lifetime::Detached;
        let pg = EmbeddedPostgres::start(o).unwrap();
        assert!(pg.adopted());
        assert_secured(&pg);
        drop(pg);
        assert!(stop_dir(&data).unwrap());
    }

    #[test]
    fn running_cluster_without_its_password_file_is_a_clear_error() {
        let tmp = state_dir();
        let data = tmp.path().join("pgdata");
        let mut o = opts(&data);
        o.lifetime = Lifetime::Detached;
        let pg = EmbeddedPostgres::start(o.clone()).unwrap();
        let password = fs::read_to_string(pg.password_file()).unwrap();
        drop(pg);
        fs::remove_file(password_file(&data)).unwrap();
        let err = EmbeddedPostgres::start(o.clone()).unwrap_err();
        assert!(matches!(err, EmbeddedError::Auth { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
        // A wrong password: named as such, and not printed.
        pgauth::write_private_file(&password_file(&data), b"wrong\n", None).unwrap();
        let err = EmbeddedPostgres::start(o).unwrap_err().to_string();
        assert!(err.contains("cannot connect"), "{err}");
        assert!(
            !err.contains("wrong\n") && !err.contains(password.trim()),
            "{err}"
        );
        assert!(stop_dir(&data).unwrap());
    }
}
