//! The retry policy of provider errors: requeue with backoff, cool down or retire the
//! account, or fail for good; closing the submission a provider refused.

use std::time::Duration;

use store::generation::accounts::{self, AccountRow};
use store::generation::jobs::JobRow;
use store::generation::submissions::{self, Ending};
use uuid::Uuid;

use super::{Outcome, Worker, jitter};
use crate::error::GenerationError;
use crate::model::{AccountStatus, SubmissionStatus};
use crate::provider::{Credentials, ProviderError};

impl Worker {
    /// The account's balance according to its provider (`None`: no balance endpoint,
    /// or it failed).
    pub(super) async fn provider_balance(&self, row: &JobRow, account: &AccountRow) -> Option<i64> {
        let provider = self.shared.providers.get(&row.provider)?;
        let creds = Credentials::open(account, &self.shared.cfg.secret_key).ok()?;
        match provider.balance(&creds).await {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(account_id = %account.id, "balance refresh failed: {e}");
                None
            }
        }
    }

    /// Ends a submission the provider refused or that failed with `e`.
    pub(super) async fn close_submission(
        &self,
        sub_id: Uuid,
        e: &ProviderError,
    ) -> Result<(), GenerationError> {
        let msg = e.public_message();
        let status = if matches!(e, ProviderError::Moderation { .. }) {
            SubmissionStatus::Filtered
        } else {
            SubmissionStatus::Failed
        };
        submissions::finish(
            &self.shared.pool,
            sub_id,
            Ending {
                status,
                error_class: Some(e.class()),
                error_code: e.code(),
                error_message: Some(&msg),
                refund: false,
            },
        )
        .await?;
        Ok(())
    }

    /// Applies a provider failure class: requeue with backoff, cool down or retire the
    /// account, or fail for good.
    pub(super) async fn on_provider_error(
        &self,
        row: &JobRow,
        account: Option<&AccountRow>,
        e: ProviderError,
    ) -> Outcome {
        let cfg = &self.shared.cfg;
        // The whole error (the provider's text included) goes to the admin log; the
        // job, its submission and the account keep only the public message.
        let msg = e.public_message();
        tracing::warn!(
            job_id = %row.id,
            account_id = account.map(|a| tracing::field::display(a.id)),
            attempt = row.attempt,
            class = e.class(),
            "provider error: {e}"
        );
        match &e {
            ProviderError::Transient { retry_after, .. } => {
                let d = retry_after.map(|r| r.max(jitter(cfg.backoff_base)));
                self.requeue(row, true, "provider_unavailable", &msg, d)
                    .await
            }
            ProviderError::Timeout(_) => self.requeue(row, true, "timeout", &msg, None).await,
            ProviderError::ConcurrencyLimit { retry_after, .. } => {
                let d = retry_after.unwrap_or_else(|| jitter(cfg.account_wait));
                self.requeue(row, false, "concurrency_limit", &msg, Some(d))
                    .await
            }
            ProviderError::RateLimited { retry_after, .. } => {
                let cool = retry_after.unwrap_or(cfg.rate_limit_cooldown);
                self.rate_limited(row, account, cool, &msg).await
            }
            ProviderError::OutOfCredits { .. } => {
                self.retire_account(row, account, AccountStatus::Exhausted, &msg)
                    .await
            }
            ProviderError::Auth { .. } => {
                self.retire_account(row, account, AccountStatus::Error, &msg)
                    .await
            }
            ProviderError::Moderation { .. } => self.content_filtered(row, &msg).await,
            ProviderError::InvalidRequest { .. } | ProviderError::Unsupported(_) => {
                self.fail(row, "provider_rejected", &msg).await
            }
            ProviderError::Download(d) if d.is_transient() => {
                self.requeue(row, true, "download_failed", &msg, None).await
            }
            ProviderError::Download(_) => self.fail(row, "download_rejected", &msg).await,
            ProviderError::Blocked(_) => self.fail(row, "destination_blocked", &msg).await,
        }
    }

    /// A moderation refusal (its submission already closed as `filtered`): a new
    /// attempt while the job's filtered submissions are at most
    /// `content_filtered_retries`, else the job fails with `content_filtered`.
    pub(super) async fn content_filtered(&self, row: &JobRow, msg: &str) -> Outcome {
        let allowed = self.shared.cfg.content_filtered_retries as usize;
        let filtered = if allowed == 0 {
            usize::MAX
        } else {
            match submissions::list_for_job(&self.shared.pool, row.id).await {
                Ok(subs) => subs
                    .iter()
                    .filter(|s| s.status == SubmissionStatus::Filtered)
                    .count(),
                Err(e) => {
                    tracing::warn!(job_id = %row.id, "cannot count filtered submissions: {e}");
                    usize::MAX
                }
            }
        };
        if filtered <= allowed {
            tracing::info!(
                job_id = %row.id,
                filtered,
                allowed,
                "moderation refused the attempt; trying a new one"
            );
            self.requeue(row, false, "content_filtered", msg, None)
                .await
        } else {
            self.fail(row, "content_filtered", msg).await
        }
    }

    /// A rate limit: the account cools down and another may take the job at once;
    /// without an account the job waits out the cooldown.
    async fn rate_limited(
        &self,
        row: &JobRow,
        account: Option<&AccountRow>,
        cool: Duration,
        msg: &str,
    ) -> Outcome {
        let Some(a) = account else {
            return self
                .requeue(row, false, "rate_limited", msg, Some(cool))
                .await;
        };
        let until = chrono::Utc::now()
            + chrono::Duration::from_std(cool).unwrap_or(chrono::Duration::seconds(60));
        if let Err(err) = accounts::set_status(
            &self.shared.pool,
            a.id,
            AccountStatus::RateLimited,
            Some(msg),
            Some(until),
        )
        .await
        {
            tracing::warn!("could not cool the account down: {err}");
        }
        // Another account may take it at once.
        self.requeue(
            row,
            false,
            "rate_limited",
            msg,
            Some(Duration::from_millis(50)),
        )
        .await
    }

    /// Out of credits (`Exhausted`) or a refused key (`Error`): the account is retired
    /// and another may take the job at once; without an account the job fails.
    async fn retire_account(
        &self,
        row: &JobRow,
        account: Option<&AccountRow>,
        status: AccountStatus,
        msg: &str,
    ) -> Outcome {
        let code = if status == AccountStatus::Exhausted {
            "out_of_credits"
        } else {
            "account_error"
        };
        let Some(a) = account else {
            return self.fail(row, code, msg).await;
        };
        let pool = &self.shared.pool;
        let retired = if status == AccountStatus::Exhausted {
            // Record what the provider says is left (its balance endpoint, where it has
            // one).
            let balance = self.provider_balance(row, a).await;
            accounts::exhaust(pool, a.id, balance, msg).await
        } else {
            accounts::set_status(pool, a.id, status, Some(msg), None).await
        };
        if let Err(err) = retired {
            tracing::warn!("could not retire the account: {err}");
        }
        self.requeue(row, false, code, msg, Some(Duration::ZERO))
            .await
    }
}
