//! Secrets of the state dir: the token key and the key sealing provider API keys,
//! configured or generated once (0600).

use std::path::Path;

use anyhow::{Context, bail};

use crate::Config;

/// The token key: configured, or generated once and kept in the state dir (0600).
pub(crate) fn jwt_secret(cfg: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &cfg.auth.jwt_secret {
        if s.len() < 32 {
            bail!("auth.jwt_secret must be at least 32 characters");
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = cfg.state_dir.join("jwt-secret");
    let secret = state_secret(&path)?;
    if secret.len() < 32 {
        bail!(
            "{} is shorter than 32 characters; delete it to make a new one",
            path.display()
        );
    }
    Ok(secret.into_bytes())
}

/// A secret kept in a file of the state dir: read (trimmed), or made once (32 random
/// bytes as hex) and written 0600 through a temporary file, so a reader never sees
/// half of it and, when two processes start at once, the first one's stays.
pub(crate) fn state_secret(path: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(s) => return Ok(s.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(secret.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a secret");
            Ok(secret)
        }
        // Another process made it first: its secret stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_owned())
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// The key sealing provider API keys: configured, or generated once and kept in the
/// state dir (0600).
pub(crate) fn secret_key(cfg: &Config) -> anyhow::Result<generation::secrets::SecretKey> {
    use generation::secrets::SecretKey;
    if let Some(s) = &cfg.generation.secret_key {
        return SecretKey::parse(s).context("generation.secret_key");
    }
    let path = cfg.state_dir.join("secret-key");
    SecretKey::parse(&state_secret(&path)?).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::state_secret;

    #[test]
    fn a_state_secret_is_made_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("pixsim-secret-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("secret-key");
        let first = state_secret(&path).expect("made");
        assert_eq!(first.len(), 64);
        assert_eq!(state_secret(&path).expect("read back"), first);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(generation::secrets::SecretKey::parse(&first).is_ok());
        let left = std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(left, 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(dir);
    }
}
