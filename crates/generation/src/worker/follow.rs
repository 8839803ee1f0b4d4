//! Following a submission: polling to a terminal status, reporting progress,
//! downloading the result, and ending the attempt on a remote failure.

use std::time::Duration;

use store::generation::jobs;
use store::generation::kinds::SyncStatus;
use store::generation::library;
use store::generation::submissions::{self, Ending};
use uuid::Uuid;

use super::process::{Attempt, Followed};
use super::{Outcome, Worker, jitter};
use crate::error::GenerationError;
use crate::model::SubmissionStatus;
use crate::provider::{MediaResult, PollResult, RemoteStatus, public_code};

/// A poll loop's registration for webhooks ([`crate::shared::Shared::poke`]), removed
/// when the loop ends.
struct Polling<'a> {
    shared: &'a crate::shared::Shared,
    remote_id: &'a str,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

impl<'a> Polling<'a> {
    fn new(shared: &'a crate::shared::Shared, remote_id: &'a str) -> Self {
        let notify = shared.register_polling(remote_id);
        Polling {
            shared,
            remote_id,
            notify,
        }
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.shared.unregister_polling(self.remote_id, &self.notify);
    }
}

/// What one poll led to.
enum Polled {
    /// Poll again after this long.
    Again(Duration),
    Result(PollResult),
    Ended(Followed),
}

impl Worker {
    /// Polls a submission to a terminal status and completes the job.
    pub(super) async fn follow(
        &self,
        at: &Attempt<'_>,
        remote_id: &str,
        sub_id: Uuid,
        wait_first: bool,
    ) -> Result<Followed, GenerationError> {
        let mut errors = 0u32;
        let mut last_progress: Option<f32> = None;
        let mut wait = wait_first.then(|| at.provider.poll_interval());
        // A webhook about this submission cuts the wait short.
        let poked = Polling::new(&self.shared, remote_id);
        loop {
            if let Some(w) = wait.take() {
                tokio::select! {
                    () = tokio::time::sleep(w) => {}
                    () = poked.notify.notified() => {}
                }
            }
            let poll = match self.poll_once(at, remote_id, sub_id, &mut errors).await? {
                Polled::Again(w) => {
                    wait = Some(w);
                    continue;
                }
                Polled::Ended(f) => return Ok(f),
                Polled::Result(p) => p,
            };
            match poll.status {
                RemoteStatus::Queued | RemoteStatus::Processing => {
                    self.report_progress(at, &poll, &mut last_progress).await?;
                    wait = Some(
                        poll.next_poll
                            .unwrap_or_else(|| at.provider.poll_interval()),
                    );
                }
                RemoteStatus::Succeeded => {
                    let pool = &self.shared.pool;
                    library::set_job_sync(pool, at.row.id, SyncStatus::Downloading).await?;
                    let media = match self.download(at, remote_id, sub_id, &poll).await? {
                        Ok(m) => m,
                        Err(o) => {
                            // A new attempt's submission takes the row over again.
                            library::set_job_sync(pool, at.row.id, SyncStatus::Error).await?;
                            return Ok(Followed::Done(o));
                        }
                    };
                    let done = self.complete(at, Some(sub_id), remote_id, media).await?;
                    return Ok(Followed::Done(done));
                }
                status @ (RemoteStatus::Filtered | RemoteStatus::Failed) => {
                    let o = self.remote_failed(at, sub_id, status, &poll).await?;
                    return Ok(Followed::Done(o));
                }
                RemoteStatus::Cancelled | RemoteStatus::Deleted => return Ok(Followed::Gone),
            }
        }
    }

    /// One poll. Retryable errors are retried with backoff (at most `max_poll_errors`
    /// in a row); then, or on another error, the error's class ends the attempt.
    async fn poll_once(
        &self,
        at: &Attempt<'_>,
        remote_id: &str,
        sub_id: Uuid,
        errors: &mut u32,
    ) -> Result<Polled, GenerationError> {
        let e = match at.provider.poll(at.creds, remote_id).await {
            Ok(p) => {
                *errors = 0;
                return Ok(Polled::Result(p));
            }
            Err(e) => e,
        };
        if e.is_retryable() && *errors < self.shared.cfg.max_poll_errors {
            *errors += 1;
            let backoff = jitter(Duration::from_millis(250).saturating_mul(1 << (*errors).min(8)));
            let wait = e
                .retry_after()
                .unwrap_or(backoff)
                .max(at.provider.poll_interval());
            return Ok(Polled::Again(wait));
        }
        // A retryable error leaves the submission `submitted`: the next attempt adopts
        // it.
        if !e.is_retryable() {
            self.close_submission(sub_id, &e).await?;
        }
        let o = self.on_provider_error(at.row, at.account, e).await;
        Ok(Polled::Ended(Followed::Done(o)))
    }

    /// Records and announces progress when it moved by 5 points or more.
    async fn report_progress(
        &self,
        at: &Attempt<'_>,
        poll: &PollResult,
        last: &mut Option<f32>,
    ) -> Result<(), GenerationError> {
        if let Some(p) = poll.progress
            && last.is_none_or(|l| (p - l).abs() >= 0.05)
        {
            *last = Some(p);
            self.record_progress(at, p).await?;
        }
        Ok(())
    }

    /// Records the attempt's progress (0..=1, fenced by its lease) and announces it in
    /// a `job:updated` event.
    pub(super) async fn record_progress(
        &self,
        at: &Attempt<'_>,
        p: f32,
    ) -> Result<(), GenerationError> {
        let row = at.row;
        if jobs::set_progress(&self.shared.pool, row.id, row.attempt, &self.id, p).await? {
            let mut r = row.clone();
            r.progress = Some(p);
            self.emit_job(r, false);
        }
        Ok(())
    }

    /// Fetches the result of a succeeded submission (retrying transient failures a
    /// few times); `Err`: how the attempt ended instead.
    async fn download(
        &self,
        at: &Attempt<'_>,
        remote_id: &str,
        sub_id: Uuid,
        poll: &PollResult,
    ) -> Result<Result<MediaResult, Outcome>, GenerationError> {
        let mut tries = 0;
        let mut media = loop {
            match at
                .provider
                .download(at.creds, remote_id, poll, &self.shared.downloader)
                .await
            {
                Ok(m) => break m,
                Err(e) if e.is_retryable() && tries < 3 => {
                    tries += 1;
                    tokio::time::sleep(jitter(Duration::from_millis(500) * tries)).await;
                }
                Err(e) => {
                    if !e.is_retryable() {
                        self.close_submission(sub_id, &e).await?;
                    }
                    return Ok(Err(self.on_provider_error(at.row, at.account, e).await));
                }
            }
        };
        if media.remote_url.is_none() {
            media.remote_url = poll.result_url.clone();
        }
        Ok(Ok(media))
    }

    /// The provider reported a failure or a moderation refusal: the submission is
    /// closed (refunded where the provider refunds), a refusal gets a new attempt while
    /// `content_filtered_retries` allow (then fails the job) and a failure is retried.
    async fn remote_failed(
        &self,
        at: &Attempt<'_>,
        sub_id: Uuid,
        status: RemoteStatus,
        poll: &PollResult,
    ) -> Result<Outcome, GenerationError> {
        let row = at.row;
        let filtered = status == RemoteStatus::Filtered;
        let (sub_status, class, default_msg) = if filtered {
            (
                SubmissionStatus::Filtered,
                "moderation",
                "the provider's moderation refused the content",
            )
        } else {
            (
                SubmissionStatus::Failed,
                "provider_failed",
                "the provider reported a failure",
            )
        };
        // The provider's own text goes to the admin log only; users see a fixed
        // sentence and the provider's code when it is a short token.
        if let Some(detail) = &poll.error_message {
            tracing::warn!(job_id = %row.id, class, "provider reported: {detail}");
        }
        let msg = match poll.error_code.as_deref().and_then(public_code) {
            Some(c) => format!("{default_msg} (code {c})"),
            None => default_msg.to_owned(),
        };
        let refunded = submissions::finish(
            &self.shared.pool,
            sub_id,
            Ending {
                status: sub_status,
                error_class: Some(class),
                error_code: poll.error_code.as_deref(),
                error_message: Some(&msg),
                refund: at.provider.refunds(status),
            },
        )
        .await?;
        if refunded > 0 {
            tracing::info!(job_id = %row.id, refunded, "the provider refunded the submission");
        }
        Ok(if filtered {
            self.content_filtered(row, &msg).await
        } else {
            self.requeue(row, true, "provider_failed", &msg, None).await
        })
    }
}
