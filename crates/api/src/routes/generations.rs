//! Generation jobs: create, validate, list, inspect and steer them (cancel, pause,
//! resume, retry, delete). Users see and change only their own jobs; admins see all.

use auth::Principal;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use generation::GenerationError;
use generation::model::{
    Actor, CreateGeneration, Generation, GenerationFilter, JobStatus, Operation, Page, ParamIssue,
    Submission, ValidationReport,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(validate))
        .routes(routes!(show, remove))
        .routes(routes!(cancel))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(retry))
        .routes(routes!(submissions))
}

/// The pipeline's view of the caller.
pub(crate) fn actor(p: &Principal) -> Actor {
    Actor {
        user_id: p.user.id,
        is_admin: p.is_admin(),
    }
}

/// The answer to a request that does not validate, the same for create and validate:
/// 409 `conflict` when the only problem is that no provider account can run the job,
/// otherwise 422 `validation_failed` with `details.code = "invalid_parameters"` and
/// `details.issues` (field, code, message).
fn refused(provider: String, issues: Vec<ParamIssue>) -> ApiError {
    if issues.len() == 1 && issues[0].code == "no_account_available" {
        return GenerationError::NoAccountAvailable(provider).into();
    }
    let message = GenerationError::InvalidParameters(issues.clone()).to_string();
    ApiError::Validation {
        message,
        details: Some(serde_json::json!({
            "code": "invalid_parameters",
            "issues": issues,
        })),
    }
}

/// The request header that sets a create's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The idempotency key of a create: the `Idempotency-Key` header, which must equal the
/// body's `idempotency_key` when both are given, else the body's.
fn idempotency_key(
    headers: &HeaderMap,
    body: Option<String>,
) -> Result<Option<String>, ParamIssue> {
    let issue = |message: &str| ParamIssue {
        field: "Idempotency-Key".into(),
        code: "invalid_value".into(),
        message: message.into(),
    };
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(body);
    };
    let header = value
        .to_str()
        .map_err(|_| issue("visible ASCII characters only"))?
        .to_owned();
    match body {
        Some(b) if b != header => Err(issue("differs from the body's idempotency_key")),
        _ => Ok(Some(header)),
    }
}

/// Creates a generation job.
///
/// **Idempotency**: the `Idempotency-Key` header (or the body's `idempotency_key`; when
/// both are given they must be equal, else 422) names the create. A create with a key
/// the caller used within the last 24 hours returns the job created with it, unchanged,
/// with the same status code as the first (201), and creates nothing; the same key with
/// other parameters is refused with 409 `conflict`. Keys are per user; after 24 hours a
/// key makes a new job.
///
/// **Deadline**: with `deadline_at` (RFC 3339, in the future, at most 30 days ahead,
/// else 422), a job not started by then (pending or paused) is never started: it is
/// cancelled with error code `deadline_exceeded` and nothing is charged. A processing
/// job past its deadline is cancelled at the provider where the provider has a call to
/// stop a submission (as a user's cancel), else left to finish. The cancel is
/// announced on the job event stream as `job:failed`, like other cancels.
///
/// With the same parameters as a completed job of the caller (and not `force_new`),
/// the job is created completed, reusing that asset (`reused_from` is set).
///
/// **Budgets**: a job that costs credits is refused with 402 `budget_exceeded` when it
/// would bring its user's or its world's (`metadata.world`) spending over a limit an
/// admin set (`/api/v1/admin/budgets`); `details` names the budget, the period
/// (`daily` or `total`), the limit, what was spent and the job's estimate.
#[utoipa::path(post, path = "/api/v1/generations", tag = "generations",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 200 characters; a repeated create within 24 hours returns the first job")),
    request_body = CreateGeneration,
    responses(
        (status = 201, description = "the job created, or the job created earlier with the same idempotency key", body = Generation),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, description = "`budget_exceeded`: over a credit budget of the user or the world", body = ErrorBody),
        (status = 409, description = "no provider account can run the job, or the idempotency key was used with other parameters", body = ErrorBody),
        (status = 422, description = "invalid request; `details.issues` lists the problems", body = ErrorBody),
        (status = 429, description = "too many unfinished jobs", body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<CreateGeneration>,
) -> ApiResult<(StatusCode, ApiJson<Generation>)> {
    let provider = req
        .provider
        .clone()
        .unwrap_or_else(|| s.generation.config().default_provider.clone());
    req.idempotency_key = match idempotency_key(&headers, req.idempotency_key.take()) {
        Ok(key) => key,
        Err(issue) => return Err(refused(provider, vec![issue])),
    };
    match s.generation.create(actor(&p), req).await {
        Ok(g) => Ok((StatusCode::CREATED, ApiJson(g))),
        Err(GenerationError::InvalidParameters(issues)) => Err(refused(provider, issues)),
        Err(e) => Err(e.into()),
    }
}

/// Checks a request exactly as create would, without creating anything. A valid
/// request answers 200 with the canonical parameters, their hash and the asset a
/// create would reuse; an invalid one gets the same error as create.
#[utoipa::path(post, path = "/api/v1/generations/validate", tag = "generations",
    security(("bearer" = [])),
    request_body = CreateGeneration,
    responses(
        (status = 200, body = ValidationReport),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "no provider account can run the job", body = ErrorBody),
        (status = 422, description = "invalid request; `details.issues` lists the problems", body = ErrorBody)))]
async fn validate(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateGeneration>,
) -> ApiResult<ApiJson<ValidationReport>> {
    let report = s.generation.validate(actor(&p), &req).await?;
    if !report.valid {
        return Err(refused(report.provider, report.issues));
    }
    Ok(ApiJson(report))
}

/// Filters and page of `GET /api/v1/generations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GenerationQuery {
    /// Admins only: another user's jobs (default: every user's for admins, one's own
    /// otherwise).
    pub user_id: Option<Uuid>,
    /// Comma-separated statuses, e.g. `pending,processing`.
    pub status: Option<String>,
    pub provider: Option<String>,
    #[param(inline)]
    pub operation: Option<Operation>,
    /// Created at or after (RFC 3339).
    pub created_after: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u32>,
    /// Page size: default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

fn parse_statuses(text: &str) -> Result<Vec<JobStatus>, ApiError> {
    text.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<JobStatus>().map_err(|e| ApiError::BadRequest {
                code: "invalid_query",
                message: format!("status: {e}"),
            })
        })
        .collect()
}

/// The caller's jobs (all jobs for admins), newest first.
#[utoipa::path(get, path = "/api/v1/generations", tag = "generations",
    security(("bearer" = [])),
    params(GenerationQuery),
    responses(
        (status = 200, body = Page<Generation>),
        (status = 400, description = "invalid query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`user_id` of another user, asked by a non-admin", body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<GenerationQuery>,
) -> ApiResult<ApiJson<Page<Generation>>> {
    let actor = actor(&p);
    if let Some(u) = q.user_id
        && !actor.may_see(u)
    {
        return Err(ApiError::Forbidden(
            "only admins list other users' generations".into(),
        ));
    }
    let status = q.status.as_deref().map(parse_statuses).transpose()?;
    let filter = GenerationFilter {
        user_id: q.user_id,
        status: status.filter(|s| !s.is_empty()),
        provider: q.provider,
        operation: q.operation,
        created_after: q.created_after,
        created_before: q.created_before,
        offset: q.offset.unwrap_or(0),
        limit: q.limit,
    };
    Ok(ApiJson(s.generation.list(actor, &filter).await?))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/generations/{id}", tag = "generations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "generation id")),
    responses(
        (status = 200, body = Generation),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such generation of yours", body = ErrorBody)))]
async fn show(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Generation>> {
    Ok(ApiJson(s.generation.get(actor(&p), id).await?))
}

/// Deletes a job that is not processing (its asset stays).
#[utoipa::path(delete, path = "/api/v1/generations/{id}", tag = "generations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "generation id")),
    responses(
        (status = 204),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such generation of yours", body = ErrorBody),
        (status = 409, description = "the job is processing; cancel it first", body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    s.generation.delete(actor(&p), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// pending, paused or processing → cancelled (a running attempt stops at its next
/// heartbeat and writes nothing).
#[utoipa::path(post, path = "/api/v1/generations/{id}/cancel", tag = "generations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "generation id")),
    responses(
        (status = 200, body = Generation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such generation of yours", body = ErrorBody),
        (status = 409, description = "already finished", body = ErrorBody)))]
async fn cancel(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Generation>> {
    Ok(ApiJson(s.generation.cancel(actor(&p), id).await?))
}

/// pending → paused (held out of the queue until resumed).
#[utoipa::path(post, path = "/api/v1/generations/{id}/pause", tag = "generations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "generation id")),
    responses(
        (status = 200, body = Generation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such generation of yours", body = ErrorBody),
        (status = 409, description = "not pending", body = ErrorBody)))]
async fn pause(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Generation>> {
    Ok(ApiJson(s.generation.pause(actor(&p), id).await?))
}

/// paused → pending.
#[utoipa::path(post, path = "/api/v1/generations/{id}/resume", tag = "generations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "generation id")),
    responses(
        (status = 200, body = Generation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such generation of yours", body = ErrorBody),
        (status = 409, description = "not paused", body = ErrorBody)))]
async fn resume(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Generation>> {
    Ok(ApiJson(s.generation.resume(actor(&p), id).await?))
}

/// failed or cancelled → pending, with the retry count reset.
#[utoipa::path(post, path = "/api/v1/generations/{id}/retry", tag = "generations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "generation id")),
    responses(
        (status = 200, body = Generation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such generation of yours", body = ErrorBody),
        (status = 409, description = "neither failed nor cancelled", body = ErrorBody)))]
async fn retry(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Generation>> {
    Ok(ApiJson(s.generation.retry(actor(&p), id).await?))
}

/// The provider submissions of a job (at most one per attempt).
#[utoipa::path(get, path = "/api/v1/generations/{id}/submissions", tag = "generations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "generation id")),
    responses(
        (status = 200, body = Vec<Submission>),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such generation of yours", body = ErrorBody)))]
async fn submissions(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Vec<Submission>>> {
    Ok(ApiJson(s.generation.submissions(actor(&p), id).await?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_comma_separated() {
        assert_eq!(
            parse_statuses("pending, failed,").unwrap(),
            vec![JobStatus::Pending, JobStatus::Failed]
        );
        assert!(parse_statuses("pending,nope").is_err());
    }

    #[test]
    fn a_lone_missing_account_is_a_conflict() {
        let issue = |code: &str| ParamIssue {
            field: "provider".into(),
            code: code.into(),
            message: "m".into(),
        };
        let e = refused("pixverse".into(), vec![issue("no_account_available")]);
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let e = refused(
            "pixverse".into(),
            vec![issue("no_account_available"), issue("required")],
        );
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let ApiError::Validation { details, .. } = e else {
            panic!("not a validation error")
        };
        assert_eq!(details.unwrap()["issues"].as_array().unwrap().len(), 2);
    }
}
