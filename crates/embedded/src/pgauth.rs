//! Password authentication of the embedded cluster.
//!
//! The superuser has a random password, generated once and kept in `DATA.password`
//! (next to the data directory, mode 0600, owned by the user the server runs as; see
//! [`password_file`]). `pg_hba.conf` allows `scram-sha-256` only. A data directory
//! initialised with `trust` (what every cluster made before had) is upgraded in place by
//! [`secure_stopped`] (single-user mode, before the server starts) or [`secure_running`]
//! (over a connection while `trust` still works, then a reload), in an order that is
//! safe to interrupt at any step:
//!
//! 1. read the password file, or generate a password in memory when it is missing;
//! 2. when the password is new or `pg_hba.conf` still has `trust`: set it
//!    (`ALTER ROLE`, a statement that is never logged);
//! 3. when it is new: write the password file (temp file created 0600, then renamed);
//! 4. when `pg_hba.conf` has `trust`: rewrite it without (temp file, then renamed);
//! 5. when running: reload if `pg_hba.conf` was rewritten, or if a connection without
//!    password still gets in (a reload was interrupted).
//!
//! A rerun after an interruption finds either the file missing (and sets a new password
//! while it still can), or `trust` still in `pg_hba.conf` (and sets the file's password
//! again), or a server that still trusts (and reloads it). The password never appears on
//! a command line, in a log line or in an error message.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::hba::{METHOD, has_trust, without_trust};
use crate::pgcmd::{SUPERUSER, as_server_user, clear_libpq_env, sibling};
use crate::sys::{self, User};
use crate::{EmbeddedError, Result};

/// Session settings that keep the statement carrying the password out of the server log.
const QUIET: [(&str, &str); 5] = [
    ("log_statement", "none"),
    ("log_min_error_statement", "panic"),
    ("log_min_duration_statement", "-1"),
    ("log_min_duration_sample", "-1"),
    ("password_encryption", "scram-sha-256"),
];

/// The superuser's password. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// 32 random bytes from the kernel, hex-encoded.
    pub(crate) fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        let path = Path::new("/dev/urandom");
        fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| EmbeddedError::io("cannot read random bytes", path, e))?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Percent-encoded for the userinfo of a URL (RFC 3986: unreserved characters kept).
    pub(crate) fn url_encoded(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// As an SQL string literal.
    fn literal(&self) -> String {
        format!("'{}'", self.0.replace('\'', "''"))
    }

    /// Replaces the password in command output, for error messages.
    fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "***")
    }
}

/// `DATA.password`: the superuser's password of the cluster in `data_dir`.
pub fn password_file(data_dir: &Path) -> PathBuf {
    sibling(data_dir, ".password")
}

fn auth_error(path: &Path, reason: impl Into<String>) -> EmbeddedError {
    EmbeddedError::Auth {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the password file; `None` when it does not exist. A file readable by others
/// is narrowed to 0600 (with a warning).
pub(crate) fn read_password(path: &Path) -> Result<Option<Password>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EmbeddedError::io("cannot stat password file", path, e)),
    };
    if !meta.file_type().is_file() {
        return Err(auth_error(path, "the password file is not a regular file"));
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(
            "{} was readable by others (mode {:o}); narrowing it to 0600",
            path.display(),
            meta.mode() & 0o777
        );
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| EmbeddedError::io("cannot chmod 0600", path, e))?;
    }
    let text = fs::read_to_string(path)
        .map_err(|e| EmbeddedError::io("cannot read password file", path, e))?;
    let pw = text.trim_end_matches(['\n', '\r']);
    if pw.is_empty() || pw.chars().any(char::is_control) {
        return Err(auth_error(
            path,
            "the password file must hold one non-empty line; delete it while the cluster \
             is stopped to have a new password set on the next start",
        ));
    }
    Ok(Some(Password(pw.to_owned())))
}

/// Writes `contents` to `path` atomically: a temp file next to it, created with mode
/// 0600 (never readable by others, not even briefly), synced, handed to `owner`, renamed.
pub(crate) fn write_private_file(
    path: &Path,
    contents: &[u8],
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let tmp = sibling(path, ".tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(EmbeddedError::io(
                "cannot remove leftover temp file",
                &tmp,
                e,
            ));
        }
    }
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        drop(f);
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        EmbeddedError::io("cannot write", path, e)
    })?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_hba(data_dir: &Path) -> Result<(PathBuf, String)> {
    let path = data_dir.join("pg_hba.conf");
    let text = fs::read_to_string(&path).map_err(|e| EmbeddedError::io("cannot read", &path, e))?;
    Ok((path, text))
}

/// Rewrites `pg_hba.conf` without `trust`, keeping its owner.
fn rewrite_hba(path: &Path, text: &str) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| EmbeddedError::io("cannot stat", path, e))?;
    let owner = sys::is_root().then(|| (meta.uid(), meta.gid()));
    tracing::info!(
        "{}: replacing `trust` with `{METHOD}` (password authentication only)",
        path.display()
    );
    write_private_file(path, without_trust(text).as_bytes(), owner)
}

/// Who owns the password file: the server user when the process is root.
fn file_owner(data_dir: &Path) -> Result<Option<(u32, u32)>> {
    if !sys::is_root() {
        return Ok(None);
    }
    let meta = fs::metadata(data_dir).map_err(|e| EmbeddedError::io("cannot stat", data_dir, e))?;
    Ok(Some((meta.uid(), meta.gid())))
}

/// Gives an existing password file to `owner` (the server user, when root): `initdb`
/// reads it as that user.
fn chown_to(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    let meta = fs::metadata(path).map_err(|e| EmbeddedError::io("cannot stat", path, e))?;
    if (meta.uid(), meta.gid()) != (uid, gid) {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| EmbeddedError::io("cannot chown", path, e))?;
    }
    Ok(())
}

/// Makes sure the password file exists before `initdb --pwfile` reads it (as `user`).
pub(crate) fn ensure_password_file(data_dir: &Path, user: Option<&User>) -> Result<PathBuf> {
    let path = password_file(data_dir);
    if read_password(&path)?.is_some() {
        chown_to(&path, user.map(|u| (u.uid, u.gid)))?;
    } else {
        let pw = Password::generate()?;
        write_private_file(
            &path,
            format!("{}\n", pw.as_str()).as_bytes(),
            user.map(|u| (u.uid, u.gid)),
        )?;
        tracing::info!(
            "generated the database superuser password in {}",
            path.display()
        );
    }
    Ok(path)
}

/// Steps 1–4 for a cluster that is not running (under the data directory's lock, after
/// `prepare_data_dir`): the password is set in single-user mode, which needs no
/// authentication. Returns the password.
pub(crate) fn secure_stopped(
    pginstall: &Path,
    data_dir: &Path,
    user: Option<&User>,
) -> Result<Password> {
    let file = password_file(data_dir);
    let (hba_path, hba) = read_hba(data_dir)?;
    let trust = has_trust(&hba);
    let (pw, new) = match read_password(&file)? {
        Some(pw) => {
            chown_to(&file, file_owner(data_dir)?)?;
            (pw, false)
        }
        None => (Password::generate()?, true),
    };
    if !new && !trust {
        return Ok(pw);
    }
    if trust {
        tracing::info!(
            "upgrading {} from `trust` to password authentication",
            data_dir.display()
        );
    } else {
        tracing::warn!(
            "{} is missing: setting a new database superuser password",
            file.display()
        );
    }
    set_password_single_user(pginstall, data_dir, user, &pw)?;
    if new {
        write_private_file(
            &file,
            format!("{}\n", pw.as_str()).as_bytes(),
            file_owner(data_dir)?,
        )?;
    }
    if trust {
        rewrite_hba(&hba_path, &hba)?;
    }
    Ok(pw)
}

/// Steps 1–5 for a cluster that runs on `port` (adopted, under the data directory's
/// lock). Returns the password.
pub(crate) fn secure_running(pginstall: &Path, data_dir: &Path, port: u16) -> Result<Password> {
    let file = password_file(data_dir);
    let (hba_path, hba) = read_hba(data_dir)?;
    let trust = has_trust(&hba);
    let (pw, new) = match read_password(&file)? {
        Some(pw) => {
            chown_to(&file, file_owner(data_dir)?)?;
            (pw, false)
        }
        None if trust => (Password::generate()?, true),
        None => {
            return Err(auth_error(
                &file,
                "the password file is missing and the running cluster requires a password; \
                 stop the cluster and start again to have a new one set",
            ));
        }
    };
    if trust {
        tracing::info!(
            "upgrading the running cluster on {} from `trust` to password authentication",
            data_dir.display()
        );
        set_password_over_trust(pginstall, port, &pw)?;
        if new {
            write_private_file(
                &file,
                format!("{}\n", pw.as_str()).as_bytes(),
                file_owner(data_dir)?,
            )?;
        }
        rewrite_hba(&hba_path, &hba)?;
    }
    if trust || connects_without_password(pginstall, port)? {
        reload(pginstall, port, &pw)?;
    }
    Ok(pw)
}

/// `psql` on 127.0.0.1:`port` as the superuser, reading SQL from stdin; no password file
/// from the environment or the home directory.
fn psql(pginstall: &Path, port: u16, password: Option<&Password>) -> Command {
    let mut cmd = Command::new(pginstall.join("bin").join("psql"));
    cmd.args(["-X", "-q", "-w", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", SUPERUSER, "-d", "postgres", "-f", "-"]);
    clear_libpq_env(&mut cmd);
    cmd.env("PGPASSFILE", "/dev/null")
        .env("PGCONNECT_TIMEOUT", "10");
    if let Some(pw) = password {
        cmd.env("PGPASSWORD", pw.as_str());
    }
    cmd
}

/// Runs `cmd` with `input` on stdin; failures are errors with the password redacted.
fn run_with_input(mut cmd: Command, input: &str, pw: &Password) -> Result<Output> {
    let desc = sys::describe(&cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| EmbeddedError::Spawn {
        command: desc.clone(),
        hint: String::new(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows up as the command's failure below.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| EmbeddedError::io("cannot wait for", desc.clone(), e))?;
    if !out.status.success() {
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Err(EmbeddedError::CommandFailed {
            command: desc,
            status: out.status.to_string(),
            output: pw.redact(text.trim()),
            hint: String::new(),
        });
    }
    Ok(out)
}

fn alter_role_sql(pw: &Password) -> String {
    format!("ALTER ROLE \"{SUPERUSER}\" PASSWORD {};\n", pw.literal())
}

/// Sets the password in single-user mode (the server is stopped).
fn set_password_single_user(
    pginstall: &Path,
    data_dir: &Path,
    user: Option<&User>,
    pw: &Password,
) -> Result<()> {
    let mut cmd = Command::new(pginstall.join("bin").join("postgres"));
    cmd.arg("--single").arg("-D").arg(data_dir);
    for (k, v) in QUIET {
        cmd.arg("-c").arg(format!("{k}={v}"));
    }
    cmd.arg("postgres");
    as_server_user(&mut cmd, user);
    // Single-user mode reads one statement per line and reports errors on stderr with a
    // successful exit status: check the outcome with a query.
    let input = format!(
        "{}SELECT rolpassword LIKE 'SCRAM-SHA-256$%' AS pixsim_password_set \
         FROM pg_authid WHERE rolname = '{SUPERUSER}';\n",
        alter_role_sql(pw)
    );
    let desc = sys::describe(&cmd);
    let out = run_with_input(cmd, &input, pw)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains("pixsim_password_set = \"t\"") {
        return Err(EmbeddedError::CommandFailed {
            command: desc,
            status: "the password was not set".into(),
            output: pw.redact(&format!(
                "{}\n{}",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            hint: String::new(),
        });
    }
    Ok(())
}

/// Sets the password over a connection that `trust` still lets in.
fn set_password_over_trust(pginstall: &Path, port: u16, pw: &Password) -> Result<()> {
    let mut sql = String::new();
    for (k, v) in QUIET {
        sql.push_str(&format!("SET {k} = '{v}';\n"));
    }
    sql.push_str(&alter_role_sql(pw));
    run_with_input(psql(pginstall, port, None), &sql, pw)?;
    Ok(())
}

/// True when a connection without a password gets in (the server still trusts).
fn connects_without_password(pginstall: &Path, port: u16) -> Result<bool> {
    let mut cmd = psql(pginstall, port, None);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // `-f -` with stdin closed: connects, runs nothing.
    let status = cmd.status().map_err(|source| EmbeddedError::Spawn {
        command: sys::describe(&cmd),
        hint: String::new(),
        source,
    })?;
    Ok(status.success())
}

/// `pg_reload_conf()`, then waits until connections without password are refused.
fn reload(pginstall: &Path, port: u16, pw: &Password) -> Result<()> {
    tracing::info!("reloading the configuration of the cluster on port {port}");
    run_with_input(
        psql(pginstall, port, Some(pw)),
        "SELECT pg_reload_conf();\n",
        pw,
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while connects_without_password(pginstall, port)? {
        if Instant::now() >= deadline {
            return Err(auth_error(
                Path::new("pg_hba.conf"),
                format!(
                    "the cluster on port {port} still accepts connections without a password \
                     after reloading its configuration"
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Connects with the password: a clear error when the file does not match the cluster.
pub(crate) fn verify(pginstall: &Path, data_dir: &Path, port: u16, pw: &Password) -> Result<()> {
    run_with_input(psql(pginstall, port, Some(pw)), "SELECT 1;\n", pw)
        .map(drop)
        .map_err(|e| {
            auth_error(
                &password_file(data_dir),
                format!(
                    "cannot connect to the cluster on port {port} with this password ({e}); \
                     if the file was changed or replaced, stop the cluster, delete the file \
                     and start again to have a new password set"
                ),
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_is_hex_redacted_and_url_encoded() {
        let pw = Password::generate().unwrap();
        assert_eq!(pw.as_str().len(), 64);
        assert!(pw.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(pw, Password::generate().unwrap());
        assert!(!format!("{pw:?}").contains(pw.as_str()));
        assert_eq!(pw.url_encoded(), pw.as_str());
        let odd = Password("a b@c/d:e%f'~".into());
        assert_eq!(odd.url_encoded(), "a%20b%40c%2Fd%3Ae%25f%27~");
        assert_eq!(odd.literal(), "'a b@c/d:e%f''~'");
        assert_eq!(odd.redact("x a b@c/d:e%f'~ y"), "x *** y");
    }

    #[test]
    fn private_files_are_0600_and_replaced_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secret");
        write_private_file(&path, b"one\n", None).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_password(&path).unwrap().unwrap().as_str(), "one");
        // A leftover temp file from an interrupted write is replaced.
        fs::write(sibling(&path, ".tmp"), "junk").unwrap();
        write_private_file(&path, b"two\n", None).unwrap();
        assert_eq!(read_password(&path).unwrap().unwrap().as_str(), "two");
        assert!(!sibling(&path, ".tmp").exists());
        // Widened by hand: narrowed again when read.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        read_password(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(
            read_password(&tmp.path().join("missing"))
                .unwrap()
                .is_none()
        );
        fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_password(&path),
            Err(EmbeddedError::Auth { .. })
        ));
    }
}
