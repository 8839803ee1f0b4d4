//! The inspector's `worlds.*` methods: list the served worlds with their clocks, and
//! pause, resume, step, advance, rescale or switch turn-based mode one world. They run
//! on the tick thread between ticks (`sim::worlds::control`); the admin REST routes
//! (`api::routes::worlds`) call them through the inspector.

use bevy_app::App;
use bevy_ecs::prelude::World;
use inspector::{InspectAppExt, RpcError, codes};
use serde_json::{Value, json};

/// The methods, in `rpc.discover` order.
pub const METHODS: &[&str] = &[
    "worlds.list",
    "worlds.pause",
    "worlds.resume",
    "worlds.step",
    "worlds.advance",
    "worlds.set_scale",
    "worlds.set_turn_based",
];

/// Registers the `worlds.*` methods with the inspector.
pub fn register(app: &mut App) {
    app.inspect_method("worlds.list", |w, _| list(w))
        .inspect_method("worlds.pause", |w, p| {
            control(w, &p, |_| Ok(sim::WorldControl::Pause))
        })
        .inspect_method("worlds.resume", |w, p| {
            control(w, &p, |_| Ok(sim::WorldControl::Resume))
        })
        .inspect_method("worlds.step", |w, p| {
            control(w, &p, |_| Ok(sim::WorldControl::Step))
        })
        .inspect_method("worlds.advance", |w, p| {
            control(w, &p, |p| {
                let ms = p
                    .get("ms")
                    .and_then(Value::as_u64)
                    .filter(|ms| *ms <= MAX_ADVANCE_MS)
                    .ok_or_else(|| {
                        RpcError::invalid_params(format!(
                            "expected {{\"world\": \"<id>\", \"ms\": 0..={MAX_ADVANCE_MS}}}"
                        ))
                    })?;
                Ok(sim::WorldControl::Advance { ms })
            })
        })
        .inspect_method("worlds.set_scale", |w, p| {
            control(w, &p, |p| {
                let scale = p.get("time_scale").and_then(Value::as_f64).ok_or_else(|| {
                    RpcError::invalid_params("expected {\"world\": \"<id>\", \"time_scale\": N}")
                })?;
                sim::worlds::set_scale(scale).map_err(RpcError::invalid_params)
            })
        })
        .inspect_method("worlds.set_turn_based", |w, p| {
            control(w, &p, |p| {
                let on = p.get("on").and_then(Value::as_bool).ok_or_else(|| {
                    RpcError::invalid_params("expected {\"world\": \"<id>\", \"on\": bool}")
                })?;
                Ok(sim::WorldControl::SetTurnBased { on })
            })
        });
}

/// The largest advance one call makes (a day of world time).
pub const MAX_ADVANCE_MS: u64 = 86_400_000;

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(codes::INTERNAL_ERROR, e.to_string()))
}

/// `worlds.list`: `{"worlds": [{id, title, clock, sessions}]}`, the default world first.
fn list(world: &mut World) -> Result<Value, RpcError> {
    Ok(json!({ "worlds": to_json(&sim::worlds::list(world))? }))
}

/// A control of the world named by `params.world`; answers the world after it.
fn control(
    world: &mut World,
    params: &Value,
    make: impl FnOnce(&Value) -> Result<sim::WorldControl, RpcError>,
) -> Result<Value, RpcError> {
    let id = params
        .get("world")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("expected {\"world\": \"<id>\", ...}"))?;
    let c = make(params)?;
    match sim::worlds::control(world, id, c) {
        Ok(view) => to_json(&view),
        Err(e @ sim::WorldError::UnknownWorld(_)) => {
            Err(RpcError::new(codes::ENTITY_NOT_FOUND, e.to_string()))
        }
        Err(e @ sim::WorldError::BadScale(_)) => Err(RpcError::invalid_params(e)),
    }
}
