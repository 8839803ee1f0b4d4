//! Users, roles and login sessions.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identifies a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
pub struct UserId(pub Uuid);

/// The content owner: a fixed, disabled account (created by a migration) that owns the
/// assets generated for scene media. Assets it owns are readable by every signed-in user.
pub const CONTENT_OWNER: UserId = UserId(Uuid::from_u128(0xc0de));

/// Identifies one login (an auth session); a token names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
pub struct AuthSessionId(pub Uuid);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for AuthSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    #[default]
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `admin` nor `user`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}' (expected 'admin' or 'user')")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// A user as the rest of the system sees it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A login session as listed to its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthSession {
    pub id: AuthSessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// Rules for emails and passwords, shared by the API and the CLI.
pub mod rules {
    /// Longest accepted email, in bytes.
    pub const EMAIL_MAX: usize = 254;
    /// Password length bounds, in characters.
    pub const PASSWORD_MIN: usize = 8;
    pub const PASSWORD_MAX: usize = 256;
    pub const DISPLAY_NAME_MAX: usize = 100;

    /// Checks an email's shape (one `@`, a dot in the domain, no spaces).
    pub fn check_email(email: &str) -> Result<(), &'static str> {
        if email.len() > EMAIL_MAX {
            return Err("email is too long");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("email must contain '@'");
        };
        if local.is_empty() || domain.len() < 3 || !domain.contains('.') || domain.contains('@') {
            return Err("email is not a valid address");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("email must not contain spaces");
        }
        Ok(())
    }

    pub fn check_password(password: &str) -> Result<(), &'static str> {
        let n = password.chars().count();
        if n < PASSWORD_MIN {
            return Err("password must be at least 8 characters");
        }
        if n > PASSWORD_MAX {
            return Err("password must be at most 256 characters");
        }
        Ok(())
    }

    pub fn check_display_name(name: &str) -> Result<(), &'static str> {
        if name.trim().is_empty() {
            return Err("display name must not be blank");
        }
        if name.chars().count() > DISPLAY_NAME_MAX {
            return Err("display name must be at most 100 characters");
        }
        if name.chars().any(char::is_control) {
            return Err("display name must not contain control characters");
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn emails() {
            assert!(check_email("a@b.io").is_ok());
            for bad in ["", "ab.io", "@b.io", "a@b", "a b@c.io", "a@b@c.io"] {
                assert!(check_email(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn passwords() {
            assert!(check_password("12345678").is_ok());
            assert!(check_password("1234567").is_err());
            assert!(check_password(&"x".repeat(257)).is_err());
        }
    }
}
