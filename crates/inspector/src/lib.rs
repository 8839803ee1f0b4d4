//! The admin tick inspector: JSON-RPC methods answered on the tick thread, compatible
//! with the read methods of the Bevy Remote Protocol (BRP).
//!
//! The HTTP side holds an [`Inspector`] and `call`s a method. The request travels over a
//! bounded channel to the tick thread, where [`InspectorPlugin`]'s system answers it with
//! `&mut World` in the `tick::TickService` schedule. That schedule runs after every tick
//! and while the loop is paused, outside every other schedule, so the tick never waits on
//! the network and a paused world can still be inspected.
//!
//! Components and resources are shown by their full type path
//! (`std::any::type_name`), serialised with serde. A type is visible once registered with
//! [`InspectAppExt::inspect_component`] / [`InspectAppExt::inspect_resource`]; short names
//! (the last path segment) are accepted too. Extra methods (`session.inspect`, ...) are
//! added with [`InspectAppExt::inspect_method`].
//!
//! BRP methods served: `world.query`, `world.get_components`, `world.list_components`,
//! `world.list_resources`, `world.get_resources`, `schedule.list`, `rpc.discover`. The
//! `+watch` variants are built on top of these by the HTTP layer. Entities are their
//! `Entity::to_bits()` number, as in BRP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bevy_app::{App, Plugin};
use bevy_ecs::component::ComponentId;
use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// JSON-RPC and BRP error codes.
pub mod codes {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// BRP: the entity does not exist.
    pub const ENTITY_NOT_FOUND: i32 = -23401;
    /// BRP: a component (or resource) type is unknown or cannot be shown.
    pub const COMPONENT_ERROR: i32 = -23402;
    /// BRP: the entity does not have the component.
    pub const COMPONENT_NOT_PRESENT: i32 = -23403;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    pub code: i32,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn invalid_params(e: impl std::fmt::Display) -> Self {
        Self::new(codes::INVALID_PARAMS, format!("invalid params: {e}"))
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<Value, RpcError>>;

struct Job {
    method: String,
    params: Value,
    reply: Reply,
}

/// The async side: sends methods to the tick thread. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Inspector {
    tx: mpsc::SyncSender<Job>,
    timeout: Duration,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Makes a connected [`Inspector`] and [`InspectorPlugin`]; at most `capacity` requests
/// wait for the tick at once (more are refused, not queued).
pub fn channel(capacity: usize) -> (Inspector, InspectorPlugin) {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    (
        Inspector {
            tx,
            timeout: Duration::from_secs(5),
        },
        InspectorPlugin {
            rx: Mutex::new(Some(rx)),
        },
    )
}

impl Inspector {
    /// Calls `method` on the tick thread.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            method: method.to_owned(),
            params,
            reply,
        };
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(RpcError::new(
                    codes::INTERNAL_ERROR,
                    "the inspector is busy; retry",
                ));
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(RpcError::new(
                    codes::INTERNAL_ERROR,
                    "the tick thread is not running",
                ));
            }
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(RpcError::new(
                codes::INTERNAL_ERROR,
                "the tick thread dropped the request",
            )),
            Err(_) => Err(RpcError::new(
                codes::INTERNAL_ERROR,
                "the tick thread did not answer in time",
            )),
        }
    }
}

/// The tick side: answers requests in `tick::TickService`.
#[derive(Debug)]
pub struct InspectorPlugin {
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
}

#[derive(Resource)]
struct Requests(Mutex<mpsc::Receiver<Job>>);

impl Plugin for InspectorPlugin {
    fn build(&self, app: &mut App) {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rx) = rx {
            app.insert_resource(Requests(Mutex::new(rx)));
        }
        app.init_resource::<InspectRegistry>()
            .add_systems(tick::TickService, serve);
    }
}

/// Requests answered per service run, so a flood cannot stall the tick.
const PER_RUN: usize = 64;

fn serve(world: &mut World) {
    let jobs: Vec<Job> = {
        let Some(requests) = world.get_resource::<Requests>() else {
            return;
        };
        let rx = requests.0.lock().unwrap_or_else(|p| p.into_inner());
        std::iter::from_fn(|| rx.try_recv().ok())
            .take(PER_RUN)
            .collect()
    };
    if jobs.is_empty() {
        return;
    }
    world.resource_scope(|world, registry: Mut<InspectRegistry>| {
        for job in jobs {
            let result = dispatch(world, &registry, &job.method, job.params);
            let _ = job.reply.send(result);
        }
    });
}

type GetFn = fn(&World, Entity) -> Option<Result<Value, String>>;
type IdFn = fn(&World) -> Option<ComponentId>;
type ResFn = fn(&World) -> Option<Result<Value, String>>;
type MethodFn = Arc<dyn Fn(&mut World, Value) -> Result<Value, RpcError> + Send + Sync>;

struct ComponentEntry {
    id: IdFn,
    get: GetFn,
}

/// What the inspector can show and call.
#[derive(Resource, Default)]
pub struct InspectRegistry {
    components: BTreeMap<String, ComponentEntry>,
    resources: BTreeMap<String, ResFn>,
    methods: BTreeMap<String, MethodFn>,
}

fn to_json<T: Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

impl InspectRegistry {
    pub fn add_component<T: Component + Serialize>(&mut self) {
        self.components.insert(
            std::any::type_name::<T>().to_owned(),
            ComponentEntry {
                id: |w| w.component_id::<T>(),
                get: |w, e| w.get::<T>(e).map(to_json),
            },
        );
    }

    pub fn add_resource<R: Resource + Serialize>(&mut self) {
        self.resources
            .insert(std::any::type_name::<R>().to_owned(), |w| {
                w.get_resource::<R>().map(to_json)
            });
    }

    pub fn add_method(
        &mut self,
        name: &str,
        f: impl Fn(&mut World, Value) -> Result<Value, RpcError> + Send + Sync + 'static,
    ) {
        self.methods.insert(name.to_owned(), Arc::new(f));
    }

    /// Resolves a full type path, or a unique short name, to the registered path.
    fn component_path(&self, name: &str) -> Option<&str> {
        resolve(self.components.keys(), name)
    }

    fn resource_path(&self, name: &str) -> Option<&str> {
        resolve(self.resources.keys(), name)
    }

    /// Names of the extra methods.
    pub fn method_names(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }
}

fn resolve<'a>(mut keys: impl Iterator<Item = &'a String> + Clone, name: &str) -> Option<&'a str> {
    if let Some(k) = keys.clone().find(|k| *k == name) {
        return Some(k);
    }
    let mut short = keys.by_ref().filter(|k| short_name(k) == name);
    match (short.next(), short.next()) {
        (Some(k), None) => Some(k),
        _ => None,
    }
}

/// `a::b::C<d::E>` → `C<d::E>`: the last segment outside generics.
fn short_name(path: &str) -> &str {
    let base_end = path.find('<').unwrap_or(path.len());
    let start = path[..base_end].rfind("::").map_or(0, |i| i + 2);
    &path[start..]
}

/// Extension methods to register what the inspector shows.
pub trait InspectAppExt {
    fn inspect_component<T: Component + Serialize>(&mut self) -> &mut Self;
    fn inspect_resource<R: Resource + Serialize>(&mut self) -> &mut Self;
    fn inspect_method(
        &mut self,
        name: &str,
        f: impl Fn(&mut World, Value) -> Result<Value, RpcError> + Send + Sync + 'static,
    ) -> &mut Self;
}

impl InspectAppExt for App {
    fn inspect_component<T: Component + Serialize>(&mut self) -> &mut Self {
        self.init_resource::<InspectRegistry>();
        self.world_mut()
            .resource_mut::<InspectRegistry>()
            .add_component::<T>();
        self
    }

    fn inspect_resource<R: Resource + Serialize>(&mut self) -> &mut Self {
        self.init_resource::<InspectRegistry>();
        self.world_mut()
            .resource_mut::<InspectRegistry>()
            .add_resource::<R>();
        self
    }

    fn inspect_method(
        &mut self,
        name: &str,
        f: impl Fn(&mut World, Value) -> Result<Value, RpcError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.init_resource::<InspectRegistry>();
        self.world_mut()
            .resource_mut::<InspectRegistry>()
            .add_method(name, f);
        self
    }
}

/// The BRP methods this inspector implements on the tick thread.
pub const BRP_METHODS: &[&str] = &[
    "world.query",
    "world.get_components",
    "world.list_components",
    "world.list_resources",
    "world.get_resources",
    "schedule.list",
    "rpc.discover",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryParams {
    data: QueryData,
    #[serde(default)]
    filter: QueryFilter,
    #[serde(default)]
    strict: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryData {
    #[serde(default)]
    components: Vec<String>,
    #[serde(default)]
    option: Selector,
    #[serde(default)]
    has: Vec<String>,
}

/// BRP's `ComponentSelector`: `"all"` or a list of paths.
#[derive(Debug, Default)]
enum Selector {
    All,
    #[default]
    None,
    Paths(Vec<String>),
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "all" => Ok(Selector::All),
            Value::Array(a) => a
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(serde::de::Error::custom(format!(
                        "option must be \"all\" or an array of component paths, found {other}"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| {
                    if v.is_empty() {
                        Selector::None
                    } else {
                        Selector::Paths(v)
                    }
                }),
            Value::Null => Ok(Selector::None),
            other => Err(serde::de::Error::custom(format!(
                "option must be \"all\" or an array of component paths, found {other}"
            ))),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryFilter {
    #[serde(default)]
    with: Vec<String>,
    #[serde(default)]
    without: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetParams {
    entity: u64,
    components: Vec<String>,
    #[serde(default)]
    strict: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    entity: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceParams {
    resource: String,
}

fn params<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, RpcError> {
    serde_json::from_value(v).map_err(RpcError::invalid_params)
}

/// Answers one method with the world.
pub fn dispatch(
    world: &mut World,
    reg: &InspectRegistry,
    method: &str,
    p: Value,
) -> Result<Value, RpcError> {
    match method {
        "world.query" => query(world, reg, params(p)?),
        "world.get_components" => get_components(world, reg, params(p)?),
        "world.list_components" => {
            if p.is_null() || p == json!({}) {
                Ok(json!(reg.components.keys().collect::<Vec<_>>()))
            } else {
                let ListParams { entity } = params(p)?;
                let e = entity_ref(world, entity)?;
                let present: Vec<&String> = reg
                    .components
                    .iter()
                    .filter(|(_, c)| (c.id)(world).is_some_and(|id| e.contains_id(id)))
                    .map(|(k, _)| k)
                    .collect();
                Ok(json!(present))
            }
        }
        "world.list_resources" => Ok(json!(
            reg.resources
                .iter()
                .filter(|(_, get)| get(world).is_some())
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        )),
        "world.get_resources" => {
            let ResourceParams { resource } = params(p)?;
            let path = reg.resource_path(&resource).ok_or_else(|| {
                RpcError::new(
                    codes::COMPONENT_ERROR,
                    format!("unknown resource type: `{resource}`"),
                )
            })?;
            let get = reg.resources[path];
            match get(world) {
                Some(Ok(value)) => Ok(json!({ "value": value })),
                Some(Err(e)) => Err(RpcError::new(codes::COMPONENT_ERROR, e)),
                None => Err(RpcError::new(
                    codes::COMPONENT_ERROR,
                    format!("resource `{path}` is not in the world"),
                )),
            }
        }
        "schedule.list" => Ok(schedules(world)),
        "rpc.discover" => Ok(discover(reg)),
        other => match reg.methods.get(other) {
            Some(f) => f(world, p),
            None => Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("method `{other}` not found"),
            )),
        },
    }
}

fn entity_ref(world: &World, bits: u64) -> Result<bevy_ecs::world::EntityRef<'_>, RpcError> {
    Entity::try_from_bits(bits)
        .and_then(|e| world.get_entity(e).ok())
        .ok_or_else(|| {
            RpcError::new(
                codes::ENTITY_NOT_FOUND,
                format!("entity {bits} does not exist"),
            )
        })
}

/// Registered type paths with their component ids (none when never spawned).
type Resolved<'a> = Vec<(&'a str, Option<ComponentId>)>;

/// Resolves names to (path, id); unknown names are errors when strict, skipped (and
/// reported) otherwise.
fn ids<'a>(
    world: &World,
    reg: &'a InspectRegistry,
    names: &[String],
    strict: bool,
) -> Result<(Resolved<'a>, bool), RpcError> {
    let mut out = Vec::new();
    let mut unknown = false;
    for n in names {
        match reg.component_path(n) {
            Some(path) => out.push((path, (reg.components[path].id)(world))),
            None if strict => {
                return Err(RpcError::new(
                    codes::COMPONENT_ERROR,
                    format!("unknown component type: `{n}`"),
                ));
            }
            None => unknown = true,
        }
    }
    Ok((out, unknown))
}

fn query(world: &mut World, reg: &InspectRegistry, p: QueryParams) -> Result<Value, RpcError> {
    let (required, unknown_required) = ids(world, reg, &p.data.components, p.strict)?;
    let (with, unknown_with) = ids(world, reg, &p.filter.with, p.strict)?;
    let (without, _) = ids(world, reg, &p.filter.without, p.strict)?;
    let (has, _) = ids(world, reg, &p.data.has, p.strict)?;
    let optional: Vec<(&str, Option<ComponentId>)> = match &p.data.option {
        Selector::All => reg
            .components
            .iter()
            .map(|(k, c)| (k.as_str(), (c.id)(world)))
            .collect(),
        Selector::None => Vec::new(),
        Selector::Paths(paths) => ids(world, reg, paths, p.strict)?.0,
    };
    // A required component that does not exist in the world matches nothing.
    if unknown_required || unknown_with || required.iter().chain(&with).any(|(_, id)| id.is_none())
    {
        return Ok(json!([]));
    }
    let mut rows = Vec::new();
    let mut entities: Vec<Entity> = world.iter_entities().map(|e| e.id()).collect();
    entities.sort_by_key(|e| e.index());
    for entity in entities {
        let Ok(e) = world.get_entity(entity) else {
            continue;
        };
        let contains = |id: &Option<ComponentId>| id.is_some_and(|id| e.contains_id(id));
        if !required.iter().chain(&with).all(|(_, id)| contains(id)) {
            continue;
        }
        if without.iter().any(|(_, id)| contains(id)) {
            continue;
        }
        let mut components = Map::new();
        for (path, _) in required
            .iter()
            .chain(optional.iter().filter(|(_, id)| contains(id)))
        {
            match (reg.components[*path].get)(world, entity) {
                Some(Ok(v)) => {
                    components.insert((*path).to_owned(), v);
                }
                Some(Err(err)) if p.strict => {
                    return Err(RpcError::new(codes::COMPONENT_ERROR, err));
                }
                _ => {}
            }
        }
        let mut row = Map::new();
        row.insert("entity".into(), json!(entity.to_bits()));
        row.insert("components".into(), Value::Object(components));
        if !has.is_empty() {
            let h: Map<String, Value> = has
                .iter()
                .map(|(path, id)| ((*path).to_owned(), json!(contains(id))))
                .collect();
            row.insert("has".into(), Value::Object(h));
        }
        rows.push(Value::Object(row));
    }
    Ok(Value::Array(rows))
}

fn get_components(
    world: &mut World,
    reg: &InspectRegistry,
    p: GetParams,
) -> Result<Value, RpcError> {
    let entity = entity_ref(world, p.entity)?.id();
    let mut components = Map::new();
    let mut errors = Map::new();
    for name in &p.components {
        let Some(path) = reg.component_path(name) else {
            let err = RpcError::new(
                codes::COMPONENT_ERROR,
                format!("unknown component type: `{name}`"),
            );
            if p.strict {
                return Err(err);
            }
            errors.insert(name.clone(), json!(err));
            continue;
        };
        match (reg.components[path].get)(world, entity) {
            Some(Ok(v)) => {
                components.insert(path.to_owned(), v);
            }
            Some(Err(e)) => {
                let err = RpcError::new(codes::COMPONENT_ERROR, e);
                if p.strict {
                    return Err(err);
                }
                errors.insert(path.to_owned(), json!(err));
            }
            None => {
                let err = RpcError::new(
                    codes::COMPONENT_NOT_PRESENT,
                    format!("component `{path}` not present on entity {}", p.entity),
                );
                if p.strict {
                    return Err(err);
                }
                errors.insert(path.to_owned(), json!(err));
            }
        }
    }
    if p.strict {
        Ok(Value::Object(components))
    } else {
        Ok(json!({ "components": components, "errors": errors }))
    }
}

fn schedules(world: &World) -> Value {
    let Some(schedules) = world.get_resource::<bevy_ecs::schedule::Schedules>() else {
        return json!([]);
    };
    let mut out: Vec<Value> = schedules
        .iter()
        .map(|(label, schedule)| {
            let systems: Vec<String> = match schedule.systems() {
                Ok(it) => it.map(|(_, s)| s.name().to_string()).collect(),
                Err(_) => Vec::new(),
            };
            json!({ "schedule": format!("{label:?}"), "systems": systems })
        })
        .collect();
    out.sort_by(|a, b| a["schedule"].as_str().cmp(&b["schedule"].as_str()));
    Value::Array(out)
}

fn discover(reg: &InspectRegistry) -> Value {
    let methods: Vec<Value> = BRP_METHODS
        .iter()
        .copied()
        .chain(reg.method_names())
        .map(|m| json!({ "name": m, "params": [] }))
        .collect();
    json!({
        "openrpc": "1.3.2",
        "info": { "title": "PixSim tick inspector", "version": env!("CARGO_PKG_VERSION") },
        "methods": methods,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
