//! The steps of an attempt: read the job, load its inputs, reserve an account, adopt
//! an earlier submission, upload inputs, submit, then follow or complete.

use std::sync::Arc;

use store::generation::accounts::{self, AccountRow};
use store::generation::assets;
use store::generation::jobs::JobRow;
use store::generation::submissions::{self, Ending, SubmissionRow};
use uuid::Uuid;

use super::{Outcome, Worker, jitter};
use crate::error::GenerationError;
use crate::model::{GenerationParams, InputRef, Operation, SubmissionStatus};
use crate::params::default_role;
use crate::provider::{Credentials, InputMedia, Provider, ProviderError, RemoteInput};

/// What one attempt runs with, once its account is chosen and its inputs loaded.
#[derive(Clone, Copy)]
pub(super) struct Attempt<'a> {
    pub(super) provider: &'a dyn Provider,
    pub(super) creds: Option<&'a Credentials>,
    pub(super) account: Option<&'a AccountRow>,
    pub(super) row: &'a JobRow,
    pub(super) op: Operation,
    pub(super) params: &'a GenerationParams,
    pub(super) inputs: &'a [InputMedia],
}

/// A step of an attempt either lets it go on with a value or ends it.
pub(super) enum Step<T> {
    Next(T),
    End(Outcome),
}

pub(super) enum Followed {
    Done(Outcome),
    /// The remote job is gone (adoption impossible): submit anew.
    Gone,
}

impl Worker {
    pub(super) async fn load_inputs(
        &self,
        refs: &[InputRef],
        op: Operation,
    ) -> Result<Vec<InputMedia>, String> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = refs.iter().map(|r| r.asset_id).collect();
        let rows: Vec<_> = assets::get_many(&self.shared.pool, &ids)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| r.fields)
            .collect();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let a = rows
                .iter()
                .find(|a| a.id == r.asset_id)
                .ok_or_else(|| format!("input asset {} no longer exists", r.asset_id))?;
            let bytes = self
                .shared
                .media
                .read(&a.path)
                .await
                .map_err(|e| format!("input asset {} unreadable: {e}", a.id))?;
            let role = r
                .role
                .or(default_role(op))
                .ok_or_else(|| "an input without a role".to_string())?;
            out.push(InputMedia {
                asset_id: a.id,
                role,
                ref_name: r.ref_name.clone(),
                media_type: a.media_type,
                mime: a.mime.clone(),
                bytes: Arc::new(bytes),
                origin_provider: a.provider.clone(),
                origin_remote_id: a.remote_id.clone(),
                remote: None,
            });
        }
        Ok(out)
    }

    /// Runs one attempt of `row`: the job is read and its inputs loaded, an account
    /// reserved, an earlier attempt's submission adopted if it can be, inputs
    /// uploaded, and the job submitted, then followed to its end.
    pub(super) async fn process(&self, row: &JobRow) -> Result<Outcome, GenerationError> {
        let Some(provider) = self.shared.providers.get(&row.provider) else {
            let msg = format!("no provider {}", row.provider);
            return Ok(self.fail(row, "unknown_provider", &msg).await);
        };
        let (op, params, mut inputs) = match self.read_job(row).await {
            Step::Next(x) => x,
            Step::End(o) => return Ok(o),
        };
        let prior = if row.attempt > 1 {
            submissions::in_flight(&self.shared.pool, row.id, row.attempt)
                .await?
                .filter(|s| s.provider == row.provider)
        } else {
            None
        };
        let account = match self
            .reserve_account(row, &*provider, op, &params, prior.as_ref())
            .await?
        {
            Step::Next(a) => a,
            Step::End(o) => return Ok(o),
        };
        if let Some(a) = &account {
            tracing::Span::current().record("account_id", tracing::field::display(a.id));
        }
        let creds = match account
            .as_ref()
            .map(|a| Credentials::open(a, &self.shared.cfg.secret_key))
            .transpose()
        {
            Ok(c) => c,
            Err(e) => return Ok(self.on_provider_error(row, account.as_ref(), e).await),
        };
        if let Some(s) = prior {
            let at = Attempt {
                provider: &*provider,
                creds: creds.as_ref(),
                account: account.as_ref(),
                row,
                op,
                params: &params,
                inputs: &inputs,
            };
            if let Step::End(o) = self.adopt(&at, s).await? {
                return Ok(o);
            }
        }
        if let Err(e) = self
            .upload_inputs(&*provider, creds.as_ref(), &mut inputs)
            .await?
        {
            return Ok(self.on_provider_error(row, account.as_ref(), e).await);
        }
        let at = Attempt {
            provider: &*provider,
            creds: creds.as_ref(),
            account: account.as_ref(),
            row,
            op,
            params: &params,
            inputs: &inputs,
        };
        self.submit(&at).await
    }

    /// Parses the job row and loads its input assets; a job that cannot run fails.
    async fn read_job(&self, row: &JobRow) -> Step<(Operation, GenerationParams, Vec<InputMedia>)> {
        let parsed = (|| -> Result<(Operation, GenerationParams, Vec<InputRef>), String> {
            let op: Operation = row.operation;
            let params = serde_json::from_value(row.params.clone()).map_err(|e| e.to_string())?;
            let refs = serde_json::from_value(row.inputs.clone()).map_err(|e| e.to_string())?;
            Ok((op, params, refs))
        })();
        let (op, params, refs) = match parsed {
            Ok(x) => x,
            Err(e) => return Step::End(self.fail(row, "invalid_job", &e).await),
        };
        match self.load_inputs(&refs, op).await {
            Ok(inputs) => Step::Next((op, params, inputs)),
            Err(e) => Step::End(self.fail(row, "input_missing", &e).await),
        }
    }

    /// Reserves an account for a provider that needs one: the account of the earlier
    /// submission to adopt if it is free, else the best qualifying one. None free: the
    /// job waits (requeued); none could ever qualify: it fails.
    async fn reserve_account(
        &self,
        row: &JobRow,
        provider: &dyn Provider,
        op: Operation,
        params: &GenerationParams,
        prior: Option<&SubmissionRow>,
    ) -> Result<Step<Option<AccountRow>>, GenerationError> {
        if !provider.requires_account() {
            return Ok(Step::Next(None));
        }
        let pool = &self.shared.pool;
        if let Some(aid) = prior.and_then(|s| s.account_id)
            && let Some(a) = accounts::reserve_specific(pool, aid, row.id, row.attempt).await?
        {
            return Ok(Step::Next(Some(a)));
        }
        let est = provider.estimated_credits(op, params);
        if let Some(a) = accounts::reserve(
            pool,
            &row.provider,
            row.user_id,
            est,
            row.preferred_account_id,
            row.id,
            row.attempt,
        )
        .await?
        {
            return Ok(Step::Next(Some(a)));
        }
        if !accounts::any_could_qualify(pool, &row.provider, row.user_id).await? {
            let msg = format!("no {} account can run this job", row.provider);
            return Ok(Step::End(
                self.fail(row, "no_account_available", &msg).await,
            ));
        }
        let wait = jitter(self.shared.cfg.account_wait);
        let outcome = self
            .requeue(
                row,
                false,
                "waiting_for_account",
                "every account is busy",
                Some(wait),
            )
            .await;
        Ok(Step::End(outcome))
    }

    /// Follows an earlier attempt's accepted submission under the same account instead
    /// of paying again; one that cannot be adopted is closed as abandoned.
    async fn adopt(
        &self,
        at: &Attempt<'_>,
        prior: SubmissionRow,
    ) -> Result<Step<()>, GenerationError> {
        let row = at.row;
        let same_account = prior.account_id == at.account.map(|a| a.id);
        if let (true, Some(remote_id)) = (same_account, prior.remote_id.as_deref()) {
            tracing::info!(job_id = %row.id, attempt = row.attempt, remote_id, "adopting an earlier submission");
            match self.follow(at, remote_id, prior.id, false).await? {
                Followed::Done(o) => return Ok(Step::End(o)),
                Followed::Gone => {}
            }
        }
        submissions::finish(
            &self.shared.pool,
            prior.id,
            Ending::plain(SubmissionStatus::Abandoned, None, Some("not adoptable")),
        )
        .await?;
        Ok(Step::Next(()))
    }

    /// Uploads the inputs the provider needs uploaded, reusing cached uploads (per
    /// provider and account).
    async fn upload_inputs(
        &self,
        provider: &dyn Provider,
        creds: Option<&Credentials>,
        inputs: &mut [InputMedia],
    ) -> Result<Result<(), ProviderError>, GenerationError> {
        let pool = &self.shared.pool;
        let scope = creds
            .map(|c| c.account_id.to_string())
            .unwrap_or_else(|| "*".into());
        for input in inputs.iter_mut() {
            if !provider.needs_upload(input) {
                continue;
            }
            // A cached upload the provider may have dropped by now is made again.
            let fresh = |created: chrono::DateTime<chrono::Utc>| {
                provider.upload_lifetime().is_none_or(|ttl| {
                    chrono::Duration::from_std(ttl)
                        .is_ok_and(|ttl| created + ttl > chrono::Utc::now())
                })
            };
            if let Some(u) = assets::use_upload(pool, input.asset_id, provider.id(), &scope)
                .await?
                .filter(|u| fresh(u.created_at))
            {
                input.remote = Some(RemoteInput {
                    remote_id: u.remote_id,
                    url: u.remote_url,
                });
                continue;
            }
            let remote = match provider.upload_input(creds, input).await {
                Ok(remote) => remote,
                Err(e) => return Ok(Err(e)),
            };
            assets::put_upload(
                pool,
                input.asset_id,
                provider.id(),
                &scope,
                &remote.remote_id,
                remote.url.as_deref(),
            )
            .await?;
            input.remote = Some(remote);
        }
        Ok(Ok(()))
    }
}
