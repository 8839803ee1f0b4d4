//! A panicking attempt fails its job at once (`internal_panic`), releases its account
//! slot and closes its submission, instead of holding the job until its lease expires.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use generation::model::{GenerationParams, InputRef, JobStatus, Operation, SubmissionStatus};
use generation::params::Issues;
use generation::provider::{
    BoxFuture, Credentials, PollResult, Provider, ProviderError, SubmitRequest, Submitted,
};
use generation::{Executed, Outcome};

/// Where the provider panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Submit,
    Poll,
}

/// A provider with a bug: it panics in submit or in poll.
#[derive(Debug)]
struct PanickingProvider {
    id: &'static str,
    stage: Stage,
}

impl Provider for PanickingProvider {
    fn id(&self) -> &str {
        self.id
    }

    fn requires_account(&self) -> bool {
        true
    }

    fn validate(
        &self,
        op: Operation,
        params: &GenerationParams,
        _inputs: &[InputRef],
        issues: &mut Issues,
    ) -> GenerationParams {
        generation::provider::local::validate(op, params, issues)
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(10)
    }

    fn submit<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        req: &'a SubmitRequest,
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        Box::pin(async move {
            assert!(self.stage != Stage::Submit, "a bug in submit");
            Ok(Submitted {
                remote_id: format!("p-{}", req.job_id.simple()),
                immediate: None,
            })
        })
    }

    fn poll<'a>(
        &'a self,
        _creds: Option<&'a Credentials>,
        _remote_id: &'a str,
    ) -> BoxFuture<'a, Result<PollResult, ProviderError>> {
        Box::pin(async move {
            let b: &[u8] = &[];
            // An out-of-bounds slice, as the MP4 box walk once did.
            let n = b.len() + 8;
            let _ = &b[..n];
            unreachable!()
        })
    }
}

/// The lease is long (30 s): a job held until it expires would fail the test.
async fn setup(stage: Stage) -> (Env, uuid::Uuid) {
    let mut cfg = fast_config();
    cfg.lease = Duration::from_secs(30);
    cfg.reclaim_interval = Duration::from_secs(30);
    let p = Arc::new(PanickingProvider { id: "buggy", stage });
    let reg = registry_with(&cfg, vec![p]);
    let e = env_with(cfg, Some(reg)).await;
    let acc = e
        .svc
        .create_account(e.admin, account("buggy", "key"))
        .await
        .unwrap();
    (e, acc.id)
}

async fn assert_failed_and_released(e: &Env, job: uuid::Uuid, subs: usize) {
    let g = e.svc.get(e.user, job).await.unwrap();
    assert_eq!(g.status, JobStatus::Failed, "{g:?}");
    assert_eq!(g.error_code.as_deref(), Some("internal_panic"));
    let msg = g.error_message.as_deref().unwrap();
    assert!(
        !msg.contains("bug"),
        "the panic text stays in the log: {msg}"
    );
    let acc = &e.svc.list_accounts(e.admin, Some("buggy")).await.unwrap()[0];
    assert_eq!(acc.current_jobs, 0, "the account slot is released");
    let s = e.svc.submissions(e.user, job).await.unwrap();
    assert_eq!(s.len(), subs);
    assert!(
        s.iter().all(|s| s.status == SubmissionStatus::Failed),
        "{s:?}"
    );
}

/// Under `Worker::run` (jobs run as spawned tasks): a panic in poll fails the job within
/// a couple of seconds, not at lease expiry (30 s).
#[tokio::test]
async fn panic_in_poll_fails_the_job_at_once() {
    let (e, _) = setup(Stage::Poll).await;
    let g = e.svc.create(e.user, t2v("buggy", "boom")).await.unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(e.svc.worker().run(async move {
        let mut rx = rx;
        let _ = rx.wait_for(|v| *v).await;
    }));
    let start = Instant::now();
    loop {
        let now = e.svc.get(e.user, g.id).await.unwrap();
        // The job fails first, then its submission is closed: wait for both.
        let subs = e.svc.submissions(e.user, g.id).await.unwrap();
        if now.status == JobStatus::Failed
            && subs.iter().all(|s| s.status == SubmissionStatus::Failed)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the job is still {:?} after {:?}",
            now.status,
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_failed_and_released(&e, g.id, 1).await;
    // The worker lives on and runs the next job.
    let g2 = e.svc.create(e.user, t2v("buggy", "again")).await.unwrap();
    let start = Instant::now();
    while e.svc.get(e.user, g2.id).await.unwrap().status != JobStatus::Failed {
        assert!(start.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(true).unwrap();
    worker.await.unwrap();
}

/// One attempt run directly: a panic in submit ends it as a failure.
#[tokio::test]
async fn panic_in_submit_is_a_terminal_failure() {
    let (e, _) = setup(Stage::Submit).await;
    let g = e.svc.create(e.user, t2v("buggy", "boom")).await.unwrap();
    let out = e.svc.worker().try_execute_once().await.unwrap();
    assert_eq!(
        out,
        Executed::Ran {
            job_id: g.id,
            outcome: Outcome::Failed {
                code: "internal_panic".into()
            }
        }
    );
    // The submission row written before the call is closed too.
    assert_failed_and_released(&e, g.id, 1).await;
}
