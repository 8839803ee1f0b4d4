//! Provider API keys at rest: sealed with ChaCha20-Poly1305 under a 32-byte key that
//! comes from the server's configuration or its state dir, never from the database.
//!
//! A sealed key is stored as `v1:` followed by base64 of a fresh 12-byte nonce and the
//! ciphertext with its tag. The account id is the associated data, so a sealed key
//! copied onto another account does not open. A stored value without the prefix is a
//! key written before sealing existed: it is read as it is, and
//! [`crate::GenerationService::seal_stored_keys`] seals it at startup.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key};
use uuid::Uuid;

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// Why a key could not be sealed, opened or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the stored API key does not open with this server's secret key")]
    WrongKey,
    #[error("the stored API key is malformed")]
    Malformed,
    #[error("the secret key must be 32 bytes, as 64 hex digits or base64")]
    BadKey,
}

/// The key that seals provider API keys. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// A fresh random key (tests; a process whose keys need not outlive it).
    pub fn random() -> Self {
        SecretKey(ChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// 64 hex digits or base64 of 32 bytes (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let s = s.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|_| SecretError::BadKey)?
        } else {
            B64.decode(s).map_err(|_| SecretError::BadKey)?
        };
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(SecretKey(arr))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Seals `plain` for the account `account`.
    pub fn seal(&self, account: Uuid, plain: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: account.as_bytes(),
        };
        // Encryption fails only for messages over 256 GiB.
        let ct = self.cipher().encrypt(&nonce, payload).unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Opens what [`Self::seal`] made for `account`; a value without the prefix is a
    /// legacy plaintext key and is returned as it is.
    pub fn open(&self, account: Uuid, stored: &str) -> Result<String, SecretError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let raw = B64.decode(b64).map_err(|_| SecretError::Malformed)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Malformed);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Malformed)?;
        let plain = self
            .cipher()
            .decrypt(
                &chacha20poly1305::Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: account.as_bytes(),
                },
            )
            .map_err(|_| SecretError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SecretError::Malformed)
    }

    /// True when `stored` is sealed (not a legacy plaintext key).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

/// The last four characters of a key, as users see it.
pub fn hint(plain: &str) -> String {
    let chars: Vec<char> = plain.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_account() {
        let k = SecretKey::random();
        let a = Uuid::new_v4();
        let sealed = k.seal(a, "sk-very-secret-1234");
        assert!(SecretKey::is_sealed(&sealed));
        assert!(!sealed.contains("very-secret"));
        assert_eq!(k.open(a, &sealed).expect("opens"), "sk-very-secret-1234");
        assert!(matches!(
            k.open(Uuid::new_v4(), &sealed),
            Err(SecretError::WrongKey)
        ));
        assert!(matches!(
            SecretKey::random().open(a, &sealed),
            Err(SecretError::WrongKey)
        ));
        // Two seals of one key differ (fresh nonces).
        assert_ne!(k.seal(a, "x"), k.seal(a, "x"));
        // Legacy plaintext passes through; garbage after the prefix is refused.
        assert_eq!(k.open(a, "plain-key").expect("legacy"), "plain-key");
        assert!(matches!(k.open(a, "v1:%%%"), Err(SecretError::Malformed)));
        assert!(matches!(k.open(a, "v1:AAAA"), Err(SecretError::Malformed)));
    }

    #[test]
    fn keys_parse_from_hex_or_base64_of_32_bytes_only() {
        assert!(format!("{:?}", SecretKey::random()).contains('…'));
        assert!(SecretKey::parse("00").is_err());
        assert!(SecretKey::parse(&"ab".repeat(32)).is_ok());
        assert!(SecretKey::parse(&"ab".repeat(31)).is_err());
    }
}
