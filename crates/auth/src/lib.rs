//! Accounts and tokens: argon2id password hashes, JWTs that name a session row,
//! and login rate limits.
//!
//! A token is only a pointer: [`AuthService::authenticate`] checks the session row
//! (remembered for at most two seconds in the [`SessionCache`], which every
//! revocation in this process or announced by a peer clears), so logout and
//! revocation take effect at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::Utc;
use domain::user::{AuthSession, AuthSessionId, Role, User, UserId, rules};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use store::StoreError;
use store::users::{NewUser, UserPatch};
use uuid::Uuid;

mod cache;
pub mod revoke;
pub use cache::SessionCache;
pub use revoke::{RevocationWatch, Revocations, Revoked};

/// Errors of authentication and account management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("invalid email or password")]
    BadCredentials,
    #[error("missing or invalid token")]
    InvalidToken,
    #[error("the session has ended; log in again")]
    SessionEnded,
    #[error("too many attempts; retry in {} s", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    /// Every password-hashing slot stayed taken for the queue timeout.
    #[error("the server is busy; retry in {} s", .retry_after.as_secs().max(1))]
    Busy { retry_after: Duration },
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => AuthError::EmailTaken,
            StoreError::NotFound(_) => AuthError::NotFound,
            other => AuthError::Store(other),
        }
    }
}

/// What a token asserts. The session id is checked against the database on use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Auth session id.
    pub sid: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// The caller of an authenticated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user: User,
    pub session: AuthSessionId,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// Settings of [`AuthService`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HMAC key for HS256 tokens; at least 32 bytes.
    pub jwt_secret: Vec<u8>,
    pub token_ttl: Duration,
    /// Login attempts per IP: burst and refill period for one attempt.
    pub ip_burst: u32,
    pub ip_refill: Duration,
    /// Failed logins per account: burst and refill period for one attempt.
    pub account_burst: u32,
    pub account_refill: Duration,
    /// Registrations per IP: burst and refill period for one attempt.
    pub register_burst: u32,
    pub register_refill: Duration,
    /// How long a password hash or check may wait for one of the hashing slots (as
    /// many as the machine has cores, process-wide) before it fails with
    /// [`AuthError::Busy`].
    pub hash_queue_timeout: Duration,
    /// Live login sessions per user; a login beyond it ends the oldest ones.
    pub max_sessions_per_user: usize,
}

impl AuthConfig {
    pub fn new(jwt_secret: Vec<u8>) -> Self {
        Self {
            jwt_secret,
            token_ttl: Duration::from_secs(7 * 24 * 3600),
            ip_burst: 20,
            ip_refill: Duration::from_secs(3),
            account_burst: 10,
            account_refill: Duration::from_secs(60),
            register_burst: 10,
            register_refill: Duration::from_secs(60),
            hash_queue_timeout: DEFAULT_HASH_QUEUE_TIMEOUT,
            max_sessions_per_user: 32,
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Login {
    pub token: String,
    pub session: AuthSession,
    pub user: User,
}

/// Where a login comes from, for rate limits and the session list.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
pub struct AuthService {
    pool: PgPool,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    by_ip: RateLimiter,
    by_account: RateLimiter,
    register_by_ip: RateLimiter,
    max_sessions: usize,
    hash_wait: Duration,
    revocations: Revocations,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    pub fn new(pool: PgPool, cfg: &AuthConfig) -> Result<Self, AuthError> {
        if cfg.jwt_secret.len() < 32 {
            return Err(AuthError::Invalid(
                "the JWT secret must be at least 32 bytes",
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            pool,
            encoding: EncodingKey::from_secret(&cfg.jwt_secret),
            decoding: DecodingKey::from_secret(&cfg.jwt_secret),
            validation,
            ttl: cfg.token_ttl,
            by_ip: RateLimiter::new(cfg.ip_burst, cfg.ip_refill),
            by_account: RateLimiter::new(cfg.account_burst, cfg.account_refill),
            register_by_ip: RateLimiter::new(cfg.register_burst, cfg.register_refill),
            max_sessions: cfg.max_sessions_per_user.max(1),
            hash_wait: cfg.hash_queue_timeout,
            revocations: Revocations::new(),
        })
    }

    /// The announcements of ended sessions (see [`revoke`]).
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// A watch that fires when `p`'s session ends: live connections (WebSockets, SSE,
    /// QUIC) hold one and close when it fires.
    pub fn watch(&self, p: &Principal) -> RevocationWatch {
        self.revocations
            .watch(self.pool.clone(), p.user.id, p.session)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// [`Self::register`] for a caller from the network: one registration attempt of
    /// the client's IP is spent first, whatever the outcome.
    pub async fn register_from(
        &self,
        client: &ClientInfo,
        email: &str,
        password: &str,
        display_name: Option<&str>,
        role: Role,
    ) -> Result<User, AuthError> {
        if let Some(ip) = &client.ip {
            self.register_by_ip.take(ip)?;
        }
        self.register(email, password, display_name, role).await
    }

    /// Creates an account after checking email and password rules.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: Option<&str>,
        role: Role,
    ) -> Result<User, AuthError> {
        let email = email.trim();
        rules::check_email(email).map_err(AuthError::Invalid)?;
        rules::check_password(password).map_err(AuthError::Invalid)?;
        if let Some(name) = display_name {
            rules::check_display_name(name).map_err(AuthError::Invalid)?;
        }
        let hash = hash_password_within(password.to_owned(), self.hash_wait).await?;
        let user = store::users::create(
            &self.pool,
            NewUser {
                email,
                password_hash: &hash,
                display_name,
                role,
            },
        )
        .await?;
        tracing::info!(user_id = %user.id, role = %user.role, "user registered");
        Ok(user)
    }

    /// Checks credentials under the rate limits and opens a session.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Login, AuthError> {
        let email_key = email.trim().to_lowercase();
        if let Some(ip) = &client.ip {
            self.by_ip.take(ip)?;
        }
        // The account's attempt is spent before verifying, so N concurrent guesses cost
        // N attempts; it is given back when the password was right or nothing was
        // verified (busy, database error).
        self.by_account.take(&email_key)?;
        let checked = async {
            let found = store::users::credentials(&self.pool, email.trim()).await?;
            let verified = match &found {
                Some((user, hash)) if !user.disabled => {
                    verify_password_within(password.to_owned(), hash.clone(), self.hash_wait)
                        .await?
                }
                // Spend the same time on unknown emails, so timing does not reveal accounts.
                _ => {
                    verify_password_within(
                        password.to_owned(),
                        dummy_hash().to_owned(),
                        self.hash_wait,
                    )
                    .await?;
                    false
                }
            };
            Ok::<_, AuthError>(found.filter(|_| verified))
        }
        .await;
        let user = match checked {
            Ok(Some((user, _))) => {
                self.by_account.refund(&email_key);
                user
            }
            Ok(None) => {
                tracing::info!(email = %email_key, "login refused");
                return Err(AuthError::BadCredentials);
            }
            Err(e) => {
                self.by_account.refund(&email_key);
                return Err(e);
            }
        };
        let ttl = chrono::Duration::from_std(self.ttl)
            .map_err(|_| AuthError::Invalid("token ttl out of range"))?;
        let session = store::auth_sessions::create(
            &self.pool,
            user.id,
            Utc::now() + ttl,
            client.user_agent.as_deref(),
            client.ip.as_deref(),
        )
        .await?;
        self.end_sessions_beyond_cap(user.id, session.id).await;
        let token = self.issue(&user, &session)?;
        tracing::info!(user_id = %user.id, session_id = %session.id, "login");
        Ok(Login {
            token,
            session,
            user,
        })
    }

    /// Ends `user`'s oldest live sessions beyond [`AuthConfig::max_sessions_per_user`]
    /// (never `keep`, the one just opened), live connections included. A failure only
    /// leaves them to expire.
    async fn end_sessions_beyond_cap(&self, user: UserId, keep: AuthSessionId) {
        let active = match store::auth_sessions::list_active(&self.pool, user).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(user_id = %user, error = %e, "could not list sessions for the cap");
                return;
            }
        };
        // Newest first: everything past the cap is older than what stays.
        for old in active
            .iter()
            .skip(self.max_sessions)
            .filter(|s| s.id != keep)
        {
            match store::auth_sessions::revoke(&self.pool, user, old.id).await {
                Ok(true) => {
                    self.revocations.announce(Revoked::Session(old.id));
                    tracing::info!(user_id = %user, session_id = %old.id, "oldest session ended: over the per-user cap");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user_id = %user, error = %e, "could not end a session over the cap")
                }
            }
        }
    }

    fn issue(&self, user: &User, session: &AuthSession) -> Result<String, AuthError> {
        let claims = Claims {
            sub: user.id.0,
            sid: session.id.0,
            role: user.role,
            iat: Utc::now().timestamp(),
            exp: session.expires_at.timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| AuthError::InvalidToken)
    }

    /// Verifies the token's signature and expiry, then its session row.
    pub fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::InvalidToken)
    }

    /// The principal behind a bearer token; fails once the session is revoked,
    /// expired or the user disabled.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.decode(token)?;
        let session = AuthSessionId(claims.sid);
        let cache = self.revocations.cache();
        let user = match cache.get(session) {
            Some(user) => user,
            None => {
                let epoch = cache.epoch();
                let user = store::auth_sessions::authenticate(&self.pool, session)
                    .await?
                    .ok_or(AuthError::SessionEnded)?;
                cache.put(session, user.clone(), epoch);
                user
            }
        };
        if user.id.0 != claims.sub {
            return Err(AuthError::InvalidToken);
        }
        Ok(Principal { user, session })
    }

    pub async fn logout(&self, p: &Principal) -> Result<(), AuthError> {
        store::auth_sessions::revoke(&self.pool, p.user.id, p.session).await?;
        self.revocations.announce(Revoked::Session(p.session));
        Ok(())
    }

    pub async fn logout_all(&self, user: UserId) -> Result<u64, AuthError> {
        let n = store::auth_sessions::revoke_all(&self.pool, user, None).await?;
        self.revocations
            .announce(Revoked::User { user, except: None });
        Ok(n)
    }

    /// Disables or re-enables a user (admins). Disabling ends every session of the
    /// user, live connections included.
    pub async fn set_disabled(&self, user: UserId, disabled: bool) -> Result<User, AuthError> {
        let u = store::users::update(
            &self.pool,
            user,
            UserPatch {
                disabled: Some(disabled),
                ..Default::default()
            },
        )
        .await?;
        self.revocations.cache().invalidate();
        if disabled {
            store::auth_sessions::revoke_all(&self.pool, user, None).await?;
            self.revocations
                .announce(Revoked::User { user, except: None });
            tracing::info!(user_id = %user, "user disabled");
        }
        Ok(u)
    }

    pub async fn sessions(&self, user: UserId) -> Result<Vec<AuthSession>, AuthError> {
        Ok(store::auth_sessions::list_active(&self.pool, user).await?)
    }

    /// Revokes one of the user's own sessions.
    pub async fn revoke(&self, user: UserId, session: AuthSessionId) -> Result<(), AuthError> {
        if store::auth_sessions::revoke(&self.pool, user, session).await? {
            self.revocations.announce(Revoked::Session(session));
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }

    /// Updates a user's own profile; a new password needs the current one (wrong ones
    /// are rate-limited like logins) and ends every other session of the user, live
    /// connections included; `current` (the session making the change) stays.
    pub async fn update_profile(
        &self,
        user: UserId,
        current: Option<AuthSessionId>,
        display_name: Option<Option<&str>>,
        new_password: Option<(&str, &str)>,
    ) -> Result<User, AuthError> {
        if let Some(Some(name)) = display_name {
            rules::check_display_name(name).map_err(AuthError::Invalid)?;
        }
        let mut password_hash = None;
        if let Some((current, new)) = new_password {
            rules::check_password(new).map_err(AuthError::Invalid)?;
            let me = store::users::get(&self.pool, user).await?;
            let (_, hash) = store::users::credentials(&self.pool, &me.email)
                .await?
                .ok_or(AuthError::NotFound)?;
            // Charged before verifying: N concurrent guesses cost N attempts.
            self.by_account.take(&format!("password-change:{user}"))?;
            if !verify_password(current.to_owned(), hash).await? {
                tracing::info!(user_id = %user, "password change refused: wrong current password");
                return Err(AuthError::BadCredentials);
            }
            password_hash = Some(hash_password(new.to_owned()).await?);
        }
        let user = store::users::update(
            &self.pool,
            user,
            UserPatch {
                display_name,
                password_hash: password_hash.as_deref(),
                ..Default::default()
            },
        )
        .await?;
        // The cached principals carry the old profile.
        self.revocations.cache().invalidate();
        if password_hash.is_some() {
            let revoked = store::auth_sessions::revoke_all(&self.pool, user.id, current).await?;
            self.revocations.announce(Revoked::User {
                user: user.id,
                except: current,
            });
            tracing::info!(user_id = %user.id, revoked, "password changed; other sessions ended");
        }
        Ok(user)
    }
}

/// How long a hash waits for a slot by default ([`AuthConfig::hash_queue_timeout`]).
pub const DEFAULT_HASH_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// The process-wide hashing slots: one per core. Argon2id holds 19 MiB while it runs,
/// so this bounds both the CPU and the memory that password hashing takes, however
/// many requests ask at once.
fn hash_slots() -> &'static Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(tokio::sync::Semaphore::new(cores))
    })
}

/// Runs `work` on the blocking pool once a hashing slot is free, waiting at most
/// `wait` for it ([`AuthError::Busy`] after that). The slot is held by the blocking
/// task itself, so a caller that goes away does not free it before the work ends.
async fn with_hash_slot<T: Send + 'static>(
    wait: Duration,
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    let permit = tokio::time::timeout(wait, hash_slots().clone().acquire_owned())
        .await
        .map_err(|_| AuthError::Busy {
            retry_after: wait.clamp(Duration::from_secs(1), Duration::from_secs(30)),
        })?
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| AuthError::Hash(e.to_string()))?
}

/// Hashes with argon2id (default parameters) off the async threads, in a hashing slot.
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    hash_password_within(password, DEFAULT_HASH_QUEUE_TIMEOUT).await
}

async fn hash_password_within(password: String, wait: Duration) -> Result<String, AuthError> {
    with_hash_slot(wait, move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hash(e.to_string()))
    })
    .await
}

async fn verify_password(password: String, hash: String) -> Result<bool, AuthError> {
    verify_password_within(password, hash, DEFAULT_HASH_QUEUE_TIMEOUT).await
}

async fn verify_password_within(
    password: String,
    hash: String,
    wait: Duration,
) -> Result<bool, AuthError> {
    with_hash_slot(wait, move || {
        // A stored hash that is no PHC string (the content owner's `!`) matches no
        // password: the same work is spent on the dummy hash, and the answer is no.
        let (parsed, usable) = match PasswordHash::new(&hash) {
            Ok(parsed) => (parsed, true),
            Err(_) => (
                PasswordHash::new(dummy_hash()).map_err(|e| AuthError::Hash(e.to_string()))?,
                false,
            ),
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(usable && matches)
    })
    .await
}

/// A valid argon2id hash of a random password, to burn equal time on unknown emails.
fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9qWbmFPRyC+4EY7bk8QzmCmLYt+bSg5vMcXNOEX9yE0"
}

/// A token bucket per key: `burst` attempts, one more every `refill`.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    burst: f64,
    refill: Duration,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl RateLimiter {
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            refill: refill.max(Duration::from_millis(1)),
            buckets: Arc::default(),
        }
    }

    fn level(&self, now: Instant, entry: (f64, Instant)) -> f64 {
        let gained = now.duration_since(entry.1).as_secs_f64() / self.refill.as_secs_f64();
        (entry.0 + gained).min(self.burst)
    }

    fn wait_for_one(&self, level: f64) -> Duration {
        self.refill.mul_f64((1.0 - level).max(0.0))
    }

    /// Fails when no attempt is left, without spending one.
    pub fn check(&self, key: &str) -> Result<(), AuthError> {
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get(key) {
            Some(&entry) => {
                let level = self.level(now, entry);
                if level < 1.0 {
                    return Err(AuthError::RateLimited {
                        retry_after: self.wait_for_one(level),
                    });
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Gives back one attempt spent by [`Self::take`] (never above the burst).
    pub fn refund(&self, key: &str) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = buckets.get_mut(key) {
            let level = self.level(now, *entry);
            *entry = ((level + 1.0).min(self.burst), now);
        }
    }

    /// Spends one attempt, or fails with the time until one is available.
    pub fn take(&self, key: &str) -> Result<(), AuthError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget full buckets so the map cannot grow without bound.
            buckets.retain(|_, e| self.level(now, *e) < self.burst);
        }
        let entry = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let level = self.level(now, *entry);
        if level < 1.0 {
            return Err(AuthError::RateLimited {
                retry_after: self.wait_for_one(level),
            });
        }
        *entry = (level - 1.0, now);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses_with_retry_after() {
        let rl = RateLimiter::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            rl.take("k").unwrap();
        }
        match rl.take("k") {
            Err(AuthError::RateLimited { retry_after }) => {
                assert!(
                    retry_after > Duration::from_secs(9) && retry_after <= Duration::from_secs(10)
                );
            }
            other => panic!("expected rate limit, got {other:?}"),
        }
        assert!(rl.check("k").is_err());
        rl.take("other").unwrap();
    }

    #[test]
    fn refunds_give_back_what_was_taken_and_no_more() {
        let rl = RateLimiter::new(2, Duration::from_secs(600));
        rl.take("k").unwrap();
        rl.take("k").unwrap();
        assert!(rl.take("k").is_err());
        rl.refund("k");
        rl.take("k").unwrap();
        assert!(rl.take("k").is_err());
        rl.refund("k");
        rl.refund("k");
        rl.refund("k");
        rl.take("k").unwrap();
        rl.take("k").unwrap();
        assert!(rl.take("k").is_err(), "capped at the burst");
    }

    #[test]
    fn bucket_refills() {
        let rl = RateLimiter::new(1, Duration::from_millis(20));
        rl.take("k").unwrap();
        assert!(rl.take("k").is_err());
        std::thread::sleep(Duration::from_millis(30));
        rl.take("k").unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_waits_for_a_slot_and_gives_up_busy() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Hold every slot: a hash waits, then fails busy at its queue timeout.
        let held = hash_slots()
            .clone()
            .acquire_many_owned(u32::try_from(cores).unwrap())
            .await
            .unwrap();
        let started = Instant::now();
        match hash_password_within("pw".into(), Duration::from_millis(200)).await {
            Err(AuthError::Busy { retry_after }) => assert!(retry_after >= Duration::from_secs(1)),
            other => panic!("expected busy, got {other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(200));
        // A waiting hash runs as soon as a slot frees.
        let waiting = tokio::spawn(hash_password_within("pw".into(), Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(held);
        assert!(waiting.await.unwrap().unwrap().starts_with("$argon2id$"));
        // Never more hashes at once than slots.
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4 * cores)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                tokio::spawn(with_hash_slot(Duration::from_secs(30), move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, SeqCst);
                    Ok(())
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&peak),
            "{peak} at once with {cores} slots"
        );
    }

    #[tokio::test]
    async fn argon2id_round_trip() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".into(), h.clone())
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), h).await.unwrap());
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }
}
