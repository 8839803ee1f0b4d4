//! Server certificate: configured PEM files, or a self-signed certificate
//! generated once and kept in the state directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::QuicError;

/// File names inside [`self_signed_dir`].
pub const CERT_PEM: &str = "cert.pem";
/// Private key (PKCS#8 PEM, mode 0600 on Unix).
pub const KEY_PEM: &str = "key.pem";
/// Leaf certificate as raw DER, for clients that want to pin it.
pub const CERT_DER: &str = "cert.der";

/// Names always put in a generated certificate's subject alternative names.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where the self-signed certificate lives: `state_dir/quic`.
pub fn self_signed_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("quic")
}

/// Where a certificate came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// Configured certificate and key files.
    Configured,
    /// Self-signed, generated now and saved in this directory.
    Generated(PathBuf),
    /// Self-signed, loaded from this directory (generated earlier).
    Reused(PathBuf),
}

/// A certificate chain, its key and the leaf's fingerprint.
#[derive(Debug)]
pub struct CertMaterial {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 fingerprint of the leaf (`aa:bb:..`), the one clients pin.
    pub fingerprint: String,
    /// Where it came from.
    pub source: CertSource,
}

/// SHA-256 of `der`, as lowercase hex pairs joined by `:`.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&hex::encode([*byte]));
    }
    out
}

/// Reads certificates from a PEM file (all `CERTIFICATE` sections) or, if
/// it is not PEM, a single DER certificate.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, QuicError> {
    let bytes =
        fs::read(path).map_err(|e| QuicError::io(format!("reading {}", path.display()), e))?;
    if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QuicError::Pem {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(QuicError::Pem {
                path: path.to_owned(),
                message: "no CERTIFICATE section".into(),
            });
        }
        Ok(certs)
    } else if bytes.is_empty() {
        Err(QuicError::Pem {
            path: path.to_owned(),
            message: "empty file".into(),
        })
    } else {
        Ok(vec![CertificateDer::from(bytes)])
    }
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, QuicError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| QuicError::Pem {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn material(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    source: CertSource,
) -> Result<CertMaterial, QuicError> {
    let leaf = chain
        .first()
        .ok_or_else(|| QuicError::Config("certificate chain is empty".into()))?;
    let fingerprint = fingerprint(leaf.as_ref());
    Ok(CertMaterial {
        chain,
        key,
        fingerprint,
        source,
    })
}

/// Loads the configured certificate and key, or the self-signed pair in
/// `state_dir/quic`, generating it (with [`DEFAULT_SANS`] plus `extra_names`)
/// if it does not exist yet.
pub fn load_or_generate(
    cert_path: Option<&Path>,
    key_path: Option<&Path>,
    state_dir: &Path,
    extra_names: &[String],
) -> Result<CertMaterial, QuicError> {
    match (cert_path, key_path) {
        (Some(cert), Some(key)) => {
            material(load_certs(cert)?, load_key(key)?, CertSource::Configured)
        }
        (Some(_), None) | (None, Some(_)) => Err(QuicError::Config(
            "both a certificate and a key file must be configured, or neither".into(),
        )),
        (None, None) => self_signed(state_dir, extra_names),
    }
}

fn self_signed(state_dir: &Path, extra_names: &[String]) -> Result<CertMaterial, QuicError> {
    let dir = self_signed_dir(state_dir);
    let cert_pem = dir.join(CERT_PEM);
    let key_pem = dir.join(KEY_PEM);
    let cert_der = dir.join(CERT_DER);
    if cert_pem.is_file() && key_pem.is_file() {
        let chain = load_certs(&cert_pem)?;
        let key = load_key(&key_pem)?;
        let m = material(chain, key, CertSource::Reused(dir.clone()))?;
        if !cert_der.is_file()
            && let Some(leaf) = m.chain.first()
        {
            write_atomic(&cert_der, leaf.as_ref(), false)?;
        }
        return Ok(m);
    }

    let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| (*s).to_owned()).collect();
    for name in extra_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pixsim self-signed");
    let key_pair = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key_pair)?;

    fs::create_dir_all(&dir)
        .map_err(|e| QuicError::io(format!("creating {}", dir.display()), e))?;
    // Key and DER first: cert.pem + key.pem present marks a complete set.
    write_atomic(&key_pem, key_pair.serialize_pem().as_bytes(), true)?;
    write_atomic(&cert_der, cert.der().as_ref(), false)?;
    write_atomic(&cert_pem, cert.pem().as_bytes(), false)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    material(vec![cert.der().clone()], key, CertSource::Generated(dir))
}

fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), QuicError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let err = |e| QuicError::io(format!("writing {}", path.display()), e);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = opts.open(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fingerprint_format() {
        let fp = fingerprint(b"hello");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.starts_with("2c:f2:4d:ba"));
        assert!(fp.split(':').all(|pair| pair.len() == 2));
    }
}
