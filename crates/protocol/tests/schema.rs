//! `schema/v{PROTOCOL_VERSION}.json`, the machine-readable schema of every message, is
//! generated from the Rust types by tracing their serde implementations (serde-reflection,
//! binary mode, as postcard sees them). This test fails when the checked-in file differs
//! from the generated one; `UPDATE_SCHEMAS=1 cargo test -p protocol --test schema` rewrites
//! it. The format is the one `docs/protocol.md` ("Schema file") describes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use protocol::PROTOCOL_VERSION;
use protocol::v2::{
    Change, ClientDatagram, ClientMessage, GAME_EVENT_VARIANTS, GameCommand, GameEvent, Playback,
    SERVER_MESSAGE_VARIANTS, ServerDatagram, ServerMessage,
};
use serde::Serialize;
use serde_json::{Value, json};
use serde_reflection::{
    ContainerFormat, Format, Named, Registry, Tracer, TracerConfig, VariantFormat,
};

/// Fields that trace as `bytes` but mean something more precise, by
/// `Type.Variant.field` (enum variants) or `Type.field` (structs). Every `bytes` field
/// must be listed here (or be meant as plain bytes, which none is today).
const BYTES_OVERRIDES: &[(&str, BytesMeaning)] = &[
    ("ClientMessage.JoinSession.session_id", BytesMeaning::Uuid),
    ("ServerMessage.Authenticated.user_id", BytesMeaning::Uuid),
    ("ServerMessage.SessionJoined.session_id", BytesMeaning::Uuid),
    (
        "ServerMessage.Event.event",
        BytesMeaning::Embedded("GameEvent"),
    ),
];

/// What a `bytes`-traced field holds.
#[derive(Clone, Copy, Debug)]
enum BytesMeaning {
    /// A UUID: 16 bytes on the binary wire, a hyphenated string in JSON.
    Uuid,
    /// Another type's postcard encoding as a byte string; the value itself in JSON.
    Embedded(&'static str),
}

impl BytesMeaning {
    fn type_expr(self) -> Value {
        match self {
            BytesMeaning::Uuid => json!("uuid"),
            BytesMeaning::Embedded(name) => json!({ "embedded": name }),
        }
    }
}

/// The schema file, fields in the order they are written.
#[derive(Serialize)]
struct SchemaFile {
    protocol_version: u16,
    roots: Roots,
    types: BTreeMap<String, TypeDef>,
}

#[derive(Serialize)]
struct Roots {
    client: &'static str,
    server: &'static str,
    client_datagram: &'static str,
    server_datagram: &'static str,
    event: &'static str,
}

const ROOTS: Roots = Roots {
    client: "ClientMessage",
    server: "ServerMessage",
    client_datagram: "ClientDatagram",
    server_datagram: "ServerDatagram",
    event: "GameEvent",
};

#[derive(Serialize)]
struct TypeDef {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variants: Option<Vec<VariantDef>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<FieldDef>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    ty: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    types: Option<Vec<Value>>,
}

#[derive(Serialize)]
struct VariantDef {
    index: u32,
    name: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<FieldDef>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    ty: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    types: Option<Vec<Value>>,
}

#[derive(Serialize)]
struct FieldDef {
    name: String,
    #[serde(rename = "type")]
    ty: Value,
}

/// Traces every root and every nested enum (each enum separately, so that all of its
/// variants are explored).
fn trace() -> Registry {
    // EventBody and Uuid deserialize from bytes: 16 bytes are a valid UUID, and an event
    // whose tag (99) no build knows is a valid (skipped) event.
    const SAMPLE_BYTES: &[u8] = &[99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let config = TracerConfig::default()
        .is_human_readable(false)
        .default_borrowed_bytes_value(SAMPLE_BYTES)
        .default_byte_buf_value(SAMPLE_BYTES.to_vec());
    let mut tracer = Tracer::new(config);
    tracer.trace_simple_type::<ClientMessage>().unwrap();
    tracer.trace_simple_type::<ServerMessage>().unwrap();
    tracer.trace_simple_type::<ClientDatagram>().unwrap();
    tracer.trace_simple_type::<ServerDatagram>().unwrap();
    tracer.trace_simple_type::<GameEvent>().unwrap();
    tracer.trace_simple_type::<GameCommand>().unwrap();
    tracer.trace_simple_type::<Change>().unwrap();
    tracer.trace_simple_type::<Playback>().unwrap();
    tracer.registry().expect("every enum variant traced")
}

/// Converts a traced registry to the schema's types, mapping `bytes` fields through
/// [`BYTES_OVERRIDES`]. Errors: the `bytes` fields the table does not cover, and the
/// table entries that match no field.
fn schema_types(
    registry: &Registry,
    overrides: &[(&str, BytesMeaning)],
) -> Result<BTreeMap<String, TypeDef>, String> {
    let mut cx = Cx {
        overrides,
        used: vec![false; overrides.len()],
        uncovered: Vec::new(),
    };
    let mut types = BTreeMap::new();
    for (name, container) in registry {
        types.insert(name.clone(), cx.container(name, container));
    }
    let stale: Vec<&str> = overrides
        .iter()
        .zip(&cx.used)
        .filter(|(_, used)| !**used)
        .map(|((path, _), _)| *path)
        .collect();
    if cx.uncovered.is_empty() && stale.is_empty() {
        Ok(types)
    } else {
        Err(format!(
            "bytes fields missing from BYTES_OVERRIDES: {:?}; entries matching no bytes field: {stale:?}",
            cx.uncovered
        ))
    }
}

struct Cx<'a> {
    overrides: &'a [(&'a str, BytesMeaning)],
    used: Vec<bool>,
    uncovered: Vec<String>,
}

impl Cx<'_> {
    fn container(&mut self, name: &str, c: &ContainerFormat) -> TypeDef {
        let empty = TypeDef {
            kind: "",
            variants: None,
            fields: None,
            ty: None,
            types: None,
        };
        match c {
            ContainerFormat::UnitStruct => TypeDef {
                kind: "unit",
                ..empty
            },
            ContainerFormat::NewTypeStruct(f) => TypeDef {
                kind: "newtype",
                ty: Some(self.ty(name, f)),
                ..empty
            },
            ContainerFormat::TupleStruct(fs) => TypeDef {
                kind: "tuple",
                types: Some(fs.iter().map(|f| self.ty(name, f)).collect()),
                ..empty
            },
            ContainerFormat::Struct(fs) => TypeDef {
                kind: "struct",
                fields: Some(self.fields(name, fs)),
                ..empty
            },
            ContainerFormat::Enum(vs) => TypeDef {
                kind: "enum",
                variants: Some(
                    vs.iter()
                        .map(|(index, v)| self.variant(name, *index, v))
                        .collect(),
                ),
                ..empty
            },
        }
    }

    fn variant(&mut self, ty: &str, index: u32, v: &Named<VariantFormat>) -> VariantDef {
        let path = format!("{ty}.{}", v.name);
        let def = VariantDef {
            index,
            name: v.name.clone(),
            kind: "",
            fields: None,
            ty: None,
            types: None,
        };
        match &v.value {
            VariantFormat::Unit => VariantDef {
                kind: "unit",
                ..def
            },
            VariantFormat::NewType(f) => VariantDef {
                kind: "newtype",
                ty: Some(self.ty(&path, f)),
                ..def
            },
            VariantFormat::Tuple(fs) => VariantDef {
                kind: "tuple",
                types: Some(fs.iter().map(|f| self.ty(&path, f)).collect()),
                ..def
            },
            VariantFormat::Struct(fs) => VariantDef {
                kind: "struct",
                fields: Some(self.fields(&path, fs)),
                ..def
            },
            VariantFormat::Variable(_) => panic!("{path}: untraced variant"),
        }
    }

    fn fields(&mut self, path: &str, fs: &[Named<Format>]) -> Vec<FieldDef> {
        fs.iter()
            .map(|f| FieldDef {
                name: f.name.clone(),
                ty: self.ty(&format!("{path}.{}", f.name), &f.value),
            })
            .collect()
    }

    /// The type expression of `f`, found at `path`.
    fn ty(&mut self, path: &str, f: &Format) -> Value {
        match f {
            Format::Bool => json!("bool"),
            Format::U8 => json!("u8"),
            Format::U16 => json!("u16"),
            Format::U32 => json!("u32"),
            Format::U64 => json!("u64"),
            Format::I32 => json!("i32"),
            Format::I64 => json!("i64"),
            Format::Str => json!("string"),
            Format::Bytes => match self.overrides.iter().position(|(p, _)| *p == path) {
                Some(i) => {
                    self.used[i] = true;
                    self.overrides[i].1.type_expr()
                }
                None => {
                    self.uncovered.push(path.to_string());
                    json!("bytes")
                }
            },
            Format::TypeName(name) => json!(name),
            Format::Option(inner) => json!({ "option": self.ty(path, inner) }),
            Format::Seq(inner) => json!({ "seq": self.ty(path, inner) }),
            Format::Variable(_)
            | Format::Unit
            | Format::I8
            | Format::I16
            | Format::I128
            | Format::U128
            | Format::F32
            | Format::F64
            | Format::Char
            | Format::Map { .. }
            | Format::Tuple(_)
            | Format::TupleArray { .. } => panic!(
                "{path}: {f:?} has no type expression in the schema format; \
                 extend the format (docs/protocol.md, the TypeScript codec) first"
            ),
        }
    }
}

/// The schema, as written to the file.
fn generated() -> String {
    let types = schema_types(&trace(), BYTES_OVERRIDES).unwrap_or_else(|e| panic!("{e}"));
    let file = SchemaFile {
        protocol_version: PROTOCOL_VERSION,
        roots: ROOTS,
        types,
    };
    serde_json::to_string_pretty(&file).unwrap() + "\n"
}

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(format!("v{PROTOCOL_VERSION}.json"))
}

#[test]
fn checked_in_schema_is_generated_from_the_types() {
    let generated = generated();
    let path = schema_path();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} differs from the schema generated from the protocol types; regenerate with \
         `UPDATE_SCHEMAS=1 cargo test -p protocol --test schema` and commit",
        path.display()
    );
}

/// The variant names of enum `name` in the generated schema, by index.
fn variant_names(types: &BTreeMap<String, TypeDef>, name: &str) -> Vec<String> {
    let variants = types[name].variants.as_ref().expect("an enum");
    for (i, v) in variants.iter().enumerate() {
        assert_eq!(v.index as usize, i, "{name}: variant indices are dense");
    }
    variants.iter().map(|v| v.name.clone()).collect()
}

/// The tables a lenient client uses to skip unknown tags list exactly the traced variants.
#[test]
fn variant_tables_match_the_traced_enums() {
    let types = schema_types(&trace(), BYTES_OVERRIDES).unwrap();
    assert_eq!(
        variant_names(&types, "ServerMessage"),
        SERVER_MESSAGE_VARIANTS.to_vec()
    );
    assert_eq!(
        variant_names(&types, "GameEvent"),
        GAME_EVENT_VARIANTS.to_vec()
    );
    // The frozen handshake tags.
    assert_eq!(variant_names(&types, "ClientMessage")[0], "Hello");
    assert_eq!(variant_names(&types, "ServerMessage")[0], "Welcome");
    assert_eq!(variant_names(&types, "ServerMessage")[2], "Error");
}

/// Every root named in the file is a traced enum, and every type a field names exists.
#[test]
fn schema_is_closed() {
    let types = schema_types(&trace(), BYTES_OVERRIDES).unwrap();
    for root in [
        ROOTS.client,
        ROOTS.server,
        ROOTS.client_datagram,
        ROOTS.server_datagram,
        ROOTS.event,
    ] {
        assert_eq!(types[root].kind, "enum", "{root}");
    }
    let text = serde_json::to_value(&types).unwrap();
    let mut names = Vec::new();
    collect_type_names(&text, &mut names);
    for n in names {
        assert!(types.contains_key(&n), "{n} is named but not defined");
    }
}

/// Strings in `"type"` / `"types"` positions and inside type expressions that are not
/// primitive names.
fn collect_type_names(v: &Value, out: &mut Vec<String>) {
    const PRIMITIVES: [&str; 10] = [
        "bool", "u8", "u16", "u32", "u64", "i32", "i64", "string", "bytes", "uuid",
    ];
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("type" | "option" | "seq" | "embedded", Value::String(s))
                        if !PRIMITIVES.contains(&s.as_str()) =>
                    {
                        out.push(s.clone())
                    }
                    _ => collect_type_names(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_type_names(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// A `bytes` field the override table does not cover, or a table entry that matches no
/// field, fails the generation.
#[test]
fn uncovered_bytes_fields_and_stale_overrides_fail() {
    let mut registry = Registry::new();
    registry.insert(
        "Thing".into(),
        ContainerFormat::Struct(vec![
            Named {
                name: "id".into(),
                value: Format::Bytes,
            },
            Named {
                name: "blob".into(),
                value: Format::Option(Box::new(Format::Bytes)),
            },
        ]),
    );
    let err = schema_types(&registry, &[("Thing.id", BytesMeaning::Uuid)])
        .err()
        .expect("blob is not covered");
    assert!(err.contains("Thing.blob"), "{err}");
    let err = schema_types(
        &registry,
        &[
            ("Thing.id", BytesMeaning::Uuid),
            ("Thing.blob", BytesMeaning::Embedded("GameEvent")),
            ("Thing.gone", BytesMeaning::Uuid),
        ],
    )
    .err()
    .expect("Thing.gone is stale");
    assert!(err.contains("Thing.gone"), "{err}");
    let ok = schema_types(
        &registry,
        &[
            ("Thing.id", BytesMeaning::Uuid),
            ("Thing.blob", BytesMeaning::Embedded("GameEvent")),
        ],
    )
    .unwrap();
    let v = serde_json::to_value(&ok["Thing"]).unwrap();
    assert_eq!(
        v,
        json!({"kind": "struct", "fields": [
            {"name": "id", "type": "uuid"},
            {"name": "blob", "type": {"option": {"embedded": "GameEvent"}}}
        ]})
    );
}
