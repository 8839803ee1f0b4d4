//! The server process: started with what its [`Lifetime`] needs (own process group and
//! parent-death signal, or a new session), waited for until it accepts connections, and
//! stopped with a fast shutdown that escalates.

use std::fs::OpenOptions;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Lifetime, PgOptions};
use crate::pgcmd::{SUPERUSER, as_server_user, clear_libpq_env};
use crate::sys::{self, User};
use crate::{EmbeddedError, Result};

/// How long a fast shutdown (SIGINT) may take before SIGQUIT.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub(super) fn spawn_postgres(
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
    let shared_buffers = format!("{}MB", default_shared_buffers_mb());
    let defaults = [
        ("listen_addresses", "127.0.0.1"),
        ("unix_socket_directories", ""),
        ("max_connections", "200"),
        ("shared_buffers", shared_buffers.as_str()),
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

pub(super) fn reap_in_background(mut child: Child) {
    let _ = std::thread::Builder::new()
        .name("pg-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        });
}

/// Polls TCP connect + `pg_isready` until the server accepts connections.
pub(super) fn wait_ready(
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

pub(super) fn pg_isready(pginstall: &Path, port: u16) -> Result<bool> {
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
pub(super) fn shutdown(pid: i32) -> Result<bool> {
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

/// True when the server exited during startup because its port was taken (worth a
/// retry on another free port).
pub(super) fn is_bind_failure(err: &EmbeddedError) -> bool {
    matches!(err, EmbeddedError::Exited { log_tail, .. }
        if log_tail.contains("could not bind") || log_tail.contains("Address already in use")
            || log_tail.contains("could not create any TCP/IP sockets"))
}

/// The embedded server's `shared_buffers` (MB): a quarter of the machine's memory, at
/// least PostgreSQL's default 128 MB and at most 1 GB. PostgreSQL's 128 MB holds little
/// of an HNSW index (100,000 vectors of 1024 half-precision values: about 230 MB), and
/// a search that reads its pages from the OS cache instead takes twice as long
/// (`BENCHMARKS.md`, issue #23). The memory is touched only as pages are used.
pub fn default_shared_buffers_mb() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    (total_kb / 1024 / 4).clamp(128, 1024)
}
