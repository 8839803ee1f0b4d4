//! The `users` table.

use chrono::{DateTime, Utc};
use domain::user::{Role, User, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{StoreError, conflict};

/// A row as stored (the role as text: `domain` knows no sqlx).
pub(crate) struct UserRow {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) display_name: Option<String>,
    pub(crate) role: String,
    pub(crate) disabled: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId(r.id),
            email: r.email,
            display_name: r.display_name,
            role: r
                .role
                .parse::<Role>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            disabled: r.disabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A new account; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub display_name: Option<&'a str>,
    pub role: Role,
}

/// Creates a user; [`StoreError::Conflict`] when the email is taken (case-insensitively).
pub async fn create(pool: &PgPool, new: NewUser<'_>) -> Result<User, StoreError> {
    let row = sqlx::query_as!(
        UserRow,
        "INSERT INTO users (id, email, password_hash, display_name, role)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, email, display_name, role, disabled, created_at, updated_at",
        Uuid::now_v7(),
        new.email,
        new.password_hash,
        new.display_name,
        new.role.as_str(),
    )
    .fetch_one(pool)
    .await
    .map_err(conflict("a user with this email"))?;
    row.try_into()
}

pub async fn get(pool: &PgPool, id: UserId) -> Result<User, StoreError> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT id, email, display_name, role, disabled, created_at, updated_at
         FROM users WHERE id = $1",
        id.0,
    )
    .fetch_optional(pool)
    .await?;
    row.ok_or(StoreError::NotFound("user"))?.try_into()
}

/// The user and password hash for a login, by email (case-insensitive).
pub async fn credentials(pool: &PgPool, email: &str) -> Result<Option<(User, String)>, StoreError> {
    let row = sqlx::query!(
        "SELECT id, email, display_name, role, disabled, created_at, updated_at, password_hash
         FROM users WHERE lower(email) = lower($1)",
        email,
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let user = UserRow {
            id: r.id,
            email: r.email,
            display_name: r.display_name,
            role: r.role,
            disabled: r.disabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        };
        Ok((user.try_into()?, r.password_hash))
    })
    .transpose()
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch<'a> {
    /// `Some(None)` clears the display name.
    pub display_name: Option<Option<&'a str>>,
    pub password_hash: Option<&'a str>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

pub async fn update(pool: &PgPool, id: UserId, patch: UserPatch<'_>) -> Result<User, StoreError> {
    let row = sqlx::query_as!(
        UserRow,
        "UPDATE users SET
            display_name  = CASE WHEN $2 THEN $3 ELSE display_name END,
            password_hash = COALESCE($4, password_hash),
            role          = COALESCE($5, role),
            disabled      = COALESCE($6, disabled),
            updated_at    = now()
         WHERE id = $1
         RETURNING id, email, display_name, role, disabled, created_at, updated_at",
        id.0,
        patch.display_name.is_some(),
        patch.display_name.flatten(),
        patch.password_hash,
        patch.role.map(Role::as_str),
        patch.disabled,
    )
    .fetch_optional(pool)
    .await?;
    row.ok_or(StoreError::NotFound("user"))?.try_into()
}

/// Number of accounts (people), not counting the content owner.
pub async fn count(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM users WHERE id <> $1"#,
        domain::user::CONTENT_OWNER.0,
    )
    .fetch_one(pool)
    .await?)
}
