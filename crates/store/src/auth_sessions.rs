//! The `auth_sessions` table: one row per login.

use chrono::{DateTime, Utc};
use domain::user::{AuthSession, AuthSessionId, User, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use crate::StoreError;

struct Row {
    id: Uuid,
    user_id: Uuid,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    user_agent: Option<String>,
    ip: Option<String>,
}

impl From<Row> for AuthSession {
    fn from(r: Row) -> Self {
        AuthSession {
            id: AuthSessionId(r.id),
            user_id: UserId(r.user_id),
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            user_agent: r.user_agent,
            ip: r.ip,
        }
    }
}

pub async fn create(
    pool: &PgPool,
    user: UserId,
    expires_at: DateTime<Utc>,
    user_agent: Option<&str>,
    ip: Option<&str>,
) -> Result<AuthSession, StoreError> {
    let row = sqlx::query_as!(
        Row,
        "INSERT INTO auth_sessions (id, user_id, expires_at, user_agent, ip)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, user_id, created_at, last_seen_at, expires_at, revoked_at, user_agent, ip",
        Uuid::now_v7(),
        user.0,
        expires_at,
        user_agent,
        ip,
    )
    .fetch_one(pool)
    .await?;
    Ok(row.into())
}

/// The user behind a live session: not revoked, not expired, user not disabled.
/// Touches `last_seen_at` at most once a minute, so most checks are a single read.
pub async fn authenticate(
    pool: &PgPool,
    session: AuthSessionId,
) -> Result<Option<User>, StoreError> {
    // The session and its user in one round trip (every authenticated request runs it).
    let row = sqlx::query!(
        "SELECT s.last_seen_at, u.id, u.email, u.display_name, u.role, u.disabled,
             u.created_at, u.updated_at
         FROM auth_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled",
        session.0,
    )
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    if Utc::now() - r.last_seen_at > chrono::Duration::seconds(60) {
        sqlx::query!(
            "UPDATE auth_sessions SET last_seen_at = now() WHERE id = $1",
            session.0,
        )
        .execute(pool)
        .await?;
    }
    let user: User = crate::users::UserRow {
        id: r.id,
        email: r.email,
        display_name: r.display_name,
        role: r.role,
        disabled: r.disabled,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
    .try_into()?;
    Ok(Some(user))
}

/// Live sessions of a user, newest first.
pub async fn list_active(pool: &PgPool, user: UserId) -> Result<Vec<AuthSession>, StoreError> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, user_id, created_at, last_seen_at, expires_at, revoked_at, user_agent, ip FROM auth_sessions
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
         ORDER BY created_at DESC",
        user.0,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Revokes one of `user`'s sessions; false when there is no such live session.
pub async fn revoke(
    pool: &PgPool,
    user: UserId,
    session: AuthSessionId,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "UPDATE auth_sessions SET revoked_at = now()
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        session.0,
        user.0,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live (unrevoked, unexpired) session of `user` but `except`; returns
/// how many.
pub async fn revoke_all(
    pool: &PgPool,
    user: UserId,
    except: Option<AuthSessionId>,
) -> Result<u64, StoreError> {
    let done = sqlx::query!(
        "UPDATE auth_sessions SET revoked_at = now()
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
           AND ($2::uuid IS NULL OR id <> $2)",
        user.0,
        except.map(|s| s.0),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
