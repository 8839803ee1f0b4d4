//! Admin: credit budgets per user and per world. A create that would bring its user's
//! or its world's spending over a daily or total limit is refused with 402
//! `budget_exceeded`.

use axum::extract::State;
use axum::http::StatusCode;
use generation::model::{BudgetScope, CreditBudget, SetBudget};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::extract::Admin;
use crate::routes::generations::actor;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_budgets))
        .routes(routes!(set_budget, delete_budget))
}

/// Every budget with what its scope has spent today (UTC) and in all: unfinished jobs
/// with their estimated credits, finished ones with what they were charged.
#[utoipa::path(get, path = "/api/v1/admin/budgets", operation_id = "admin_list_budgets", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<CreditBudget>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_budgets(
    State(s): State<AppState>,
    Admin(p): Admin,
) -> ApiResult<ApiJson<Vec<CreditBudget>>> {
    Ok(ApiJson(s.generation.list_budgets(actor(&p)).await?))
}

/// Sets the budget of a user (`user`, a user id) or a world (`world`, a world id):
/// `daily_limit` and `total_limit` in credits, either null for none. A world's jobs are
/// those whose `metadata.world` names it (the scene media of the world's scenes).
#[utoipa::path(put, path = "/api/v1/admin/budgets/{scope}/{scope_id}", operation_id = "admin_set_budget", tag = "admin",
    security(("bearer" = [])),
    params(
        ("scope" = BudgetScope, Path, description = "`user` or `world`"),
        ("scope_id" = String, Path, description = "the user id or the world id")),
    request_body = SetBudget,
    responses((status = 200, body = CreditBudget), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "a negative limit, or a user scope naming no user id", body = ErrorBody)))]
async fn set_budget(
    State(s): State<AppState>,
    Admin(p): Admin,
    ApiPath((scope, scope_id)): ApiPath<(BudgetScope, String)>,
    ApiJson(set): ApiJson<SetBudget>,
) -> ApiResult<ApiJson<CreditBudget>> {
    Ok(ApiJson(
        s.generation
            .set_budget(actor(&p), scope, &scope_id, set)
            .await?,
    ))
}

/// Removes a budget.
#[utoipa::path(delete, path = "/api/v1/admin/budgets/{scope}/{scope_id}", operation_id = "admin_delete_budget", tag = "admin",
    security(("bearer" = [])),
    params(
        ("scope" = BudgetScope, Path, description = "`user` or `world`"),
        ("scope_id" = String, Path, description = "the user id or the world id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no such budget", body = ErrorBody)))]
async fn delete_budget(
    State(s): State<AppState>,
    Admin(p): Admin,
    ApiPath((scope, scope_id)): ApiPath<(BudgetScope, String)>,
) -> ApiResult<StatusCode> {
    s.generation
        .delete_budget(actor(&p), scope, &scope_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
