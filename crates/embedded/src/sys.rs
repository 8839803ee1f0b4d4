//! Small OS helpers: users, permissions, locks, process liveness, child spawning.

use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{EmbeddedError, Result};

pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

pub(crate) fn is_root() -> bool {
    euid() == 0
}

/// A resolved local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks a user up by name (`getpwnam_r`).
pub(crate) fn lookup_user(name: &str) -> Option<User> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids); it is only
        // read after getpwnam_r reports success.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the duration of the call and `buf.len()` is the
        // real size of `buf`.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1024 * 1024 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        return Some(User {
            name: name.to_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        });
    }
}

/// Name of the user with `uid`, or the numeric id.
pub(crate) fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: see `lookup_user`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call, `buf.len()` is the size of `buf`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: getpwuid_r succeeded, so pw_name points to a NUL-terminated string in `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    uid.to_string()
}

/// The user the database server runs as. `None` means "the current process user" (no
/// switch); when running as root a non-root user is always returned.
///
/// Root: `run_as`, else `postgres` if it exists, else `pixsim` (created with `useradd
/// --system` when missing), else `nobody`.
pub(crate) fn resolve_server_user(run_as: Option<&str>) -> Result<Option<User>> {
    if !is_root() {
        if let Some(name) = run_as {
            let me = user_name(euid());
            if name != me && lookup_user(name).map(|u| u.uid) != Some(euid()) {
                return Err(EmbeddedError::User(format!(
                    "run_as = `{name}` requested, but this process runs as `{me}` (not root) \
                     and cannot switch users; leave run_as unset"
                )));
            }
        }
        return Ok(None);
    }
    if let Some(name) = run_as {
        let user = lookup_user(name).ok_or_else(|| {
            EmbeddedError::User(format!("configured run_as user `{name}` does not exist"))
        })?;
        if user.uid == 0 {
            return Err(EmbeddedError::User(format!(
                "run_as user `{name}` is root; PostgreSQL refuses to run as root"
            )));
        }
        return Ok(Some(user));
    }
    if let Some(user) = lookup_user("postgres").filter(|u| u.uid != 0) {
        return Ok(Some(user));
    }
    if let Some(user) = lookup_user("pixsim").filter(|u| u.uid != 0) {
        return Ok(Some(user));
    }
    tracing::info!("creating system user `pixsim` to run PostgreSQL (process runs as root)");
    let mut cmd = Command::new("useradd");
    cmd.args([
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        "pixsim",
    ]);
    match cmd.output() {
        Ok(out) if !out.status.success() => tracing::warn!(
            "useradd pixsim failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => tracing::warn!("could not run useradd: {e}"),
        Ok(_) => {}
    }
    // Re-check even on failure: a concurrent process may have created it.
    if let Some(user) = lookup_user("pixsim").filter(|u| u.uid != 0) {
        return Ok(Some(user));
    }
    if let Some(user) = lookup_user("nobody").filter(|u| u.uid != 0) {
        tracing::warn!("falling back to user `nobody` to run PostgreSQL");
        return Ok(Some(user));
    }
    Err(EmbeddedError::User(
        "running as root, but no usable non-root user (postgres, pixsim, nobody) exists and \
         `useradd pixsim` failed; set run_as to an existing user"
            .to_owned(),
    ))
}

/// Checks that `user` can traverse every ancestor directory of `target` (and `target`
/// itself when `include_self`). Root needs no check.
pub(crate) fn check_traversable(user: &User, target: &Path, include_self: bool) -> Result<()> {
    if user.uid == 0 {
        return Ok(());
    }
    let mut dirs: Vec<&Path> = target
        .ancestors()
        .skip(usize::from(!include_self))
        .collect();
    dirs.reverse();
    for dir in dirs {
        let Ok(meta) = fs::metadata(dir) else {
            continue; // does not exist (yet); it will be created by us
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.mode();
        let ok = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(EmbeddedError::NotTraversable {
                user: user.name.clone(),
                dir: dir.to_path_buf(),
                target: target.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Recursively changes ownership (not following symlinks).
pub(crate) fn chown_recursive(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_recursive(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Makes an extracted tree usable by any user: directories 0755, files in `bin/` and
/// shared libraries 0755, everything else 0644.
pub(crate) fn fix_extracted_permissions(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(path)? {
            fix_extracted_permissions(&entry?.path())?;
        }
        return Ok(());
    }
    let in_bin = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "bin" || n == "scripts");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let shared_lib = name.ends_with(".so") || name.contains(".so.");
    let mode = if in_bin || shared_lib { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Opens (creating) `path` and takes an exclusive `flock` on it; released on drop.
pub(crate) fn lock_exclusive(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| EmbeddedError::io("cannot open lock file", path, e))?;
    file.lock()
        .map_err(|e| EmbeddedError::io("cannot lock", path, e))?;
    Ok(file)
}

/// Is a process with this pid alive (and not a zombie)?
pub(crate) fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only performs the existence/permission check.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // Zombies (exited, not yet reaped) count as dead.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => true,
    }
}

/// Reaps `pid` if it is an exited child of this process (no-op otherwise).
pub(crate) fn try_reap(pid: i32) {
    let mut status = 0;
    // SAFETY: WNOHANG waitpid on a specific pid; returns -1/ECHILD if it is not our child.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

/// Sends `sig` to `pid`; false if the process does not exist.
pub(crate) fn send_signal(pid: i32, sig: libc::c_int) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: plain kill(2) on a positive pid.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Waits until `pid` is gone (or a zombie), reaping it if it is our child.
pub(crate) fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        try_reap(pid);
        if !pid_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Last `max_lines` lines of a log file (at most the last 64 KiB), or a note why not.
pub(crate) fn log_tail(path: &Path, max_lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(log {} not readable)", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

/// Human-readable rendering of a command line.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let a = arg.to_string_lossy();
        s.push(' ');
        if a.is_empty() || a.contains(' ') {
            s.push('\'');
            s.push_str(&a);
            s.push('\'');
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// Runs a command to completion, turning failure into a descriptive error.
pub(crate) fn run_checked(cmd: &mut Command, hint: &str) -> Result<Output> {
    let desc = describe(cmd);
    let out = cmd.output().map_err(|source| EmbeddedError::Spawn {
        command: desc.clone(),
        hint: hint.to_owned(),
        source,
    })?;
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !stdout.trim().is_empty() {
            output = format!("{}\n{output}", stdout.trim());
        }
        return Err(EmbeddedError::CommandFailed {
            command: desc,
            status: out.status.to_string(),
            output: tail_chars(&output, 4000),
            hint: hint.to_owned(),
        });
    }
    Ok(out)
}

fn tail_chars(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_owned()
    } else {
        let tail: String = s.chars().skip(n - max).collect();
        format!("...{tail}")
    }
}

/// Arranges for the child to receive `sig` when this process dies (`PR_SET_PDEATHSIG`).
///
/// The hook runs in the child after the uid/gid switch (which would clear the setting).
/// Because the kernel ties the parent-death signal to the *thread* that forked, children
/// with this set must be spawned through [`spawn`], which forks from a thread that lives
/// as long as the process.
pub(crate) fn set_parent_death_signal(cmd: &mut Command, sig: libc::c_int) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let hook = move || -> io::Result<()> {
        // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid are async-signal-safe syscalls that
        // touch no memory of the parent; no allocation happens in this closure.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The parent already died between fork and prctl.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook only performs async-signal-safe syscalls (see above).
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Detaches the child into its own session (`setsid`), so it survives this process and
/// does not get terminal signals.
pub(crate) fn set_new_session(cmd: &mut Command) {
    let hook = || -> io::Result<()> {
        // SAFETY: setsid is async-signal-safe; the child is not a process-group leader.
        if unsafe { libc::setsid() } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook only calls setsid (async-signal-safe, no allocation).
    unsafe {
        cmd.pre_exec(hook);
    }
}

type Job = Box<dyn FnOnce() + Send>;

fn spawner() -> Option<&'static mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("embedded-spawner".into())
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Spawns `cmd` from a dedicated thread that lives for the whole process, so that
/// `PR_SET_PDEATHSIG` fires when the process dies, not when the calling thread (e.g. a
/// tokio blocking-pool thread or a test thread) exits.
pub(crate) fn spawn(mut cmd: Command) -> io::Result<Child> {
    if let Some(tx) = spawner() {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = rtx.send(cmd.spawn());
        });
        if tx.send(job).is_ok()
            && let Ok(res) = rrx.recv()
        {
            return res;
        }
        return Err(io::Error::other("embedded-spawner thread is gone"));
    }
    cmd.spawn()
}

/// Picks a currently free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// Makes `path` absolute (relative to the current directory) without resolving symlinks.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| EmbeddedError::io("cannot make path absolute", path, e))
}

/// Creates `dir` (and parents); when running as root also makes it world-readable.
pub(crate) fn create_shared_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| EmbeddedError::io("cannot create directory", dir, e))?;
    if is_root() {
        let meta =
            fs::metadata(dir).map_err(|e| EmbeddedError::io("cannot stat directory", dir, e))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o055 != 0o055 {
            fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o055))
                .map_err(|e| EmbeddedError::io("cannot chmod directory", dir, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lookup_root_and_missing() {
        assert_eq!(lookup_user("root").map(|u| u.uid), Some(0));
        assert!(lookup_user("no-such-user-xyz").is_none());
        assert_eq!(user_name(0), "root");
    }

    #[test]
    fn traversal_check_detects_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let locked = tmp.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
        let user = User {
            name: "someone".into(),
            uid: 54321,
            gid: 54321,
        };
        let target = locked.join("data");
        match check_traversable(&user, &target, false) {
            Err(EmbeddedError::NotTraversable { dir, .. }) => assert_eq!(dir, locked),
            other => panic!("unexpected {other:?}"),
        }
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o711)).unwrap();
        check_traversable(&user, &target, false).unwrap();
    }

    #[test]
    fn liveness() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(!pid_alive(i32::MAX - 7));
    }
}
