//! Revocation that reaches live connections.
//!
//! A request checks its session row (or the [`SessionCache`], which every
//! announcement here invalidates), but a WebSocket, an SSE stream or a
//! QUIC connection authenticates once and then lives on. Every change that ends
//! sessions (logout, logout-all, revoking one session, a password change, disabling
//! a user) is announced on [`Revocations`]; each live connection holds a
//! [`RevocationWatch`] for its own session and closes as soon as it fires. A watch
//! also re-reads its session row now and then ([`RevocationWatch::RECHECK`]), which
//! covers revocations made by another process (another node, the CLI) and
//! announcements it missed because it fell behind.
//!
//! With several nodes, the server relays announcements over Redis
//! ([`Revocations::set_relay`] for what this node announces,
//! [`Revocations::announce_from_peer`] for what others do), so a logout on one node
//! closes the user's connections on every node at once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use domain::user::{AuthSessionId, UserId};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc};

use crate::cache::SessionCache;

/// What ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revoked {
    /// One session.
    Session(AuthSessionId),
    /// Every session of a user, except one (the session that changed the password).
    User {
        user: UserId,
        except: Option<AuthSessionId>,
    },
}

impl Revoked {
    /// Whether this ends `session` of `user`.
    pub fn ends(&self, user: UserId, session: AuthSessionId) -> bool {
        match *self {
            Revoked::Session(s) => s == session,
            Revoked::User { user: u, except } => u == user && except != Some(session),
        }
    }
}

/// The announcements of ended sessions in this process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Revocations {
    tx: broadcast::Sender<Revoked>,
    relay: Arc<OnceLock<mpsc::Sender<Revoked>>>,
    /// Checked sessions remembered by this process, forgotten on every announcement.
    cache: SessionCache,
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocations {
    pub fn new() -> Self {
        // A burst larger than this makes slow watchers re-read their row: nothing is lost.
        let (tx, _) = broadcast::channel(1024);
        Revocations {
            tx,
            relay: Arc::default(),
            cache: SessionCache::default(),
        }
    }

    /// Announces `r` to every live watch of this process, and to the relay (the
    /// other nodes) when one is set.
    pub fn announce(&self, r: Revoked) {
        self.cache.invalidate();
        let _ = self.tx.send(r);
        if let Some(relay) = self.relay.get()
            && relay.try_send(r).is_err()
        {
            // The other nodes' watches re-read their rows within RECHECK.
            tracing::warn!("revocation relay full or closed; other nodes catch up on re-check");
        }
    }

    /// Announces what another node announced, to this process's watches only.
    pub fn announce_from_peer(&self, r: Revoked) {
        self.cache.invalidate();
        let _ = self.tx.send(r);
    }

    /// The checked sessions this process remembers; every announcement (local or
    /// from a peer) invalidates them.
    pub fn cache(&self) -> &SessionCache {
        &self.cache
    }

    /// Sends every later [`Self::announce`] to `relay` too (once; false if a relay
    /// was already set).
    pub fn set_relay(&self, relay: mpsc::Sender<Revoked>) -> bool {
        self.relay.set(relay).is_ok()
    }

    /// A watch of `session` of `user`, whose row is re-read from `pool`.
    pub fn watch(&self, pool: PgPool, user: UserId, session: AuthSessionId) -> RevocationWatch {
        RevocationWatch {
            rx: self.tx.subscribe(),
            pool,
            user,
            session,
        }
    }
}

/// Resolves when one session ends. See the module docs.
#[derive(Debug)]
pub struct RevocationWatch {
    rx: broadcast::Receiver<Revoked>,
    pool: PgPool,
    user: UserId,
    session: AuthSessionId,
}

impl RevocationWatch {
    /// How often a watch re-reads its session row (for revocations announced
    /// elsewhere).
    pub const RECHECK: Duration = Duration::from_secs(30);

    /// Whether the session row still says live (a database error counts as live: the
    /// next check decides).
    async fn still_live(&self) -> bool {
        match store::auth_sessions::authenticate(&self.pool, self.session).await {
            Ok(Some(u)) => u.id == self.user,
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "session re-check failed");
                true
            }
        }
    }

    /// Waits until the session is revoked, expired or its user disabled.
    pub async fn ended(&mut self) {
        let mut tick = tokio::time::interval(Self::RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(r) if r.ends(self.user, self.session) => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !self.still_live().await {
                            return;
                        }
                    }
                    // The service is gone (shutdown): rely on the re-check alone.
                    Err(broadcast::error::RecvError::Closed) => loop {
                        tick.tick().await;
                        if !self.still_live().await {
                            return;
                        }
                    },
                },
                _ = tick.tick() => {
                    if !self.still_live().await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn revocations_cross_nodes_as_json() {
        let s = AuthSessionId(Uuid::new_v4());
        for r in [
            Revoked::Session(s),
            Revoked::User {
                user: UserId(Uuid::new_v4()),
                except: Some(s),
            },
        ] {
            let json = serde_json::to_string(&r).expect("serialises");
            assert_eq!(serde_json::from_str::<Revoked>(&json).expect("parses"), r);
        }
    }

    #[test]
    fn a_revocation_ends_exactly_the_sessions_it_names() {
        let (u1, u2) = (UserId(Uuid::new_v4()), UserId(Uuid::new_v4()));
        let (s1, s2) = (AuthSessionId(Uuid::new_v4()), AuthSessionId(Uuid::new_v4()));
        assert!(Revoked::Session(s1).ends(u1, s1));
        assert!(!Revoked::Session(s1).ends(u1, s2));
        let all = Revoked::User {
            user: u1,
            except: None,
        };
        assert!(all.ends(u1, s1) && all.ends(u1, s2) && !all.ends(u2, s1));
        let others = Revoked::User {
            user: u1,
            except: Some(s1),
        };
        assert!(!others.ends(u1, s1) && others.ends(u1, s2));
    }
}
