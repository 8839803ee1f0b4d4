//! One attempt's life: its lease and heartbeat, a cancel, the job timeout, a panic,
//! and how it ends (fail, requeue with backoff).

use std::time::Duration;

use store::generation::accounts;
use store::generation::jobs::{self, Finish, JobRow};
use store::generation::submissions::{self, Ending};

use super::{ClaimedJob, Outcome, Worker, jitter};
use crate::model::{JobStatus, SubmissionStatus};
use crate::provider::Credentials;

/// A panic's message, for the log.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

impl Worker {
    /// Runs one claimed attempt to its end (while heartbeating its lease). A cancel of
    /// the job stops it at once (see [`crate::GenerationService::cancel`]). Every line
    /// of the attempt carries `job_id`, `attempt` and `provider` (and `account_id` once
    /// an account is reserved) from its span, so the admin log finds a job's whole life
    /// by `job_id`.
    pub async fn execute(&self, job: ClaimedJob) -> Outcome {
        let span = tracing::info_span!(
            "job",
            job_id = %job.row.id,
            attempt = job.row.attempt,
            provider = %job.row.provider,
            account_id = tracing::field::Empty,
        );
        tracing::Instrument::instrument(self.execute_in_span(job), span).await
    }

    pub(super) async fn execute_in_span(&self, job: ClaimedJob) -> Outcome {
        let row = job.row;
        tracing::info!(worker = %self.id, "attempt started");
        let key = (row.id, row.attempt);
        if let Ok(mut s) = self.in_flight.lock() {
            s.insert(key);
        }
        let stop = self.shared.register_running(row.id, row.attempt);
        self.emit_job(row.clone(), false);
        let timeout = self.shared.cfg.job_timeout;
        // A panic in the attempt (a bug) fails the job at once, instead of leaving it
        // leased until its lease expires.
        let attempt =
            futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(self.process(&row)));
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, attempt) => match r {
                Ok(Ok(Ok(o))) => o,
                Ok(Err(panic)) => self.panicked(&row, &panic_text(&*panic)).await,
                Ok(Ok(Err(e))) => {
                    tracing::warn!(job_id = %row.id, "attempt failed internally: {e}");
                    self.requeue(&row, true, "internal", &e.to_string(), None).await
                }
                Err(_) => {
                    self.requeue(&row, true, "timeout", "the attempt exceeded the job timeout", None)
                        .await
                }
            },
            _ = self.heartbeat_until_lost(row.id, row.attempt) => {
                // Cancelled elsewhere without a signal reaching this process?
                match jobs::get(&self.shared.pool, row.id).await {
                    Ok(now) if now.status == JobStatus::Cancelled && now.attempt == row.attempt => {
                        self.stop_remote(&row).await;
                        Outcome::Cancelled
                    }
                    _ => Outcome::LeaseLost,
                }
            }
            _ = stop.notified() => {
                self.stop_remote(&row).await;
                Outcome::Cancelled
            }
        };
        self.shared.unregister_running(row.id, &stop);
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(&key);
        }
        tracing::info!(?outcome, "attempt ended");
        outcome
    }

    /// After a panic in an attempt: fails the job for good (which releases its account
    /// slot) and closes its open submission. The panic's text goes to the log only.
    pub(super) async fn panicked(&self, row: &JobRow, what: &str) -> Outcome {
        tracing::error!(job_id = %row.id, attempt = row.attempt, "the attempt panicked: {what}");
        let msg = "the attempt stopped on an internal error";
        let outcome = self.fail(row, "internal_panic", msg).await;
        if matches!(outcome, Outcome::Failed { .. }) {
            let pool = &self.shared.pool;
            let closed = match submissions::open_for_attempt(pool, row.id, row.attempt).await {
                Ok(Some(sub)) => submissions::finish(
                    pool,
                    sub.id,
                    Ending {
                        status: SubmissionStatus::Failed,
                        error_class: Some("internal"),
                        error_code: Some("internal_panic"),
                        error_message: Some(msg),
                        refund: false,
                    },
                )
                .await
                .map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = closed {
                tracing::warn!(job_id = %row.id, "cannot close the panicked submission: {e}");
            }
        }
        outcome
    }

    /// After a cancel: asks the provider to stop the attempt's submission (where its
    /// contract has a call for it) and closes the submission as cancelled. The job row
    /// and the account slot were settled by the cancel itself.
    pub(super) async fn stop_remote(&self, row: &JobRow) {
        let pool = &self.shared.pool;
        let sub = match submissions::open_for_attempt(pool, row.id, row.attempt).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(job_id = %row.id, "cannot look up the cancelled submission: {e}");
                return;
            }
        };
        let mut note = "cancelled before the provider accepted it".to_owned();
        if let (Some(provider), Some(remote_id)) = (
            self.shared.providers.get(&row.provider),
            sub.remote_id.as_deref(),
        ) {
            let account = match sub.account_id {
                Some(a) => accounts::get(pool, a).await.ok(),
                None => None,
            };
            let creds = account
                .as_ref()
                .and_then(|a| Credentials::open(a, &self.shared.cfg.secret_key).ok());
            note = match provider.cancel(creds.as_ref(), remote_id).await {
                Ok(true) => "cancelled; the provider was asked to stop".into(),
                Ok(false) => "cancelled; the provider has no call to stop it".into(),
                Err(e) => {
                    tracing::warn!(job_id = %row.id, remote_id, "provider cancel failed: {e}");
                    format!(
                        "cancelled; the provider's cancel failed: {}",
                        e.public_message()
                    )
                }
            };
        }
        if let Err(e) = submissions::finish(
            pool,
            sub.id,
            Ending::plain(SubmissionStatus::Cancelled, Some("cancelled"), Some(&note)),
        )
        .await
        {
            tracing::warn!(job_id = %row.id, "cannot close the cancelled submission: {e}");
        }
    }

    pub(super) async fn end(&self, row: &JobRow, how: Finish) -> Outcome {
        match jobs::finish(&self.shared.pool, row.id, row.attempt, &self.id, &how).await {
            Ok(Some(r)) => {
                let failed = r.status == JobStatus::Failed;
                let code = r.error_code.clone().unwrap_or_default();
                self.emit_job(r, failed);
                if failed {
                    Outcome::Failed { code }
                } else {
                    Outcome::Requeued { code }
                }
            }
            Ok(None) => Outcome::LeaseLost,
            Err(e) => {
                // The lease will expire and the job be reclaimed.
                tracing::warn!(job_id = %row.id, "could not finish the attempt: {e}");
                Outcome::LeaseLost
            }
        }
    }

    pub(super) async fn fail(&self, row: &JobRow, code: &str, message: &str) -> Outcome {
        self.end(
            row,
            Finish::Fail {
                code: code.into(),
                message: message.into(),
            },
        )
        .await
    }

    pub(super) async fn requeue(
        &self,
        row: &JobRow,
        count_retry: bool,
        code: &str,
        message: &str,
        delay: Option<Duration>,
    ) -> Outcome {
        let cfg = &self.shared.cfg;
        let delay = delay.unwrap_or_else(|| {
            let exp = cfg
                .backoff_base
                .saturating_mul(1u32 << row.retry_count.clamp(0, 16));
            jitter(exp.min(cfg.backoff_max))
        });
        self.end(
            row,
            Finish::Requeue {
                delay,
                count_retry,
                code: code.into(),
                message: message.into(),
            },
        )
        .await
    }
}
