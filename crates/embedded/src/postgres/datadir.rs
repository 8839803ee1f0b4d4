//! The data directory: `initdb` on first use (in `DATA.initdb-tmp`, renamed into place
//! when complete), owner and mode for the server user, and the server log's rotation.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use super::PG_MAJOR;
use crate::pgcmd::{SUPERUSER, as_server_user, sibling};
use crate::sys::{self, User};
use crate::{EmbeddedError, Result, hba, pgauth};

/// The server log is rotated at start once it is over this size.
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;

/// Moves the log to `LOG.old` when it has grown over [`LOG_ROTATE_BYTES`].
pub(super) fn rotate_log(log_file: &Path) {
    if fs::metadata(log_file).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = fs::rename(log_file, sibling(log_file, ".old"));
    }
}

fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

/// Runs `initdb` unless `data_dir` already holds a cluster. Returns true if it ran.
pub(super) fn init_if_needed(
    pginstall: &Path,
    data_dir: &Path,
    user: Option<&User>,
) -> Result<bool> {
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
        .arg(format!("--auth={}", hba::METHOD))
        .arg("--pwfile")
        .arg(pwfile)
        .args(["-E", "UTF8", "--no-locale"]);
    as_server_user(&mut cmd, user);
    sys::run_checked(&mut cmd, "")?;
    Ok(())
}

/// Owner = server user, mode 0700 (postgres refuses world-accessible data dirs; we do
/// not allow group access either).
pub(super) fn prepare_data_dir(dir: &Path, user: Option<&User>) -> Result<()> {
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
