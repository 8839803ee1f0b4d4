//! Provider accounts (API keys of Pixverse, OpenAI, …). Users manage their own and see
//! the shared ones; admins manage all and create shared ones. The key is write-only:
//! answers carry only `api_key_hint` (its last characters).

use axum::extract::State;
use axum::http::StatusCode;
use generation::model::{NewProviderAccount, ProviderAccount, ProviderAccountPatch};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::routes::generations::actor;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
        .routes(routes!(refresh))
}

/// Creates an account. Users own theirs; `shared: true` (every user's jobs may use it)
/// is for admins.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts",
    security(("bearer" = [])),
    request_body = NewProviderAccount,
    responses(
        (status = 201, body = ProviderAccount),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "a shared account, asked by a non-admin", body = ErrorBody),
        (status = 422, description = "unknown provider, empty label or key, bad limits", body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(new): ApiJson<NewProviderAccount>,
) -> ApiResult<(StatusCode, ApiJson<ProviderAccount>)> {
    let account = s.generation.create_account(actor(&p), new).await?;
    Ok((StatusCode::CREATED, ApiJson(account)))
}

/// Filter of `GET /api/v1/accounts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Only this provider's accounts, e.g. `pixverse`.
    pub provider: Option<String>,
}

/// The accounts the caller may see: their own and the shared ones (all for admins).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    security(("bearer" = [])),
    params(AccountQuery),
    responses(
        (status = 200, body = Vec<ProviderAccount>),
        (status = 400, description = "invalid query", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> ApiResult<ApiJson<Vec<ProviderAccount>>> {
    let provider = q.provider.as_deref().filter(|x| !x.is_empty());
    Ok(ApiJson(
        s.generation.list_accounts(actor(&p), provider).await?,
    ))
}

/// One account (own or shared; any for admins).
#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 200, body = ProviderAccount),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such account visible to you", body = ErrorBody)))]
async fn show(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<ProviderAccount>> {
    Ok(ApiJson(s.generation.get_account(actor(&p), id).await?))
}

/// Changes an account; absent fields stay as they are. Users change their own
/// accounts, admins any (shared ones included).
#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "account id")),
    request_body = ProviderAccountPatch,
    responses(
        (status = 200, body = ProviderAccount),
        (status = 400, description = "malformed JSON or id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "a shared account, changed by a non-admin", body = ErrorBody),
        (status = 404, description = "no such account of yours", body = ErrorBody),
        (status = 422, description = "invalid values", body = ErrorBody)))]
async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<ProviderAccountPatch>,
) -> ApiResult<ApiJson<ProviderAccount>> {
    Ok(ApiJson(
        s.generation.update_account(actor(&p), id, patch).await?,
    ))
}

/// Reads the account's credit balance from its provider's balance endpoint (Pixverse:
/// monthly plus package credits) and records it: at zero the account becomes
/// `exhausted`, and an exhausted account with credits `active` again. Users refresh
/// their own accounts, admins any.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/refresh", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 200, body = ProviderAccount),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "a shared account, refreshed by a non-admin", body = ErrorBody),
        (status = 404, description = "no such account of yours", body = ErrorBody),
        (status = 409, description = "the provider refused the account's key (it is marked `error`)", body = ErrorBody),
        (status = 422, description = "the provider has no balance endpoint", body = ErrorBody),
        (status = 503, description = "the provider could not be reached", body = ErrorBody)))]
async fn refresh(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<ProviderAccount>> {
    Ok(ApiJson(s.generation.refresh_account(actor(&p), id).await?))
}

/// Deletes an account. Users delete their own accounts, admins any.
#[utoipa::path(delete, path = "/api/v1/accounts/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 204),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "a shared account, deleted by a non-admin", body = ErrorBody),
        (status = 404, description = "no such account of yours", body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    s.generation.delete_account(actor(&p), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
