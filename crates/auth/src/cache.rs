//! Sessions checked recently, so that not every request asks PostgreSQL.
//!
//! [`AuthService::authenticate`](crate::AuthService::authenticate) remembers the user
//! behind a live session for at most [`SessionCache::TTL`]. Whatever ends or changes
//! sessions in this process or on a peer ([`Revocations`](crate::Revocations), a
//! profile or role change, disabling a user) moves the cache's *epoch*, and an entry
//! is only used while the epoch it was read under is still the current one: a
//! revocation takes effect on the very next request, as it did without the cache. A
//! change made where no announcement reaches this process (another node without Redis,
//! the command line) takes effect within the TTL.
//!
//! The epoch is read *before* the database is asked, so a check that raced with a
//! revocation is stored under the old epoch and never used.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::user::{AuthSessionId, User};

/// Recently checked sessions. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct SessionCache {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    epoch: AtomicU64,
    entries: Mutex<HashMap<AuthSessionId, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    user: User,
    epoch: u64,
    checked: Instant,
}

impl SessionCache {
    /// How long a checked session is trusted without asking the database again.
    pub const TTL: Duration = Duration::from_secs(2);
    /// At most this many sessions are remembered (about 300 bytes each); when full,
    /// the stale ones are dropped first, then new ones are not remembered.
    pub const CAPACITY: usize = 65_536;

    /// The epoch to read the database under (see the module docs).
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// Forgets every entry: something that ends or changes sessions happened.
    pub fn invalidate(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The user of `session` if it was checked within the TTL and nothing was
    /// invalidated since.
    pub fn get(&self, session: AuthSessionId) -> Option<User> {
        let epoch = self.epoch();
        let entries = self.inner.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(&session)?;
        (e.epoch == epoch && e.checked.elapsed() < Self::TTL).then(|| e.user.clone())
    }

    /// Remembers that `session` belonged to live `user` when checked under `epoch`.
    pub fn put(&self, session: AuthSessionId, user: User, epoch: u64) {
        if epoch != self.epoch() {
            return;
        }
        let mut entries = self.inner.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::CAPACITY && !entries.contains_key(&session) {
            let current = self.epoch();
            entries.retain(|_, e| e.epoch == current && e.checked.elapsed() < Self::TTL);
            if entries.len() >= Self::CAPACITY {
                return;
            }
        }
        entries.insert(
            session,
            Entry {
                user,
                epoch,
                checked: Instant::now(),
            },
        );
    }

    /// Sessions remembered (stale ones included until they are replaced or swept).
    pub fn len(&self) -> usize {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use domain::user::{Role, UserId};
    use uuid::Uuid;

    use super::*;

    fn user() -> User {
        User {
            id: UserId(Uuid::new_v4()),
            email: "a@example.com".into(),
            display_name: None,
            role: Role::User,
            disabled: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_checked_session_is_remembered_until_invalidated() {
        let cache = SessionCache::default();
        let s = AuthSessionId(Uuid::new_v4());
        let u = user();
        assert!(cache.get(s).is_none());
        cache.put(s, u.clone(), cache.epoch());
        assert_eq!(cache.get(s), Some(u));
        cache.invalidate();
        assert!(cache.get(s).is_none(), "an invalidation hides every entry");
    }

    #[test]
    fn a_check_that_raced_with_an_invalidation_is_not_remembered() {
        let cache = SessionCache::default();
        let s = AuthSessionId(Uuid::new_v4());
        let before = cache.epoch();
        cache.invalidate();
        cache.put(s, user(), before);
        assert!(cache.get(s).is_none());
        assert!(cache.is_empty());
    }
}
