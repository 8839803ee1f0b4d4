//! Webhooks from providers (`POST /api/v1/providers/{id}/webhook`). A provider that
//! signs its webhooks the Standard Webhooks way (Replicate does) tells us a submission
//! changed; the webhook only cuts the poll loop's wait short: the poll that follows
//! stays the source of truth, so a lost, late or repeated webhook costs nothing but
//! latency, and a forged one is refused before it reaches anything.

use std::time::{Duration, Instant};

use super::GenerationService;
use crate::error::GenerationError;
use crate::outbox::Message;
use crate::provider::{Credentials, Provider};
use crate::webhooks::sign;

/// How far a webhook's timestamp may be from our clock (replays older than this are
/// refused).
const TOLERANCE_SECS: i64 = 300;
/// Signing keys are read from the provider again after this long …
const KEYS_FRESH: Duration = Duration::from_secs(3600);
/// … or, when a signature does not verify (a key may have been rotated), at most this
/// often: a stranger's forged webhooks cannot make us call the provider more.
const KEYS_RETRY: Duration = Duration::from_secs(60);

/// A provider's webhook as received: its Standard Webhooks headers and raw body.
#[derive(Debug, Clone, Copy)]
pub struct ProviderWebhook<'a> {
    pub msg_id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
    pub body: &'a [u8],
}

impl GenerationService {
    /// Verifies a provider's webhook against the signing keys of the provider's
    /// accounts and, when it verifies, wakes the poll loop of the submission it is
    /// about (here, or through Redis on the node polling it). An unknown provider is
    /// `NotFound`; a signature that does not verify, or a timestamp more than five
    /// minutes off, `WebhookRefused`; a body naming no submission, `InvalidParameters`.
    /// Returns whether this process polls the submission.
    pub async fn provider_webhook(
        &self,
        provider_id: &str,
        hook: ProviderWebhook<'_>,
    ) -> Result<bool, GenerationError> {
        let provider = self
            .shared
            .providers
            .get(provider_id)
            .ok_or(GenerationError::NotFound("provider"))?;
        let timestamp: i64 = hook.timestamp.trim().parse().map_err(|_| {
            GenerationError::WebhookRefused("webhook-timestamp is not a number".into())
        })?;
        let now = chrono::Utc::now().timestamp();
        if (now - timestamp).abs() > TOLERANCE_SECS {
            return Err(GenerationError::WebhookRefused(
                "webhook-timestamp is more than five minutes off".into(),
            ));
        }
        let verifies = |keys: &[Vec<u8>]| {
            keys.iter().any(|k| {
                sign::verify(
                    k,
                    hook.msg_id,
                    timestamp,
                    hook.body,
                    hook.signature,
                    now,
                    TOLERANCE_SECS,
                )
                .is_ok()
            })
        };
        let mut cache = self.shared.webhook_keys.lock().await;
        let stale = cache
            .get(provider_id)
            .is_none_or(|(at, _)| at.elapsed() > KEYS_FRESH);
        if stale {
            let keys = self.read_webhook_keys(provider_id, &*provider).await?;
            cache.insert(provider_id.to_owned(), (Instant::now(), keys));
        }
        let mut ok = cache.get(provider_id).is_some_and(|(_, k)| verifies(k));
        if !ok
            && cache
                .get(provider_id)
                .is_some_and(|(at, _)| at.elapsed() > KEYS_RETRY)
        {
            let keys = self.read_webhook_keys(provider_id, &*provider).await?;
            ok = verifies(&keys);
            cache.insert(provider_id.to_owned(), (Instant::now(), keys));
        }
        drop(cache);
        if !ok {
            return Err(GenerationError::WebhookRefused(
                "the signature does not verify with any of the provider's accounts".into(),
            ));
        }
        let subject = provider.webhook_subject(hook.body).ok_or_else(|| {
            GenerationError::invalid("body", "invalid_value", "names no submission")
        })?;
        let here = self.shared.poke(&subject);
        if !here {
            self.shared.publish(Message::Poll { remote_id: subject });
        }
        Ok(here)
    }

    /// The webhook signing keys of the provider's active accounts.
    async fn read_webhook_keys(
        &self,
        provider_id: &str,
        provider: &dyn Provider,
    ) -> Result<Vec<Vec<u8>>, GenerationError> {
        let accounts =
            store::generation::accounts::list(&self.shared.pool, Some(provider_id), None).await?;
        let mut keys = Vec::new();
        for a in accounts
            .iter()
            .filter(|a| a.status == store::generation::kinds::AccountStatus::Active)
        {
            let Ok(creds) = Credentials::open(a, &self.shared.cfg.secret_key) else {
                continue;
            };
            match provider.webhook_secret(&creds).await {
                Ok(Some(secret)) => match sign::secret_key(&secret) {
                    Ok(k) => keys.push(k),
                    Err(e) => {
                        tracing::warn!(account = %a.id, provider = provider_id, error = %e, "a provider's webhook key is not usable")
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(account = %a.id, provider = provider_id, error = %e, "could not read a provider's webhook key")
                }
            }
        }
        Ok(keys)
    }
}
