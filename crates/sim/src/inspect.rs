//! What the tick inspector shows of the simulation, without depending on it: the server
//! registers the component types through [`Inspect`] (implemented over its inspector)
//! and answers `session.list`, `session.inspect` and `world.inspect` with the JSON built
//! here.

use bevy_ecs::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use crate::components::{
    ActiveMiniGame, CallStack, Cooldowns, PendingChoices, Phase, Position, Progression, Session,
    SimWorld, Variables, VisitCounts, WorldClock,
};
use crate::protocol::SessionId;
use crate::resources::{SessionIndex, SimContent};

/// Registers a serialisable component type with an inspector (which names it by its type
/// path, e.g. `sim::components::Position`).
pub trait Inspect {
    /// Makes components of type `T` visible.
    fn component<T: Component + Serialize>(&mut self);
}

/// Registers every inspectable component of the simulation.
pub fn register(r: &mut impl Inspect) {
    r.component::<Session>();
    r.component::<Position>();
    r.component::<CallStack>();
    r.component::<Variables>();
    r.component::<VisitCounts>();
    r.component::<PendingChoices>();
    r.component::<Progression>();
    r.component::<Cooldowns>();
    r.component::<ActiveMiniGame>();
    r.component::<Phase>();
    r.component::<WorldClock>();
    r.component::<SimWorld>();
}

/// Why a session cannot be inspected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// No such session in memory.
    #[error("no loaded session {0}")]
    NotLoaded(uuid::Uuid),
    /// Its entity is gone (it ended this tick).
    #[error("the session's entity is gone")]
    EntityGone,
    /// A component did not serialise.
    #[error("{0}")]
    Json(String),
}

fn to_json<T: Serialize>(v: &T) -> Result<Value, InspectError> {
    serde_json::to_value(v).map_err(|e| InspectError::Json(e.to_string()))
}

/// `session.list`: the loaded sessions (at most `limit`, by id) with their entity, scene,
/// node and phase, and their total.
pub fn session_list(world: &mut World, limit: usize) -> Value {
    let mut q = world.query::<(Entity, &Session, &Position, &Phase)>();
    let mut rows: Vec<Value> = q
        .iter(world)
        .map(|(e, s, p, ph)| {
            json!({
                "session": s.id, "entity": e.to_bits(), "scene": p.scene, "node": p.node, "phase": to_json(ph).ok(),
            })
        })
        .collect();
    rows.sort_by(|a, b| a["session"].as_str().cmp(&b["session"].as_str()));
    let total = rows.len();
    rows.truncate(limit);
    json!({ "total": total, "sessions": rows })
}

/// `session.inspect`: one session's narrative state.
pub fn session(world: &World, id: SessionId) -> Result<Value, InspectError> {
    let entity = world
        .resource::<SessionIndex>()
        .0
        .get(&id)
        .copied()
        .ok_or(InspectError::NotLoaded(id.0))?;
    let e = world
        .get_entity(entity)
        .map_err(|_| InspectError::EntityGone)?;
    fn part<T: Component + Serialize>(e: &EntityRef<'_>) -> Value {
        e.get::<T>()
            .and_then(|c| to_json(c).ok())
            .unwrap_or(Value::Null)
    }
    Ok(json!({
        "session": id,
        "entity": entity.to_bits(),
        "position": part::<Position>(&e),
        "phase": part::<Phase>(&e),
        "call_stack": part::<CallStack>(&e),
        "variables": part::<Variables>(&e),
        "pending_choices": part::<PendingChoices>(&e),
        "visits": part::<VisitCounts>(&e),
        "progression": part::<Progression>(&e),
        "cooldowns": part::<Cooldowns>(&e),
        "mini_game": part::<ActiveMiniGame>(&e),
        "next_seq": e.get::<Session>().map(|s| s.next_seq),
    }))
}

/// `world.inspect`: the default world's clock, every served world (with its clock and
/// session count), the content's version and scenes, the session count.
pub fn world(world: &mut World) -> Result<Value, InspectError> {
    let clock = crate::sessions::clock(world)
        .map(|c| to_json(&c))
        .transpose()?;
    let worlds = to_json(&crate::worlds::list(world))?;
    let content = world.resource::<SimContent>().0.clone();
    Ok(json!({
        "clock": clock,
        "worlds": worlds,
        "content_version": content.version,
        "scenes": content.scenes.keys().collect::<Vec<_>>(),
        "sessions": world.resource::<SessionIndex>().0.len(),
    }))
}
