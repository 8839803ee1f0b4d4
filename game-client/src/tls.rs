//! Which server certificate the client trusts: a pinned SHA-256 fingerprint (as the
//! server prints it at startup) or the certificates of a PEM/DER file, turned into a
//! TLS 1.3 `rustls` client configuration. [`TlsError`] is every way that can fail.
//!
//! The client side of the transport lives here and in [`crate::transport`] so that the
//! client depends on the wire protocol only, never on the server's `quic` crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// How the client decides to trust the server certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Accept exactly the certificate with this SHA-256 fingerprint (hex,
    /// colons optional), as printed by the server at startup.
    Fingerprint(String),
    /// Validate against the certificate(s) in this PEM or DER file (the
    /// server's self-signed certificate, or a CA); the server name must
    /// match.
    CertFile(PathBuf),
}

/// Bad trust configuration: fingerprint, certificate file, TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Unreadable PEM/DER certificate file.
    #[error("{}: {message}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// TLS configuration rejected (unusable certificate...).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Invalid transport configuration.
    #[error("invalid QUIC configuration: {0}")]
    Config(String),
    /// Not a SHA-256 fingerprint.
    #[error("invalid certificate fingerprint {0}")]
    BadFingerprint(String),
}

/// SHA-256 of `der`, as lowercase hex pairs joined by `:` (the form the server prints).
pub fn fingerprint(der: &[u8]) -> String {
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

/// Parses a SHA-256 fingerprint: 64 hex digits, case-insensitive, with or
/// without `:` (or space) separators.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], TlsError> {
    let digits: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':' && *c != ' ')
        .collect();
    let bytes =
        hex::decode(&digits).map_err(|e| TlsError::BadFingerprint(format!("{text:?}: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        TlsError::BadFingerprint(format!(
            "{text:?}: expected 32 bytes (64 hex digits), got {}",
            bytes.len()
        ))
    })
}

/// Reads certificates from a PEM file (all `CERTIFICATE` sections) or, if
/// it is not PEM, a single DER certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let pem_error = |message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(pem_error("no CERTIFICATE section".into()));
        }
        Ok(certs)
    } else if bytes.is_empty() {
        Err(pem_error("empty file".into()))
    } else {
        Ok(vec![CertificateDer::from(bytes)])
    }
}

/// The TLS 1.3 client configuration (no ALPN yet) that trusts what `trust` says.
pub fn rustls_config(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    match trust {
        Trust::Fingerprint(fp) => pinned(fp),
        Trust::CertFile(path) => with_roots(load_certs(path)?),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts only the server certificate whose SHA-256 is `fingerprint`; the server
/// name is not checked.
fn pinned(fingerprint: &str) -> Result<rustls::ClientConfig, TlsError> {
    rustls_config_pinned(vec![parse_fingerprint(fingerprint)?])
}

/// The TLS 1.3 client configuration (no ALPN yet) that accepts only a server
/// certificate whose SHA-256 is one of `hashes` (as a browser's WebTransport
/// `serverCertificateHashes`); the server name is not checked.
pub fn rustls_config_pinned(hashes: Vec<[u8; 32]>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = PinnedVerifier {
        sha256: hashes,
        algorithms: provider.signature_verification_algorithms,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Validates the server certificate (chain and server name) against `roots`, e.g.
/// the server's self-signed `cert.pem` or a private CA.
fn with_roots(roots: Vec<CertificateDer<'static>>) -> Result<rustls::ClientConfig, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(store)
        .with_no_client_auth())
}

/// Accepts exactly the leaf certificates identified by these SHA-256s; the
/// handshake signature is still verified against the certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    sha256: Vec<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if self.sha256.contains(&got) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(
                presented = %fingerprint(end_entity.as_ref()),
                "server certificate does not match the pinned fingerprint"
            );
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fingerprints_round_trip_with_or_without_separators() {
        let fp = fingerprint(b"certificate");
        assert_eq!(fp.len(), 32 * 3 - 1);
        let bytes: [u8; 32] = Sha256::digest(b"certificate").into();
        assert_eq!(parse_fingerprint(&fp).unwrap(), bytes);
        assert_eq!(
            parse_fingerprint(&fp.replace(':', "").to_uppercase()).unwrap(),
            bytes
        );
        assert!(matches!(
            parse_fingerprint("ab:cd"),
            Err(TlsError::BadFingerprint(_))
        ));
        assert!(matches!(
            parse_fingerprint("zz"),
            Err(TlsError::BadFingerprint(_))
        ));
    }

    #[test]
    fn a_missing_or_empty_certificate_file_is_a_config_error() {
        let missing = Path::new("/nonexistent/pixsim/cert.pem");
        assert!(matches!(load_certs(missing), Err(TlsError::Read { .. })));
        let dir = std::env::temp_dir().join(format!("pixsim-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.der");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(load_certs(&empty), Err(TlsError::Pem { .. })));
        let no_cert = dir.join("nocert.pem");
        std::fs::write(
            &no_cert,
            b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(load_certs(&no_cert).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
