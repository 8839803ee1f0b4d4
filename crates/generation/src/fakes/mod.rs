//! Contract fakes for tests and benchmarks (feature `fakes`): local HTTP servers that
//! speak the Pixverse, OpenAI and Replicate video contracts, check the headers and envelopes, and
//! can be scripted per request (429 with Retry-After, moderation, out of credits, 5xx,
//! slow answers, malformed bodies); and an instant in-process provider.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod embeddings;
pub mod instant;
pub mod openai;
pub mod pixverse;
pub mod replicate;

/// Which kind of request an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Upload,
    Submit,
    Poll,
    /// Result bytes (Pixverse media URL, OpenAI `/content`).
    Content,
    /// Pixverse `GET /account/balance`.
    Balance,
    /// OpenAI `DELETE /v1/videos/{id}`.
    Delete,
    /// Replicate `POST /v1/predictions/{id}/cancel`.
    Cancel,
    /// A GET of the base URL itself (what a reachability probe sends).
    Root,
}

/// A scripted answer for the next request to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// HTTP 429 with `Retry-After: secs`.
    RateLimit { retry_after_secs: u64 },
    /// Refused by moderation (on submit/upload: an error, or for Replicate a
    /// prediction that fails as sensitive; on poll: a filtered status).
    Moderation,
    /// Out of credits (Pixverse 500090, OpenAI 429 `insufficient_quota`).
    OutOfCredits,
    /// Pixverse 500044 concurrent-generation limit.
    ConcurrencyLimit,
    /// HTTP 500 (or 503).
    ServerError,
    /// Answer normally after this delay.
    Slow(Duration),
    /// HTTP 200 with a body that is not the contract's.
    Malformed,
    /// HTTP 401.
    Unauthorized,
    /// Poll: the remote job failed.
    RemoteFailed,
}

/// What a fake saw.
#[derive(Debug, Default)]
pub struct Record {
    /// Requests per endpoint.
    pub counts: HashMap<Endpoint, usize>,
    /// Every trace id seen (Pixverse).
    pub trace_ids: HashSet<String>,
    /// Contract violations by the client (missing/duplicate headers, bad bodies).
    pub violations: Vec<String>,
    /// Submitted bodies (JSON, or multipart fields as JSON).
    pub submits: Vec<serde_json::Value>,
    /// Webhooks the fake sent (Replicate): `(url, HTTP status answered, or 0 when the
    /// request failed)`.
    pub webhooks: Vec<(String, u16)>,
}

/// Shared control of a fake: scripts and records.
#[derive(Debug, Default)]
pub struct Control {
    scripts: Mutex<HashMap<Endpoint, VecDeque<Action>>>,
    record: Mutex<Record>,
    /// Polls answered "processing" before "succeeded".
    pub polls_until_done: Mutex<usize>,
    /// Pixverse: the account's `(credit_monthly, credit_package)`, and what one
    /// generate costs (`None`: the balance is not tracked; generate never runs out).
    billing: Mutex<Option<Billing>>,
}

/// A fake's credit balance (see [`Control::set_balance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Billing {
    pub monthly: i64,
    pub package: i64,
    /// Credits one accepted generate takes.
    pub cost: i64,
}

impl Control {
    /// Queues an action for the next request to `ep`.
    pub fn push(&self, ep: Endpoint, action: Action) {
        if let Ok(mut s) = self.scripts.lock() {
            s.entry(ep).or_default().push_back(action);
        }
    }

    pub(crate) fn next(&self, ep: Endpoint) -> Option<Action> {
        if let Ok(mut r) = self.record.lock() {
            *r.counts.entry(ep).or_default() += 1;
        }
        self.scripts
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(&ep).and_then(VecDeque::pop_front))
    }

    pub(crate) fn with_record<T>(&self, f: impl FnOnce(&mut Record) -> T) -> Option<T> {
        self.record.lock().ok().map(|mut r| f(&mut r))
    }

    /// Requests seen at an endpoint.
    pub fn count(&self, ep: Endpoint) -> usize {
        self.with_record(|r| r.counts.get(&ep).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Contract violations seen.
    pub fn violations(&self) -> Vec<String> {
        self.with_record(|r| r.violations.clone())
            .unwrap_or_default()
    }

    /// Submitted bodies.
    pub fn submits(&self) -> Vec<serde_json::Value> {
        self.with_record(|r| r.submits.clone()).unwrap_or_default()
    }

    /// Webhooks sent, with the status each got (Replicate).
    pub fn webhooks(&self) -> Vec<(String, u16)> {
        self.with_record(|r| r.webhooks.clone()).unwrap_or_default()
    }

    pub fn set_polls_until_done(&self, n: usize) {
        if let Ok(mut p) = self.polls_until_done.lock() {
            *p = n;
        }
    }

    /// Tracks a balance (Pixverse): each accepted generate takes `cost` credits
    /// (monthly ones first), a generate the balance cannot pay is refused with 500090,
    /// and a moderation failure (status 7) gives the cost back, as documented.
    pub fn set_balance(&self, monthly: i64, package: i64, cost: i64) {
        if let Ok(mut b) = self.billing.lock() {
            *b = Some(Billing {
                monthly,
                package,
                cost,
            });
        }
    }

    /// The tracked balance, if any.
    pub fn balance(&self) -> Option<Billing> {
        self.billing.lock().ok().and_then(|b| *b)
    }

    /// Takes one generate's cost; false when the balance cannot pay it.
    pub(crate) fn charge(&self) -> bool {
        let Ok(mut b) = self.billing.lock() else {
            return false;
        };
        match b.as_mut() {
            None => true,
            Some(b) if b.monthly + b.package < b.cost => false,
            Some(b) => {
                let from_monthly = b.cost.min(b.monthly);
                b.monthly -= from_monthly;
                b.package -= b.cost - from_monthly;
                true
            }
        }
    }

    /// Gives one generate's cost back (to the package credits).
    pub(crate) fn refund(&self) {
        if let Ok(mut b) = self.billing.lock()
            && let Some(b) = b.as_mut()
        {
            b.package += b.cost;
        }
    }

    pub(crate) fn polls_needed(&self) -> usize {
        self.polls_until_done.lock().map(|p| *p).unwrap_or(1)
    }
}

/// A running fake server (stops when dropped).
#[derive(Debug)]
pub struct FakeServer {
    pub addr: SocketAddr,
    pub control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves a router on an ephemeral loopback port.
pub async fn serve(router: axum::Router, control: Arc<Control>) -> std::io::Result<FakeServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!("fake server stopped: {e}");
        }
    });
    Ok(FakeServer {
        addr,
        control,
        task,
    })
}

/// A small, real animated GIF (the fakes' "video" result).
pub fn sample_gif(seed: u64) -> Vec<u8> {
    crate::render::sample_gif(seed, 16, 16, 3, 10)
}

/// A small, real PNG.
pub fn sample_png(seed: u64) -> Vec<u8> {
    crate::render::sample_png(seed, 16, 16)
}
