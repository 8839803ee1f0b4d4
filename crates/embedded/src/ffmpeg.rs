//! The ffmpeg binary (7.0.2, static, with libx264) from the `imageio-ffmpeg` PyPI wheel,
//! fetched once into the wheel cache like PostgreSQL (see [`crate::wheel`]).
//!
//! ```text
//! CACHE/imageio-ffmpeg-0.7.0/imageio_ffmpeg/binaries/ffmpeg-linux-<arch>-v7.0.2
//! ```
//!
//! Overrides: `PIXSIM_FFMPEG` (path of an ffmpeg binary to use instead; nothing is
//! fetched), `PIXSIM_FFMPEG_WHEEL` (a downloaded `.whl`, skips pip).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::EmbeddedError;
use crate::wheel::{self, Spec};

/// PyPI package carrying a static ffmpeg.
pub const FFMPEG_PACKAGE: &str = "imageio-ffmpeg";
/// Pinned version of [`FFMPEG_PACKAGE`] (ffmpeg 7.0.2 with libx264).
pub const FFMPEG_VERSION: &str = "0.7.0";
/// Environment variable naming an ffmpeg binary to use instead of the wheel's.
pub const FFMPEG_ENV: &str = "PIXSIM_FFMPEG";
/// Environment variable pointing at a local `imageio-ffmpeg` wheel (skips pip).
pub const FFMPEG_WHEEL_ENV: &str = "PIXSIM_FFMPEG_WHEEL";

#[cfg(target_arch = "aarch64")]
const MARKER: &str = "imageio_ffmpeg/binaries/ffmpeg-linux-aarch64-v7.0.2";
#[cfg(not(target_arch = "aarch64"))]
const MARKER: &str = "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2";

const FFMPEG: Spec = Spec {
    package: FFMPEG_PACKAGE,
    version: FFMPEG_VERSION,
    marker: MARKER,
    wheel_env: FFMPEG_WHEEL_ENV,
};

/// Why no ffmpeg binary could be provided.
#[derive(Debug, thiserror::Error)]
pub enum FfmpegError {
    /// `PIXSIM_FFMPEG` names something that is no file.
    #[error("{FFMPEG_ENV}={}: no such file", path.display())]
    OverrideMissing { path: PathBuf },
    /// Fetching or extracting the wheel failed.
    #[error("fetching ffmpeg ({FFMPEG_PACKAGE}=={FFMPEG_VERSION}): {0}")]
    Fetch(#[from] EmbeddedError),
    /// The binary is there but cannot be made executable.
    #[error("cannot make {} executable: {source}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Ensures the wheel's ffmpeg is in `cache_dir` and returns its path (executable).
/// Downloads on first use; safe to call from many processes at once.
pub fn ensure_ffmpeg(cache_dir: &Path) -> Result<PathBuf, FfmpegError> {
    let root = wheel::ensure(cache_dir, &FFMPEG)?;
    let bin = root.join(MARKER);
    make_executable(&bin)?;
    Ok(bin)
}

/// The ffmpeg to run: `PIXSIM_FFMPEG` if set, else the wheel's in
/// [`crate::default_cache_dir`] (fetched on first use). A found path is remembered for
/// the life of the process; a failure is not, so a later call tries again.
pub fn ffmpeg() -> Result<PathBuf, FfmpegError> {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = FOUND.get() {
        return Ok(p.clone());
    }
    let path = match std::env::var_os(FFMPEG_ENV).filter(|v| !v.is_empty()) {
        Some(p) => {
            let path = PathBuf::from(p);
            if !path.is_file() {
                return Err(FfmpegError::OverrideMissing { path });
            }
            path
        }
        None => ensure_ffmpeg(&crate::default_cache_dir())?,
    };
    Ok(FOUND.get_or_init(|| path).clone())
}

/// Zip extraction leaves `binaries/` files at 0644: set the executable bits.
fn make_executable(bin: &Path) -> Result<(), FfmpegError> {
    let err = |source| FfmpegError::Permissions {
        path: bin.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(bin).map_err(err)?.permissions().mode();
    if mode & 0o111 != 0o111 {
        std::fs::set_permissions(bin, std::fs::Permissions::from_mode(mode | 0o755))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_wheel_gives_an_executable_ffmpeg_with_libx264() {
        let bin = ensure_ffmpeg(&crate::default_cache_dir()).unwrap();
        let out = std::process::Command::new(&bin)
            .args(["-hide_banner", "-encoders"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", bin.display());
        assert!(String::from_utf8_lossy(&out.stdout).contains("libx264"));
    }

    #[test]
    fn a_missing_override_is_named() {
        let msg = FfmpegError::OverrideMissing {
            path: "/nonexistent/ffmpeg".into(),
        }
        .to_string();
        assert!(msg.contains("PIXSIM_FFMPEG=/nonexistent/ffmpeg"), "{msg}");
    }
}
