//! Credit budgets: admins set limits per user and per world; every create that costs
//! credits is checked against the budgets of its user and its world, atomically with
//! its insert ([`store::generation::jobs::insert_within`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::generation::budgets::{self, BudgetLimits, BudgetRow};
use store::generation::jobs::{BudgetCheck, NewJob};

use super::GenerationService;
use crate::error::GenerationError;
use crate::model::{Actor, BudgetScope, CreditBudget, SetBudget};
use crate::params::Issues;

/// How long the budgets read for creates are reused: a budget set on another node is
/// enforced here after at most this long (at once on the node that set it).
const CACHE_FOR: Duration = Duration::from_secs(2);

/// The budgets, as creates read them.
#[derive(Debug, Default)]
pub(crate) struct BudgetCache {
    loaded: tokio::sync::Mutex<Option<(Instant, Arc<Vec<BudgetLimits>>)>>,
}

impl BudgetCache {
    async fn get(&self, pool: &store::PgPool) -> Result<Arc<Vec<BudgetLimits>>, GenerationError> {
        let mut l = self.loaded.lock().await;
        if let Some((at, b)) = &*l
            && at.elapsed() < CACHE_FOR
        {
            return Ok(b.clone());
        }
        let b = Arc::new(budgets::all_limits(pool).await?);
        *l = Some((Instant::now(), b.clone()));
        Ok(b)
    }

    async fn invalidate(&self) {
        *self.loaded.lock().await = None;
    }
}

fn to_budget(r: BudgetRow) -> Result<CreditBudget, GenerationError> {
    let scope = match r.scope.as_str() {
        "user" => BudgetScope::User,
        "world" => BudgetScope::World,
        other => {
            return Err(GenerationError::Store(store::StoreError::Corrupt(format!(
                "budget scope {other:?}"
            ))));
        }
    };
    Ok(CreditBudget {
        scope,
        scope_id: r.scope_id,
        daily_limit: r.daily_limit,
        total_limit: r.total_limit,
        spent_today: r.spent_today,
        spent_total: r.spent_total,
        updated_at: r.updated_at,
    })
}

/// A budget's scope id as stored: a user id in its canonical form, so that jobs (which
/// store a uuid) match it however it was written; a world id as it is.
fn canonical_id(scope: BudgetScope, scope_id: &str) -> String {
    match scope {
        BudgetScope::User => uuid::Uuid::parse_str(scope_id)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| scope_id.to_owned()),
        BudgetScope::World => scope_id.to_owned(),
    }
}

fn admin_only(actor: Actor) -> Result<(), GenerationError> {
    if actor.is_admin {
        Ok(())
    } else {
        Err(GenerationError::Forbidden("only admins manage budgets"))
    }
}

impl GenerationService {
    /// Every budget with its spending (admins).
    pub async fn list_budgets(&self, actor: Actor) -> Result<Vec<CreditBudget>, GenerationError> {
        admin_only(actor)?;
        budgets::list(&self.shared.pool)
            .await?
            .into_iter()
            .map(to_budget)
            .collect()
    }

    /// Sets the budget of a user or a world (admins). A user scope must name a user id.
    pub async fn set_budget(
        &self,
        actor: Actor,
        scope: BudgetScope,
        scope_id: &str,
        set: SetBudget,
    ) -> Result<CreditBudget, GenerationError> {
        admin_only(actor)?;
        let mut issues = Issues::default();
        if scope == BudgetScope::User && uuid::Uuid::parse_str(scope_id).is_err() {
            issues.push("scope_id", "invalid_value", "a user budget names a user id");
        }
        if scope_id.is_empty() || scope_id.len() > 200 {
            issues.push("scope_id", "invalid_value", "1 to 200 characters");
        }
        for (field, v) in [
            ("daily_limit", set.daily_limit),
            ("total_limit", set.total_limit),
        ] {
            if v.is_some_and(|v| v < 0) {
                issues.push(field, "out_of_range", "at least 0");
            }
        }
        if !issues.is_empty() {
            return Err(GenerationError::InvalidParameters(issues.0));
        }
        let id = canonical_id(scope, scope_id);
        let row = budgets::set(
            &self.shared.pool,
            scope.as_str(),
            &id,
            set.daily_limit,
            set.total_limit,
        )
        .await?;
        self.shared.budgets.invalidate().await;
        tracing::info!(scope = scope.as_str(), scope_id = %id, daily = ?set.daily_limit, total = ?set.total_limit, "credit budget set");
        to_budget(row)
    }

    /// Removes a budget (admins).
    pub async fn delete_budget(
        &self,
        actor: Actor,
        scope: BudgetScope,
        scope_id: &str,
    ) -> Result<(), GenerationError> {
        admin_only(actor)?;
        let id = canonical_id(scope, scope_id);
        let found = budgets::delete(&self.shared.pool, scope.as_str(), &id).await?;
        self.shared.budgets.invalidate().await;
        if found {
            Ok(())
        } else {
            Err(GenerationError::NotFound("budget"))
        }
    }

    /// The budgets a new job is checked against: its user's and its world's.
    pub(crate) async fn budgets_of(
        &self,
        new: &NewJob,
    ) -> Result<Vec<BudgetCheck>, GenerationError> {
        if new.estimated_credits <= 0 {
            return Ok(Vec::new());
        }
        let all = self.shared.budgets.get(&self.shared.pool).await?;
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let user = new.user_id.to_string();
        let world = new.metadata.get("world").and_then(|w| w.as_str());
        Ok(all
            .iter()
            .filter(|b| {
                (b.scope == "user" && b.scope_id == user)
                    || (b.scope == "world" && Some(b.scope_id.as_str()) == world)
            })
            .map(|b| BudgetCheck {
                scope: b.scope.clone(),
                scope_id: b.scope_id.clone(),
                daily_limit: b.daily_limit,
                total_limit: b.total_limit,
            })
            .collect())
    }
}
