//! The certificates the endpoint holds and rotates: the current one (served) and the
//! next one (served from the next rotation), both published so a client that fetched
//! the hashes just before a rotation still connects after it. The rustls
//! [`ResolvesServerCert`] reads the current one on each handshake, so a rotation needs
//! no restart.
//!
//! Timing, for a rotation period `P` (5 days by default) and validity `V` (10 days):
//! the next certificate is made when the current one starts serving; it is valid from
//! [`CLOCK_SKEW`] before its own turn, and so outlives its turn by `V - P - skew`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::WebTransportError;
use crate::cert::{CERT_VALIDITY, Certificate};

/// How long before its turn a certificate is already valid (client clocks that run
/// behind).
pub const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Longest rotation period: a certificate then still has `CERT_VALIDITY - 7 days -
/// skew` (about 3 days) of validity left when it is rotated out.
pub const MAX_ROTATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The hash of one certificate and when it is valid, as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedCert {
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

/// What clients need to pin the endpoint: the current certificate first, then the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// Current, then next.
    pub certificates: Vec<PublishedCert>,
    /// When the next certificate takes over.
    pub rotates_at: SystemTime,
}

impl Published {
    /// The current certificate's end of validity.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.certificates.first().map(|c| c.not_after)
    }
}

#[derive(Debug)]
struct Pair {
    current: Arc<Certificate>,
    next: Arc<Certificate>,
    /// When `next` takes over.
    next_at: SystemTime,
}

/// The current and next certificates; cheap to share (`Arc`).
#[derive(Debug)]
pub struct CertStore {
    pair: RwLock<Pair>,
    period: Duration,
    names: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl CertStore {
    /// A current certificate valid from now (less the skew) and its successor for the
    /// turn starting `period` from now.
    pub fn new(
        period: Duration,
        names: Vec<String>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, WebTransportError> {
        check_period(period)?;
        let now = SystemTime::now();
        let current = Certificate::generate(now - CLOCK_SKEW, &names, &provider)?;
        let next_at = now + period;
        let next = Certificate::generate(next_at - CLOCK_SKEW, &names, &provider)?;
        Ok(CertStore {
            pair: RwLock::new(Pair {
                current: Arc::new(current),
                next: Arc::new(next),
                next_at,
            }),
            period,
            names,
            provider,
        })
    }

    /// The rotation period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<Certificate> {
        Arc::clone(&self.read().current)
    }

    /// The certificate served from the next rotation.
    pub fn next(&self) -> Arc<Certificate> {
        Arc::clone(&self.read().next)
    }

    /// When the next rotation is due.
    pub fn next_rotation(&self) -> SystemTime {
        self.read().next_at
    }

    /// The hashes to publish (current, next) and when the next takes over.
    pub fn published(&self) -> Published {
        let pair = self.read();
        let entry = |c: &Certificate| PublishedCert {
            sha256: c.sha256(),
            not_before: c.not_before(),
            not_after: c.not_after(),
        };
        Published {
            certificates: vec![entry(&pair.current), entry(&pair.next)],
            rotates_at: pair.next_at,
        }
    }

    /// Rotates now: the next certificate becomes the current one, and a new next one
    /// is made for the turn starting one period from now. The endpoint calls it when
    /// [`Self::next_rotation`] comes; tests call it directly (with a period of at most
    /// [`CLOCK_SKEW`] the next certificate is valid from its making, so an early
    /// rotation serves a certificate valid now).
    pub fn rotate_now(&self) -> Result<(), WebTransportError> {
        let now = SystemTime::now();
        let next_at = now + self.period;
        // Made outside the lock: handshakes keep reading the pair meanwhile.
        let fresh = Certificate::generate(next_at - CLOCK_SKEW, &self.names, &self.provider)?;
        let mut pair = self.pair.write().unwrap_or_else(|p| p.into_inner());
        let promoted = std::mem::replace(&mut pair.next, Arc::new(fresh));
        pair.current = promoted;
        pair.next_at = next_at;
        tracing::info!(
            current = %hex(&pair.current.sha256()),
            next = %hex(&pair.next.sha256()),
            "WebTransport certificate rotated"
        );
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Pair> {
        self.pair.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// A rotation period is positive and at most [`MAX_ROTATION`].
pub(crate) fn check_period(period: Duration) -> Result<(), WebTransportError> {
    if period.is_zero() || period > MAX_ROTATION {
        return Err(WebTransportError::Config(format!(
            "certificate rotation period {period:?} must be above 0 and at most {MAX_ROTATION:?} \
             (certificates are valid {CERT_VALIDITY:?})"
        )));
    }
    Ok(())
}

/// Lowercase hex, for logs.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves the store's current certificate on each handshake.
#[derive(Debug)]
pub(crate) struct Resolver(pub(crate) Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified_key())
    }
}
