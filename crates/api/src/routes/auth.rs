//! Registration, login, logout and login sessions.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::user::{AuthSessionId, Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::extract::{Auth, Client};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    #[schema(max_length = 100)]
    pub display_name: Option<String>,
}

/// Creates an account with the `user` role.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = User),
        (status = 409, description = "email taken", body = ErrorBody),
        (status = 422, description = "invalid email, password or name", body = ErrorBody),
        (status = 429, description = "too many registrations from this IP; see Retry-After", body = ErrorBody),
        (status = 503, description = "busy: every password-hashing slot is taken; see Retry-After", body = ErrorBody)))]
async fn register(
    State(s): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, ApiJson<User>)> {
    let user = s
        .auth
        .register_from(
            &client,
            &req.email,
            &req.password,
            req.display_name.as_deref(),
            Role::User,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// JWT to send as `Authorization: Bearer <token>` (REST) or in the QUIC handshake.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: AuthSessionId,
    pub user: User,
}

/// Opens a login session. Rate-limited per IP and per account.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "wrong email or password", body = ErrorBody),
        (status = 429, description = "too many attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "busy: every password-hashing slot is taken; see Retry-After", body = ErrorBody)))]
async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    let login = s.auth.login(&req.email, &req.password, &client).await?;
    Ok(ApiJson(LoginResponse {
        access_token: login.token,
        token_type: "Bearer",
        expires_at: login.session.expires_at,
        session_id: login.session.id,
        user: login.user,
    }))
}

/// Ends the session of the token used; the token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<StatusCode> {
    s.auth.logout(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// Number of sessions ended.
    pub revoked: u64,
}

/// Ends every session of the caller, this one included.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Revoked), (status = 401, body = ErrorBody)))]
async fn logout_all(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<ApiJson<Revoked>> {
    let revoked = s.auth.logout_all(p.user.id).await?;
    Ok(ApiJson(Revoked { revoked }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: AuthSessionId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// True for the session of the token used.
    pub current: bool,
}

/// The caller's live login sessions, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody)))]
async fn sessions(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<ApiJson<Vec<SessionView>>> {
    let list = s.auth.sessions(p.user.id).await?;
    Ok(ApiJson(
        list.into_iter()
            .map(|x| SessionView {
                current: x.id == p.session,
                id: x.id,
                created_at: x.created_at,
                last_seen_at: x.last_seen_at,
                expires_at: x.expires_at,
                user_agent: x.user_agent,
                ip: x.ip,
            })
            .collect(),
    ))
}

/// Revokes one of the caller's sessions.
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "session id")),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 404, description = "no such live session of yours", body = ErrorBody)))]
async fn revoke_session(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    s.auth.revoke(p.user.id, AuthSessionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
