//! The generation providers: what each runs (operations with their parameter limits),
//! how its credits are estimated, whether it can cancel, and its status for the caller
//! (`available`, `retired`, `unconfigured`). Reachability is in `/health`.

use axum::extract::State;
use generation::provider::ProviderDescription;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::routes::generations::actor;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Every provider, sorted by id: its operations with their parameter limits (allowed
/// models, durations, qualities, aspect ratios, sizes, other parameters, defaults), its
/// credit-estimate rule, whether it can cancel a running job, and its status for the
/// caller: `retired` (with `retired_on`; new jobs are refused unless `accepts_jobs`),
/// `unconfigured` (it needs a provider account and none can run the caller's jobs) or
/// `available`.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<ProviderDescription>),
        (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<ApiJson<Vec<ProviderDescription>>> {
    Ok(ApiJson(s.generation.list_providers(actor(&p)).await?))
}
