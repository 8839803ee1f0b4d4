//! The JSON Schemas in `scenes/schema/` are generated from the domain types
//! (`domain::narrative::schema`, feature `schema`): this test fails when a checked-in schema
//! differs from the generated one, and rewrites them with `UPDATE_SCHEMAS=1`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use domain::narrative::schema::{scene_schema, world_schema};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/schema")
}

#[test]
fn checked_in_schemas_are_generated_from_the_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut drifted = Vec::new();
    for (file, schema) in [
        ("scene.schema.json", scene_schema()),
        ("world.schema.json", world_schema()),
    ] {
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = schema_dir().join(file);
        if update {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        if checked_in != generated {
            drifted.push(file);
        }
    }
    assert!(
        drifted.is_empty(),
        "{drifted:?} differ from the schemas generated from the domain types; \
         regenerate with `UPDATE_SCHEMAS=1 cargo test -p content --test schema` and commit"
    );
}

/// The variants serde knows for a tagged enum, in declaration order, read from its
/// "unknown variant" error for `toml_text` whose tag is `'?'` (so they come from the type,
/// not from a list).
fn variants<T: serde::de::DeserializeOwned>(toml_text: &str) -> Vec<String> {
    let err = toml::from_str::<T>(toml_text)
        .err()
        .expect("'?' is no variant")
        .to_string();
    let (_, list) = err
        .split_once("expected one of ")
        .expect("serde lists the variants");
    list.trim()
        .split(", ")
        .map(|k| k.trim_matches('`').to_string())
        .collect()
}

#[derive(serde::Deserialize)]
struct EffectIn {
    #[allow(dead_code)]
    e: domain::narrative::Effect,
}

/// The `const` of `prop` in each `oneOf` branch of `$defs.def`.
fn consts(schema: &serde_json::Value, def: &str, prop: &str) -> Vec<String> {
    schema["$defs"][def]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"][prop]["const"].as_str().unwrap().to_string())
        .collect()
}

/// The scene schema offers editors exactly the node kinds, effect ops and
/// mini-games the loader understands.
#[test]
fn json_schema_matches_the_format() {
    // The generated schema: the test above keeps the checked-in one equal to it.
    let schema = scene_schema().to_value();
    let kinds = consts(&schema, "Node", "kind");
    assert_eq!(
        kinds,
        variants::<domain::narrative::Node>("id = 'x'\nkind = '?'")
    );
    let ops = consts(&schema, "Effect", "op");
    assert_eq!(ops, variants::<EffectIn>("e = { op = '?' }"));
    // Every op in the schema deserializes as an effect.
    for op in &ops {
        let extra = match op.as_str() {
            "set" | "push" => r#", var = "v", value = 1"#,
            "inc" | "dec" | "flag" => r#", var = "v""#,
            "stat" => r#", stat = "s", delta = 1"#,
            "rel" => r#", npc = "n", axis = "a", delta = 1"#,
            "give" | "take" => r#", item = "i""#,
            "quest" => r#", quest = "q", status = "active""#,
            "objective" => r#", quest = "q", objective = "o""#,
            "xp" => ", amount = 1",
            _ => r#", scene = "s""#,
        };
        let toml_text = format!("e = {{ op = \"{op}\"{extra} }}");
        toml::from_str::<EffectIn>(&toml_text).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    let minigame = schema["$defs"]["Node"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["properties"]["kind"]["const"] == "minigame")
        .expect("a minigame branch");
    // Games come from the simulation's registry: the schema names the built-ins as
    // examples (a server may register more; validation checks the id).
    let games: Vec<String> = minigame["properties"]["game"]["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(games, domain::narrative::scene::MINI_GAMES);
}
