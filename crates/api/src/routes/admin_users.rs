//! Admin: disable and re-enable users.

use axum::extract::State;
use domain::user::{User, UserId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::extract::Admin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(patch_user))
}

/// Changes to a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAdminPatch {
    /// `true` disables the user: every session ends at once, its WebSockets, event
    /// streams and QUIC connections included; logins are refused. `false` re-enables.
    pub disabled: bool,
}

/// Disables or re-enables a user (admins; not themselves).
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", operation_id = "admin_patch_user", tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    request_body = UserAdminPatch,
    responses((status = 200, body = User), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "an admin cannot disable themselves", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn patch_user(
    State(s): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UserAdminPatch>,
) -> ApiResult<ApiJson<User>> {
    if req.disabled && admin.user.id.0 == id {
        // Nobody locks themselves out: another admin can do it.
        return Err(ApiError::Conflict(
            "an admin cannot disable themselves".into(),
        ));
    }
    Ok(ApiJson(
        s.auth.set_disabled(UserId(id), req.disabled).await?,
    ))
}
