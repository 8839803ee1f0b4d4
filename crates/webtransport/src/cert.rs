//! One generated certificate, the kind Chromium accepts for `serverCertificateHashes`:
//! self-signed, ECDSA P-256, valid [`CERT_VALIDITY`] (at most 14 days), held in memory
//! only (a restart makes new ones), with the SHA-256 of its DER that clients pin.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::WebTransportError;

/// How long a generated certificate is valid (Chromium refuses more than 14 days for
/// a certificate pinned by hash).
pub const CERT_VALIDITY: Duration = Duration::from_secs(10 * 24 * 3600);

/// Names always put in a certificate's subject alternative names (clients pinning by
/// hash do not check names; tools that print the certificate show them).
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A generated certificate with its key, ready to serve.
#[derive(Debug)]
pub struct Certificate {
    der: CertificateDer<'static>,
    key: Arc<CertifiedKey>,
    sha256: [u8; 32],
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Certificate {
    /// A new self-signed ECDSA P-256 certificate valid from `not_before` for
    /// [`CERT_VALIDITY`], for `localhost`, the loopback addresses and `extra_names`.
    pub fn generate(
        not_before: SystemTime,
        extra_names: &[String],
        provider: &CryptoProvider,
    ) -> Result<Self, WebTransportError> {
        // Whole seconds: X.509 times carry no fraction.
        let not_before = UNIX_EPOCH + Duration::from_secs(unix_secs(not_before));
        let not_after = not_before + CERT_VALIDITY;
        let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| (*s).to_owned()).collect();
        for name in extra_names {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pixsim webtransport");
        params.not_before = offset_date_time(not_before)?;
        params.not_after = offset_date_time(not_after)?;
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key_pair)?;
        let der = cert.der().clone();
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let signer = provider.key_provider.load_private_key(private)?;
        let key = Arc::new(CertifiedKey::new(vec![der.clone()], signer));
        let sha256 = Sha256::digest(der.as_ref()).into();
        Ok(Certificate {
            der,
            key,
            sha256,
            not_before,
            not_after,
        })
    }

    /// The certificate as DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// SHA-256 of [`Self::der`]: the value of `serverCertificateHashes`.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// Start of validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// What rustls serves.
    pub(crate) fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.key)
    }
}

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn offset_date_time(t: SystemTime) -> Result<time::OffsetDateTime, WebTransportError> {
    let secs = i64::try_from(unix_secs(t))
        .map_err(|_| WebTransportError::Config(format!("time {t:?} out of range")))?;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| WebTransportError::Config(format!("time {t:?} out of range: {e}")))
}
