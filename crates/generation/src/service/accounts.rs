//! Provider accounts: create, list, get, update, delete, balance refresh, sealing of
//! stored keys.

use store::generation::accounts::{self, AccountPatch, NewAccount};
use uuid::Uuid;

use super::GenerationService;
use crate::error::GenerationError;
use crate::model::{
    AccountStatus, Actor, NewProviderAccount, ProviderAccount, ProviderAccountPatch,
};
use crate::params::Issues;
use crate::provider::{Credentials, ProviderError};
use crate::secrets;

/// The rules of an account's fields, for those given (create gives them all).
fn account_rules(
    issues: &mut Issues,
    label: Option<&str>,
    api_key: Option<&str>,
    max_concurrent_jobs: Option<i32>,
    daily_limit: Option<i32>,
) {
    if label.is_some_and(|l| l.trim().is_empty()) {
        issues.push("label", "required", "a label is required");
    }
    if api_key.is_some_and(|k| k.trim().is_empty()) {
        issues.push("api_key", "required", "an API key is required");
    }
    if max_concurrent_jobs.is_some_and(|m| !(0..=1000).contains(&m)) {
        issues.push("max_concurrent_jobs", "out_of_range", "0 to 1000");
    }
    if daily_limit.is_some_and(|m| m < 0) {
        issues.push("daily_limit", "out_of_range", "at least 0");
    }
}

impl GenerationService {
    /// Creates an account. Users own theirs; admins may create shared ones.
    pub async fn create_account(
        &self,
        actor: Actor,
        new: NewProviderAccount,
    ) -> Result<ProviderAccount, GenerationError> {
        if new.shared && !actor.is_admin {
            return Err(GenerationError::Forbidden(
                "only admins create shared accounts",
            ));
        }
        let mut issues = Issues::default();
        if self.shared.providers.get(&new.provider).is_none() {
            issues.push("provider", "unknown_provider", "unknown provider");
        }
        account_rules(
            &mut issues,
            Some(&new.label),
            Some(&new.api_key),
            new.max_concurrent_jobs,
            new.daily_limit,
        );
        if !issues.is_empty() {
            return Err(GenerationError::InvalidParameters(issues.0));
        }
        let id = Uuid::now_v7();
        let row = accounts::create(
            &self.shared.pool,
            &NewAccount {
                id,
                api_key_hint: secrets::hint(&new.api_key),
                api_key: self.shared.cfg.secret_key.seal(id, &new.api_key),
                provider: new.provider,
                label: new.label,
                owner_id: if new.shared {
                    None
                } else {
                    Some(actor.user_id.0)
                },
                status: AccountStatus::Active,
                priority: new.priority,
                credits: new.credits,
                max_concurrent_jobs: new.max_concurrent_jobs.unwrap_or(2),
                daily_limit: new.daily_limit,
            },
        )
        .await?;
        Ok(row.into())
    }

    /// Accounts the actor can see (own and shared; all for admins).
    pub async fn list_accounts(
        &self,
        actor: Actor,
        provider: Option<&str>,
    ) -> Result<Vec<ProviderAccount>, GenerationError> {
        let visible = if actor.is_admin {
            None
        } else {
            Some(actor.user_id.0)
        };
        Ok(accounts::list(&self.shared.pool, provider, visible)
            .await?
            .into_iter()
            .map(ProviderAccount::from)
            .collect())
    }

    pub async fn get_account(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<ProviderAccount, GenerationError> {
        let row = accounts::get(&self.shared.pool, id).await?;
        if !(actor.is_admin || row.owner_id.is_none() || row.owner_id == Some(actor.user_id.0)) {
            return Err(GenerationError::NotFound("provider account"));
        }
        Ok(row.into())
    }

    async fn editable_account(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<store::generation::accounts::AccountRow, GenerationError> {
        let row = accounts::get(&self.shared.pool, id).await?;
        match row.owner_id {
            _ if actor.is_admin => Ok(row),
            Some(o) if o == actor.user_id.0 => Ok(row),
            None => Err(GenerationError::Forbidden(
                "only admins change shared accounts",
            )),
            Some(_) => Err(GenerationError::NotFound("provider account")),
        }
    }

    pub async fn update_account(
        &self,
        actor: Actor,
        id: Uuid,
        patch: ProviderAccountPatch,
    ) -> Result<ProviderAccount, GenerationError> {
        self.editable_account(actor, id).await?;
        // The rules create applies, to the fields given.
        let mut issues = Issues::default();
        account_rules(
            &mut issues,
            patch.label.as_deref(),
            patch.api_key.as_deref(),
            patch.max_concurrent_jobs,
            patch.daily_limit,
        );
        if !issues.is_empty() {
            return Err(GenerationError::InvalidParameters(issues.0));
        }
        let row = accounts::update(
            &self.shared.pool,
            id,
            &AccountPatch {
                label: patch.label,
                api_key: patch
                    .api_key
                    .map(|k| (self.shared.cfg.secret_key.seal(id, &k), secrets::hint(&k))),
                status: patch.status,
                priority: patch.priority,
                credits: patch.credits.map(Some),
                max_concurrent_jobs: patch.max_concurrent_jobs,
                daily_limit: patch.daily_limit.map(Some),
                cooldown_until: if patch.clear_cooldown {
                    Some(None)
                } else {
                    None
                },
            },
        )
        .await?;
        // A refilled or re-enabled account may unblock waiting jobs.
        self.shared.signal_work();
        Ok(row.into())
    }

    pub async fn delete_account(&self, actor: Actor, id: Uuid) -> Result<(), GenerationError> {
        self.editable_account(actor, id).await?;
        accounts::delete(&self.shared.pool, id).await?;
        Ok(())
    }

    /// Reads the account's balance from its provider's documented balance endpoint
    /// (Pixverse: monthly plus package credits) and records it in `credits`: at zero
    /// the account becomes `exhausted`, and an exhausted account with credits again
    /// `active`. Same permissions as changing the account.
    ///
    /// Errors: `unsupported` (the provider has no balance endpoint),
    /// `provider_refused` (the key was refused: the account is marked `error`),
    /// `provider_unavailable` (any other failure).
    pub async fn refresh_account(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<ProviderAccount, GenerationError> {
        let row = self.editable_account(actor, id).await?;
        let provider = self
            .shared
            .providers
            .get(&row.provider)
            .ok_or_else(|| GenerationError::UnknownProvider(row.provider.clone()))?;
        let creds = Credentials::open(&row, &self.shared.cfg.secret_key)
            .map_err(|e| GenerationError::ProviderRefused(e.public_message()))?;
        match provider.balance(&creds).await {
            Ok(Some(balance)) => {
                let row = accounts::set_balance(&self.shared.pool, id, balance).await?;
                // Credits may let waiting jobs run.
                self.shared.signal_work();
                Ok(row.into())
            }
            Ok(None) => Err(GenerationError::Unsupported(format!(
                "{} has no balance endpoint",
                row.provider
            ))),
            Err(e @ ProviderError::Auth { .. }) => {
                tracing::warn!(account_id = %id, "balance refresh refused: {e}");
                let msg = e.public_message();
                accounts::set_status(
                    &self.shared.pool,
                    id,
                    AccountStatus::Error,
                    Some(&msg),
                    None,
                )
                .await?;
                Err(GenerationError::ProviderRefused(msg))
            }
            Err(e) => {
                tracing::warn!(account_id = %id, "balance refresh failed: {e}");
                Err(GenerationError::ProviderUnavailable(e.public_message()))
            }
        }
    }

    /// Seals the provider API keys still stored in plaintext (rows written before keys
    /// were sealed). Run at startup; returns how many it sealed.
    pub async fn seal_stored_keys(&self) -> Result<usize, GenerationError> {
        let key = &self.shared.cfg.secret_key;
        let mut sealed = 0;
        for (id, plain) in accounts::unsealed_keys(&self.shared.pool).await? {
            if accounts::seal_key(&self.shared.pool, id, &plain, &key.seal(id, &plain)).await? {
                sealed += 1;
            }
        }
        Ok(sealed)
    }
}
