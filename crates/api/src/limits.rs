//! Per-user caps on long-lived streams (WebSockets, SSE).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::user::UserId;

use crate::error::ApiError;

/// At most `max` slots held per user at once; a slot is held until dropped.
#[derive(Clone, Debug)]
pub struct UserSlots {
    what: &'static str,
    max: usize,
    held: Arc<Mutex<HashMap<UserId, usize>>>,
}

/// One held slot of a [`UserSlots`].
#[derive(Debug)]
pub struct UserSlot {
    held: Arc<Mutex<HashMap<UserId, usize>>>,
    user: UserId,
}

impl UserSlots {
    /// `what` names the slots in the refusal ("open event streams").
    pub fn new(what: &'static str, max: usize) -> Self {
        Self {
            what,
            max: max.max(1),
            held: Arc::default(),
        }
    }

    /// A slot for `user`, or 429 when they hold `max` already.
    pub fn take(&self, user: UserId) -> Result<UserSlot, ApiError> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(user).or_insert(0);
        if *n >= self.max {
            return Err(ApiError::RateLimited {
                message: format!(
                    "too many {} (at most {}); close one first",
                    self.what, self.max
                ),
                retry_after: Duration::from_secs(5),
            });
        }
        *n += 1;
        Ok(UserSlot {
            held: self.held.clone(),
            user,
        })
    }

    /// Slots `user` holds now.
    pub fn held(&self, user: UserId) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&user).copied().unwrap_or(0)
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_per_user_until_dropped() {
        let slots = UserSlots::new("streams", 2);
        let a = UserId(uuid::Uuid::new_v4());
        let b = UserId(uuid::Uuid::new_v4());
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        let refused = slots.take(a).unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        let _b1 = slots.take(b).unwrap();
        drop(a1);
        assert_eq!(slots.held(a), 1);
        let _a3 = slots.take(a).unwrap();
        assert!(slots.take(a).is_err());
    }
}
