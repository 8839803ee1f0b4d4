//! The caller's own account.

use axum::extract::State;
use domain::user::User;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me, patch_me))
}

/// The caller.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(Auth(p): Auth) -> ApiJson<User> {
    ApiJson(p.user)
}

/// Distinguishes a missing field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub new: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMe {
    /// A new display name; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub display_name: Option<Option<String>>,
    /// Changing the password needs the current one.
    pub password: Option<PasswordChange>,
}

/// Updates the caller's display name or password.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    request_body = PatchMe,
    responses((status = 200, body = User), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn patch_me(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<PatchMe>,
) -> ApiResult<ApiJson<User>> {
    if req.display_name.is_none() && req.password.is_none() {
        return Err(ApiError::validation(
            "nothing to change: give display_name or password",
        ));
    }
    let name = req.display_name.as_ref().map(|o| o.as_deref());
    let password = req
        .password
        .as_ref()
        .map(|c| (c.current.as_str(), c.new.as_str()));
    let user = s
        .auth
        .update_profile(p.user.id, Some(p.session), name, password)
        .await
        .map_err(|e| match e {
            auth::AuthError::BadCredentials => {
                ApiError::validation("the current password is wrong")
            }
            other => other.into(),
        })?;
    Ok(ApiJson(user))
}
