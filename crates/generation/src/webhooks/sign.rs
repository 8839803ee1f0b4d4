//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the secret is
//! `whsec_` and the base64 of random bytes; a message is signed as the base64 of
//! HMAC-SHA256, keyed by those bytes, of `{webhook-id}.{webhook-timestamp}.{body}`, and
//! sent as `webhook-signature: v1,<signature>` (several, space-separated, during a key
//! rotation).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signature could not be made or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("a webhook secret starts with whsec_ followed by base64")]
    MalformedSecret,
    #[error("no v1 signature matches")]
    Mismatch,
    #[error("the timestamp is outside the tolerance")]
    Stale,
}

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

/// The key bytes of a secret (`whsec_…`; the bare base64 is accepted too).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SignError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = B64.decode(b64).map_err(|_| SignError::MalformedSecret)?;
    if key.is_empty() {
        return Err(SignError::MalformedSecret);
    }
    Ok(key)
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, SignError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SignError::MalformedSecret)?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The `webhook-signature` header value of a message: `v1,<base64>`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
    let sig = mac(key, msg_id, timestamp, body)?.finalize().into_bytes();
    Ok(format!("v1,{}", B64.encode(sig)))
}

/// Checks a received message as a receiver should: one of the space-separated `v1,`
/// signatures matches (compared in constant time) and the timestamp lies within
/// `tolerance_secs` of `now`.
pub fn verify(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignError> {
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignError::Stale);
    }
    for candidate in signature_header.split(' ') {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(sig) = B64.decode(b64) else {
            continue;
        };
        if mac(key, msg_id, timestamp, body)?
            .verify_slice(&sig)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(SignError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and its reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specification_example_signs_as_published() -> Result<(), SignError> {
        let key = secret_key(SECRET)?;
        assert_eq!(sign(&key, MSG_ID, TIMESTAMP, BODY.as_bytes())?, EXPECTED);
        Ok(())
    }

    #[test]
    fn verify_accepts_a_match_among_several_and_refuses_tampering_and_staleness()
    -> Result<(), SignError> {
        let key = secret_key(SECRET)?;
        let header = format!("v1,bm90IGl0 {EXPECTED}");
        verify(
            &key,
            MSG_ID,
            TIMESTAMP,
            BODY.as_bytes(),
            &header,
            TIMESTAMP + 10,
            300,
        )?;
        let tampered = r#"{"test": 2432232315}"#;
        assert_eq!(
            verify(
                &key,
                MSG_ID,
                TIMESTAMP,
                tampered.as_bytes(),
                EXPECTED,
                TIMESTAMP,
                300
            ),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            verify(
                &key,
                "msg_other",
                TIMESTAMP,
                BODY.as_bytes(),
                EXPECTED,
                TIMESTAMP,
                300
            ),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            verify(
                &key,
                MSG_ID,
                TIMESTAMP,
                BODY.as_bytes(),
                EXPECTED,
                TIMESTAMP + 301,
                300
            ),
            Err(SignError::Stale)
        );
        Ok(())
    }

    #[test]
    fn new_secrets_are_prefixed_random_32_bytes() -> Result<(), SignError> {
        let a = new_secret();
        let b = new_secret();
        assert!(a.starts_with(SECRET_PREFIX));
        assert_ne!(a, b);
        assert_eq!(secret_key(&a)?.len(), 32);
        assert_eq!(secret_key("whsec_!!"), Err(SignError::MalformedSecret));
        Ok(())
    }
}
