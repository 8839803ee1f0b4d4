//! Submitting an attempt: the submission row (the idempotency record, written before
//! the provider is called), the call, the charge when the provider accepts, then
//! completion at once (synchronous providers) or following the submission.

use std::time::Duration;

use store::generation::submissions::{self, Ending, SubmissionRow};
use uuid::Uuid;

use super::process::{Attempt, Followed, Step};
use super::{Outcome, Worker};
use crate::error::GenerationError;
use crate::model::SubmissionStatus;
use crate::provider::{MediaResult, ProgressSink, ProviderError, SubmitRequest, Submitted};

/// How often the progress a provider reports during submit is read (and at most
/// recorded).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl Worker {
    /// Submits the attempt (at most once) and follows it to the end.
    pub(super) async fn submit(&self, at: &Attempt<'_>) -> Result<Outcome, GenerationError> {
        // The submission row is the idempotency record, written before the call; a
        // synchronous provider (free, answering at once) gets it with the completion.
        let early = if at.provider.is_synchronous() {
            None
        } else {
            match self.begin_submission(at).await? {
                Some(sub) => Some(sub),
                None => return Ok(Outcome::LeaseLost),
            }
        };
        let (submitted, sub_id) = match self.call_submit(at, early).await? {
            Step::Next(x) => x,
            Step::End(o) => return Ok(o),
        };
        let Submitted {
            remote_id,
            immediate,
        } = submitted;
        self.finish_submitted(at, sub_id, &remote_id, immediate)
            .await
    }

    /// Writes the attempt's submission row (`None`: the lease is lost).
    async fn begin_submission(
        &self,
        at: &Attempt<'_>,
    ) -> Result<Option<SubmissionRow>, GenerationError> {
        let row = at.row;
        Ok(submissions::begin(
            &self.shared.pool,
            row.id,
            row.attempt,
            &self.id,
            at.provider.id(),
            at.account.map(|a| a.id),
        )
        .await?)
    }

    /// Calls the provider's submit. Refused: the submission is closed and the error's
    /// class decides. Accepted: the submission records the remote id and charges the
    /// provider's price (nothing for a synchronous provider).
    async fn call_submit(
        &self,
        at: &Attempt<'_>,
        early: Option<SubmissionRow>,
    ) -> Result<Step<(Submitted, Option<Uuid>)>, GenerationError> {
        let row = at.row;
        let req = SubmitRequest {
            job_id: row.id,
            attempt: row.attempt,
            operation: at.op,
            params: at.params.clone(),
            inputs: at.inputs.to_vec(),
            progress: ProgressSink::default(),
        };
        let submitted = match self.submit_reporting(at, &req).await? {
            Ok(s) => s,
            Err(e) => {
                let sub = match early {
                    Some(sub) => Some(sub),
                    None => self.begin_submission(at).await?,
                };
                if let Some(sub) = sub {
                    self.close_submission(sub.id, &e).await?;
                }
                return Ok(Step::End(self.on_provider_error(row, at.account, e).await));
            }
        };
        let sub_id = match early {
            None if submitted.immediate.is_some() => None,
            Some(sub) => Some(sub.id),
            None => match self.begin_submission(at).await? {
                Some(sub) => Some(sub.id),
                None => return Ok(Step::End(Outcome::LeaseLost)),
            },
        };
        if let Some(sub_id) = sub_id {
            // Accepted: the account pays the provider's price (once per submission).
            let cost = if at.provider.is_synchronous() {
                0
            } else {
                at.provider.estimated_credits(at.op, at.params)
            };
            submissions::accepted(&self.shared.pool, sub_id, &submitted.remote_id, cost).await?;
            tracing::info!(remote_id = %submitted.remote_id, credits = cost, "the provider accepted the job");
            if submitted.immediate.is_none() {
                // The result will be hosted by the provider until it is fetched: its
                // asset row exists from now on (sync status `remote`).
                store::generation::library::remote_asset(
                    &self.shared.pool,
                    &store::generation::library::RemoteAsset {
                        owner_id: row.user_id,
                        media_type: crate::model::MediaType::Video,
                        mime: "video/mp4",
                        provider: at.provider.id(),
                        remote_id: &submitted.remote_id,
                        job_id: row.id,
                        operation: at.op,
                        prompt: at.params.prompt.as_deref(),
                    },
                )
                .await?;
            }
        }
        Ok(Step::Next((submitted, sub_id)))
    }

    /// Calls the provider's submit; meanwhile, every [`PROGRESS_EVERY`], records the
    /// progress it reports (the local renderer's frames) when it rose by a point or
    /// more.
    async fn submit_reporting(
        &self,
        at: &Attempt<'_>,
        req: &SubmitRequest,
    ) -> Result<Result<Submitted, ProviderError>, GenerationError> {
        let submit = at.provider.submit(at.creds, req);
        let mut submit = std::pin::pin!(submit);
        let mut every = tokio::time::interval(PROGRESS_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = None;
        loop {
            tokio::select! {
                biased;
                r = &mut submit => return Ok(r),
                _ = every.tick() => {
                    let p = req.progress.get();
                    if p > 0.0 && last.is_none_or(|l| p - l >= 0.01) {
                        last = Some(p);
                        self.record_progress(at, p).await?;
                    }
                }
            }
        }
    }

    /// Completes at once with an immediate result, else follows the submission; a
    /// remote job that vanished is requeued.
    async fn finish_submitted(
        &self,
        at: &Attempt<'_>,
        sub_id: Option<Uuid>,
        remote_id: &str,
        immediate: Option<MediaResult>,
    ) -> Result<Outcome, GenerationError> {
        if let Some(media) = immediate {
            return self.complete(at, sub_id, remote_id, media).await;
        }
        let Some(sub_id) = sub_id else {
            return Ok(Outcome::LeaseLost);
        };
        match self.follow(at, remote_id, sub_id, true).await? {
            Followed::Done(o) => Ok(o),
            Followed::Gone => {
                submissions::finish(
                    &self.shared.pool,
                    sub_id,
                    Ending::plain(SubmissionStatus::Cancelled, Some("gone"), None),
                )
                .await?;
                Ok(self
                    .requeue(
                        at.row,
                        true,
                        "remote_gone",
                        "the provider lost the job",
                        None,
                    )
                    .await)
            }
        }
    }
}
