//! Creating, joining and reloading sessions, under the per-user cap of live sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::narrative::{Content, SessionSave};
use protocol::v2::GameEvent;
use uuid::Uuid;

use crate::{Delivered, GameError, GameHandle, Inbound, LiveSession};

/// A session counted against its user's cap while it is being created or loaded.
struct Reservation {
    reserved: Arc<Mutex<HashMap<Uuid, usize>>>,
    user: Uuid,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = r.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                r.remove(&self.user);
            }
        }
    }
}

impl GameHandle {
    /// Counts one more live session for `user` until the reservation is dropped (once
    /// the session is in memory, where it counts itself), or refuses it when the user
    /// is at the cap. Live: in memory and not ended.
    fn reserve_session(&self, user: Uuid) -> Result<Reservation, GameError> {
        let max = self.shared.cfg.max_live_sessions_per_user.max(1);
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let pending = reserved.get(&user).copied().unwrap_or(0);
        // The map's lock is let go before a session's own lock is taken.
        let mine: Vec<Arc<LiveSession>> = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| s.owner == user)
            .cloned()
            .collect();
        let live = mine.iter().filter(|s| !s.ended()).count();
        if live + pending >= max {
            return Err(GameError::SessionLimit { max });
        }
        *reserved.entry(user).or_insert(0) += 1;
        Ok(Reservation {
            reserved: Arc::clone(&self.reserved),
            user,
        })
    }

    /// Creates a session for `user` at `scene` (the world's start scene when `None`).
    pub async fn create_session(
        &self,
        user: Uuid,
        scene: Option<String>,
        world: Option<String>,
    ) -> Result<Arc<LiveSession>, GameError> {
        self.check_accepting()?;
        let (world, scene) = world_and_scene(&self.content.get(), world, scene)?;
        let _reserved = self.reserve_session(user)?;
        if let Some(s) = scene.as_deref() {
            check_start_scene(&self.content.get(), s)?;
        }
        let id = Uuid::now_v7();
        let seed: u64 = rand::random();
        let row = store::game::create(&self.pool, id, user, &world, scene.as_deref(), seed as i64)
            .await?;
        let live = Arc::new(LiveSession::new(
            id,
            user,
            row.scene.clone(),
            row.created_at.timestamp_millis(),
            0,
            false,
            VecDeque::new(),
            self.shared.cfg.resend_window,
        ));
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&live));
        self.send(Inbound::Start {
            session: id,
            scene,
            seed,
            next_seq: 0,
        })?;
        Ok(live)
    }

    /// One of `user`'s sessions, loading (and resuming) it when not in memory.
    /// Another user's session is [`GameError::NotFound`], like a missing one.
    pub async fn join(&self, user: Uuid, id: Uuid) -> Result<Arc<LiveSession>, GameError> {
        if let Some(s) = self.loaded(user, &id).await? {
            return Ok(s);
        }
        let _guard = self.load_lock.lock().await;
        if let Some(s) = self.loaded(user, &id).await? {
            return Ok(s);
        }
        let Some(row) = store::game::get(&self.pool, id).await? else {
            return Err(GameError::NotFound);
        };
        if row.user_id != user {
            return Err(GameError::NotFound);
        }
        let next_seq = u64::try_from(row.next_seq).unwrap_or(0);
        let window = self.shared.cfg.resend_window;
        let events = self.retained_events(id, row.next_seq).await?;
        let ended = row.ended();
        if !ended {
            self.check_accepting()?;
        }
        let _reserved = if ended {
            None
        } else {
            Some(self.reserve_session(user)?)
        };
        let live = Arc::new(LiveSession::new(
            id,
            user,
            row.scene.clone(),
            row.created_at.timestamp_millis(),
            next_seq,
            ended,
            events,
            window,
        ));
        let reload = if ended {
            None
        } else {
            Some(reload_message(&row, next_seq)?)
        };
        // In the registry before the tick hears of it: the tick may resume it, commit and
        // publish its first events at once (a command step), and what is published for
        // a session not in the registry reaches no one.
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&live));
        if let Some(message) = reload {
            if let Err(e) = self.send(message) {
                self.shared
                    .sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                return Err(e);
            }
            tracing::debug!(session = %id, next_seq, "session reloaded from the database");
        }
        Ok(live)
    }

    /// The retained events of session `id` (the last resend window before `next_seq`),
    /// checked once here: what is retained decodes.
    async fn retained_events(
        &self,
        id: Uuid,
        next_seq: i64,
    ) -> Result<VecDeque<Arc<Delivered>>, GameError> {
        let window = self.shared.cfg.resend_window as i64;
        let from = next_seq.saturating_sub(window).max(0);
        let rows = store::game::events_from(&self.pool, id, from, window).await?;
        let mut events = VecDeque::with_capacity(rows.len());
        for r in rows {
            postcard::from_bytes::<GameEvent>(&r.event)
                .map_err(|e| GameError::Corrupt(format!("event {}: {e}", r.seq)))?;
            events.push_back(Arc::new(Delivered {
                seq: u64::try_from(r.seq).unwrap_or(0),
                at_ms: r.at_ms,
                encoded: r.event,
            }));
        }
        Ok(events)
    }

    /// The session if it is in memory, waiting out an eviction in progress (after
    /// which it is not in memory any more).
    async fn loaded(&self, user: Uuid, id: &Uuid) -> Result<Option<Arc<LiveSession>>, GameError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.shared.evicted.notified();
            let Some(s) = self.shared.session(id) else {
                return Ok(None);
            };
            if s.owner != user {
                return Err(GameError::NotFound);
            }
            if !s.is_evicting() {
                s.touch();
                return Ok(Some(s));
            }
            // Bounded: an unload is one tick and one commit away; poll as a backstop.
            let wait = Duration::from_millis(100);
            let _ = tokio::time::timeout(wait, notified).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(GameError::Busy);
            }
        }
    }
}

/// Whether a session may start at `scene`, by the simulation's one rule
/// (`sim::check_scene_start`: it exists, is not locked, takes no parameters), checked
/// here too so a refused start is answered before a session row is written.
/// The world a new session lives in and the scene it starts at: `world` picks the world
/// whose start scene is used (an unknown world is refused); a named scene must belong to
/// that world; with neither, the default world's start scene (left to the simulation).
fn world_and_scene(
    content: &Content,
    world: Option<String>,
    scene: Option<String>,
) -> Result<(String, Option<String>), GameError> {
    use domain::narrative::world::{DEFAULT_WORLD, scene_world};
    let Some(world) = world else {
        let world = scene
            .as_deref()
            .and_then(|s| content.scene(s))
            .map_or(DEFAULT_WORLD, scene_world);
        return Ok((world.to_owned(), scene));
    };
    if !content.world.has_world(&world) {
        let known = content.world.world_ids().join(", ");
        return Err(GameError::Invalid(format!(
            "unknown world '{world}' (served: {known})"
        )));
    }
    let scene = match scene {
        Some(s) => {
            if let Some(found) = content.scene(&s)
                && scene_world(found) != world
            {
                return Err(GameError::Invalid(format!(
                    "scene '{s}' belongs to world '{}', not '{world}'",
                    scene_world(found)
                )));
            }
            s
        }
        None => content
            .world
            .world_start_scene(&world)
            .map(str::to_owned)
            .ok_or_else(|| GameError::Invalid(format!("world '{world}' has no start scene")))?,
    };
    Ok((world, Some(scene)))
}

fn check_start_scene(content: &Content, scene: &str) -> Result<(), GameError> {
    sim::check_scene_start(content, scene)
        .map(|_| ())
        .map_err(|reason| GameError::Invalid(reason.to_string()))
}

/// What brings a stored, not ended session back into the tick: its last save, or a
/// fresh start from its seed when it never committed a tick.
fn reload_message(row: &store::game::SessionRow, next_seq: u64) -> Result<Inbound, GameError> {
    Ok(match &row.save {
        Some(json) => {
            let save: SessionSave =
                serde_json::from_str(json).map_err(|e| GameError::Corrupt(format!("save: {e}")))?;
            Inbound::Resume {
                session: row.id,
                save: Box::new(save),
                next_seq,
            }
        }
        None => Inbound::Start {
            session: row.id,
            scene: row.scene.clone(),
            seed: row.seed as u64,
            next_seq,
        },
    })
}
