//! An instant in-process provider for tests and benchmarks: answers submit with a tiny
//! real GIF at once (or after a delay), with that one-frame GIF as its poster (as a
//! provider that sends a thumbnail: the completion makes none, so a job costs no media
//! work), optionally requiring accounts, and measures the concurrency it sees per
//! account.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use crate::model::{GenerationParams, InputRef, Operation};
use crate::params::Issues;
use crate::provider::{
    BoxFuture, Credentials, MediaResult, PollResult, Provider, ProviderError, RemoteStatus,
    SubmitRequest, Submitted,
};

/// Concurrency seen per account.
#[derive(Debug, Default)]
pub struct ConcurrencyProbe {
    current: Mutex<HashMap<Uuid, usize>>,
    max: Mutex<HashMap<Uuid, usize>>,
}

impl ConcurrencyProbe {
    fn enter(&self, id: Uuid) {
        if let (Ok(mut c), Ok(mut m)) = (self.current.lock(), self.max.lock()) {
            let n = c.entry(id).or_default();
            *n += 1;
            let mx = m.entry(id).or_default();
            *mx = (*mx).max(*n);
        }
    }
    fn leave(&self, id: Uuid) {
        if let Ok(mut c) = self.current.lock()
            && let Some(n) = c.get_mut(&id)
        {
            *n = n.saturating_sub(1);
        }
    }
    /// Highest concurrency seen per account.
    pub fn max_seen(&self) -> HashMap<Uuid, usize> {
        self.max.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The instant provider.
#[derive(Debug)]
pub struct InstantProvider {
    id: String,
    requires_account: bool,
    delay: Duration,
    gif: Vec<u8>,
    pub submits: AtomicUsize,
    pub probe: ConcurrencyProbe,
}

impl InstantProvider {
    /// `id` is its registry name; `delay` is how long each submit takes.
    pub fn new(id: &str, requires_account: bool, delay: Duration) -> Arc<Self> {
        Arc::new(InstantProvider {
            id: id.to_owned(),
            requires_account,
            delay,
            gif: super::sample_gif(1),
            submits: AtomicUsize::new(0),
            probe: ConcurrencyProbe::default(),
        })
    }
}

impl Provider for InstantProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn is_synchronous(&self) -> bool {
        true
    }

    fn requires_account(&self) -> bool {
        self.requires_account
    }

    fn validate(
        &self,
        op: Operation,
        params: &GenerationParams,
        _inputs: &[InputRef],
        issues: &mut Issues,
    ) -> GenerationParams {
        crate::provider::local::validate(op, params, issues)
    }

    fn submit<'a>(
        &'a self,
        creds: Option<&'a Credentials>,
        req: &'a SubmitRequest,
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        Box::pin(async move {
            self.submits.fetch_add(1, Ordering::SeqCst);
            let account = creds.map(|c| c.account_id);
            if let Some(a) = account {
                self.probe.enter(a);
            }
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if let Some(a) = account {
                self.probe.leave(a);
            }
            Ok(Submitted {
                remote_id: format!("instant-{}-{}", req.job_id.simple(), req.attempt),
                immediate: Some(MediaResult {
                    bytes: self.gif.clone(),
                    thumbnail: Some(self.gif.clone()),
                    remote_url: None,
                }),
            })
        })
    }

    fn poll<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        _remote_id: &'a str,
    ) -> BoxFuture<'a, Result<PollResult, ProviderError>> {
        Box::pin(async move {
            Ok(PollResult {
                status: RemoteStatus::Deleted,
                progress: None,
                result_url: None,
                next_poll: None,
                error_code: None,
                error_message: None,
            })
        })
    }
}
