//! JSON Schemas of the content format, generated from the types (feature `schema`).
//!
//! `scenes/schema/scene.schema.json` and `world.schema.json` are these schemas as checked
//! in; `crates/content/tests/schema.rs` fails when they drift and rewrites them with
//! `UPDATE_SCHEMAS=1`. Editors (Taplo / "Even Better TOML") use them for completion and
//! checks, so the descriptions come from the types' doc comments.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::expr::{ExprText, Type};
use super::scene::{MINI_GAMES, Scene};
use super::world::WorldConfig;

pub use super::ident::IDENT;

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
}

fn root(mut schema: Schema, id: &str, title: &str, description: &str) -> Schema {
    if let Some(map) = schema.as_object_mut() {
        map.values_mut().for_each(no_null);
    }
    schema.insert(
        "$id".into(),
        format!("https://pixsim.dev/schema/{id}").into(),
    );
    schema.insert("title".into(), title.into());
    schema.insert("description".into(), description.into());
    schema
}

/// Drops `null` from optional fields' schemas: TOML has no null, an absent key is how a
/// file leaves an option unset (`"type": ["string", "null"]` becomes `"type": "string"`,
/// `"anyOf": [X, {"type": "null"}]` becomes X).
fn no_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [single] = types.as_slice() {
                    let single = single.clone();
                    map.insert("type".into(), single);
                }
            }
            if let Some(Value::Array(any)) = map.get("anyOf")
                && let [one, null] = any.as_slice()
                && *null == serde_json::json!({ "type": "null" })
                && let Value::Object(one) = one.clone()
            {
                map.remove("anyOf");
                map.extend(one);
            }
            map.values_mut().for_each(no_null);
        }
        Value::Array(items) => items.iter_mut().for_each(no_null),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// The schema of one scene file (`scenes/*.toml`).
pub fn scene_schema() -> Schema {
    root(
        generator().into_root_schema_for::<Scene>(),
        "scene.schema.json",
        "PixSim scene",
        "One scene file (scenes/*.toml). Validate semantics with `pixsim-server scenes validate`.",
    )
}

/// The schema of the world config (`scenes/world.toml`).
pub fn world_schema() -> Schema {
    root(
        generator().into_root_schema_for::<WorldConfig>(),
        "world.schema.json",
        "PixSim world config",
        "scenes/world.toml: variables, stats, XP curve, items, quests, locked scenes.",
    )
}

/// `MiniGameSpec::game`: a game of the simulation's registry (the built-ins are
/// [`MINI_GAMES`]; a server may register more, so the schema names them as examples and
/// validation checks the id against the registry).
pub(super) fn mini_game(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The mini-game: a registered game's id (built in: reflex, skill_check).",
        "type": "string",
        "pattern": super::ident::IDENT,
        "examples": MINI_GAMES,
    })
}

impl JsonSchema for ExprText {
    fn schema_name() -> Cow<'static, str> {
        "Expression".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Expression (see scenes/README.md): e.g. \"var.alarm >= 2 and 'key' in inventory\"",
        })
    }
}

impl JsonSchema for Type {
    fn schema_name() -> Cow<'static, str> {
        "Type".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(bool|int|string|list<(bool|int|string)>)$",
            "description": "bool, int, string or list<T>",
        })
    }
}
