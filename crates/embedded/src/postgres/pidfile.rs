//! What runs on a data directory, read from its `postmaster.pid`: nothing, a stale
//! file (dead process, or not a postgres on this directory), or a live cluster (maybe
//! still starting or already stopping), which [`super::EmbeddedPostgres::start`] adopts.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{EmbeddedError, Result, sys};

pub(super) fn ignore_not_found(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

pub(super) enum PidState {
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

pub(super) fn inspect(data_dir: &Path) -> PidState {
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

/// A cluster running on the data directory, ready to be adopted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Running {
    pub(super) pid: i32,
    pub(super) port: u16,
}

/// Waits (until `deadline`) for the data directory to settle: `None` when no cluster
/// runs on it (a stale `postmaster.pid` is removed), else the cluster running there,
/// once it has finished starting (its port is known) and is not stopping.
pub(super) fn settle(
    data_dir: &Path,
    deadline: Instant,
    timeout: Duration,
) -> Result<Option<Running>> {
    loop {
        match inspect(data_dir) {
            PidState::None => return Ok(None),
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
                return Ok(None);
            }
            PidState::Running {
                pid,
                port: Some(port),
                stopping: false,
            } => return Ok(Some(Running { pid, port })),
            PidState::Running { pid, .. } => {
                // Shutting down or still writing its pid file: wait and re-check.
                if Instant::now() >= deadline {
                    return Err(EmbeddedError::DataDir {
                        path: data_dir.to_path_buf(),
                        reason: format!(
                            "postgres pid {pid} is using it but neither finished \
                             starting nor stopping within {timeout:?}"
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
