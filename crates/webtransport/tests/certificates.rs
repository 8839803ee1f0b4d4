//! The certificates Chromium must accept for `serverCertificateHashes`, and their
//! rotation.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use webtransport::{CERT_VALIDITY, CLOCK_SKEW, CertStore, Certificate, MAX_ROTATION};
use x509_cert::Certificate as X509;
use x509_cert::der::{Decode, asn1::ObjectIdentifier};

const ID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const SECP256R1: &str = "1.2.840.10045.3.1.7";
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const DAY: Duration = Duration::from_secs(24 * 3600);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Key type, signature, validity period, as the certificate itself says.
fn check_x509(cert: &Certificate) -> (u64, u64) {
    let x = X509::from_der(cert.der().as_ref()).unwrap();
    let spki = &x.tbs_certificate.subject_public_key_info;
    assert_eq!(
        spki.algorithm.oid,
        ObjectIdentifier::new_unwrap(ID_EC_PUBLIC_KEY)
    );
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .unwrap()
        .decode_as::<ObjectIdentifier>()
        .unwrap();
    assert_eq!(curve, ObjectIdentifier::new_unwrap(SECP256R1), "P-256");
    assert_eq!(
        x.signature_algorithm.oid,
        ObjectIdentifier::new_unwrap(ECDSA_WITH_SHA256)
    );
    let validity = &x.tbs_certificate.validity;
    (
        validity.not_before.to_unix_duration().as_secs(),
        validity.not_after.to_unix_duration().as_secs(),
    )
}

#[test]
fn a_certificate_is_ecdsa_p256_valid_ten_days_and_its_hash_is_the_sha256_of_its_der() {
    let now = SystemTime::now();
    let cert = Certificate::generate(now, &["game.example".into()], &provider()).unwrap();
    let (not_before, not_after) = check_x509(&cert);
    assert_eq!(not_before, unix(now));
    assert_eq!(not_after - not_before, CERT_VALIDITY.as_secs());
    assert!(
        Duration::from_secs(not_after - not_before) <= 14 * DAY,
        "Chromium refuses a pinned certificate valid longer than 14 days"
    );
    assert_eq!(
        (unix(cert.not_before()), unix(cert.not_after())),
        (not_before, not_after)
    );
    let digest: [u8; 32] = Sha256::digest(cert.der().as_ref()).into();
    assert_eq!(cert.sha256(), digest);
}

#[test]
fn the_store_publishes_current_then_next_each_valid_for_its_whole_turn() {
    let period = 5 * DAY;
    let before = SystemTime::now();
    let store = CertStore::new(period, Vec::new(), provider()).unwrap();
    let published = store.published();
    let (current, next) = (store.current(), store.next());
    let hashes: Vec<_> = published.certificates.iter().map(|c| c.sha256).collect();
    assert_eq!(hashes, vec![current.sha256(), next.sha256()]);
    assert_ne!(current.sha256(), next.sha256());
    assert_eq!(published.expires_at(), Some(current.not_after()));
    for cert in [&current, &next] {
        check_x509(cert);
    }
    // The current one serves from now until the rotation, with days to spare.
    assert!(current.not_before() <= before);
    let turn_end = store.next_rotation() + period;
    assert!(store.next_rotation() >= before + period);
    // The next one is valid when its turn comes (less the skew) and through its turn.
    assert!(next.not_before() <= store.next_rotation() - CLOCK_SKEW + Duration::from_secs(1));
    assert!(
        next.not_after() >= turn_end + 4 * DAY,
        "margin after its turn"
    );
    assert!(current.not_after() >= store.next_rotation() + 4 * DAY);
}

#[test]
fn rotation_serves_the_previous_next_and_publishes_a_new_next() {
    // A period within the clock skew: every certificate is valid from its making, so
    // an early rotation serves a certificate valid now.
    let store = CertStore::new(CLOCK_SKEW, Vec::new(), provider()).unwrap();
    let (old_current, old_next) = (store.current(), store.next());
    let rotation_before = store.next_rotation();
    store.rotate_now().unwrap();
    let now = SystemTime::now();
    let current = store.current();
    assert_eq!(
        current.sha256(),
        old_next.sha256(),
        "the previous next serves"
    );
    assert_ne!(current.sha256(), old_current.sha256());
    assert!(
        current.not_before() <= now && now < current.not_after(),
        "valid now"
    );
    let published: Vec<_> = store
        .published()
        .certificates
        .iter()
        .map(|c| c.sha256)
        .collect();
    assert_eq!(
        published[0],
        old_next.sha256(),
        "the hash clients have still works"
    );
    assert_ne!(published[1], old_next.sha256());
    assert_ne!(published[1], old_current.sha256());
    assert!(store.next_rotation() >= rotation_before);
}

#[test]
fn a_rotation_period_outside_the_validity_is_refused() {
    assert!(CertStore::new(Duration::ZERO, Vec::new(), provider()).is_err());
    assert!(CertStore::new(MAX_ROTATION + DAY, Vec::new(), provider()).is_err());
    assert!(CertStore::new(MAX_ROTATION, Vec::new(), provider()).is_ok());
}
