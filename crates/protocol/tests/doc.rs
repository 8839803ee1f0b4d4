//! `docs/protocol.md` stays complete and true: its message reference (between the
//! `BEGIN GENERATED` / `END GENERATED` markers) is rendered from the checked-in schema
//! (`UPDATE_SCHEMAS=1 cargo test -p protocol --test doc` rewrites it), every close code,
//! error code and message variant is documented, and every `golden <name>: <hex>` example
//! matches the golden vectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use protocol::v2::ErrorCode;
use protocol::{CloseCode, PROTOCOL_VERSION};
use serde_json::Value;

const BEGIN: &str = "<!-- BEGIN GENERATED: message reference";
const END: &str = "<!-- END GENERATED -->";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn doc_path() -> PathBuf {
    manifest_dir().join("../../docs/protocol.md")
}

fn read_json(dir: &str) -> Value {
    let path = manifest_dir()
        .join(dir)
        .join(format!("v{PROTOCOL_VERSION}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("checked-in file")).unwrap()
}

/// A type expression of the schema, for a table cell.
fn ty(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        Value::Object(m) => {
            let (k, v) = m.iter().next().expect("one key");
            format!("{k}<{}>", ty(v))
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_) => {
            panic!("not a type expression: {t}")
        }
    }
}

fn fields(fs: &Value) -> String {
    let cells: Vec<String> = fs
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| format!("`{}`: `{}`", f["name"].as_str().unwrap(), ty(&f["type"])))
        .collect();
    cells.join(", ")
}

/// The message reference, rendered from the schema.
fn reference(schema: &Value) -> String {
    let types = schema["types"].as_object().expect("types");
    let roots: Vec<&str> = [
        "client",
        "server",
        "client_datagram",
        "server_datagram",
        "event",
    ]
    .iter()
    .map(|r| schema["roots"][r].as_str().expect("root"))
    .collect();
    let mut order: Vec<&str> = roots.clone();
    order.extend(
        types
            .keys()
            .map(String::as_str)
            .filter(|n| !roots.contains(n)),
    );
    let mut out = format!(
        "\n## 15. Message reference\n\nGenerated from `schema/v{PROTOCOL_VERSION}.json`. \
         `tag` is the variant index (its varint on the binary wire); fields are listed in \
         wire order. Type expressions: section 6.\n"
    );
    for name in order {
        let def = &types[name];
        match def["kind"].as_str().unwrap() {
            "enum" => {
                out += &format!(
                    "\n### `{name}`\n\n| tag | variant | fields, in wire order |\n|---|---|---|\n"
                );
                for v in def["variants"].as_array().unwrap() {
                    let content = match v["kind"].as_str().unwrap() {
                        "unit" => "(none)".to_string(),
                        "struct" => fields(&v["fields"]),
                        "newtype" => format!("`{}`", ty(&v["type"])),
                        other => panic!("{name}: variant kind {other} not rendered"),
                    };
                    out += &format!(
                        "| {} | `{}` | {content} |\n",
                        v["index"],
                        v["name"].as_str().unwrap()
                    );
                }
            }
            "struct" => {
                out += &format!("\n### `{name}` (struct)\n\n| # | field | type |\n|---|---|---|\n");
                for (i, f) in def["fields"].as_array().unwrap().iter().enumerate() {
                    out += &format!(
                        "| {i} | `{}` | `{}` |\n",
                        f["name"].as_str().unwrap(),
                        ty(&f["type"])
                    );
                }
            }
            other => panic!("{name}: kind {other} not rendered"),
        }
    }
    out + "\n"
}

/// The doc split around the generated section: (before with the BEGIN line, section,
/// END line and after).
fn split(doc: &str) -> (&str, &str, &str) {
    let begin = doc.find(BEGIN).expect("BEGIN GENERATED marker");
    let begin_end = begin + doc[begin..].find("-->").expect("marker end") + 3;
    let end = doc.find(END).expect("END GENERATED marker");
    (&doc[..begin_end], &doc[begin_end..end], &doc[end..])
}

#[test]
fn message_reference_is_generated_from_the_schema() {
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    let generated = reference(&read_json("schema"));
    let (before, section, after) = split(&doc);
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(doc_path(), format!("{before}{generated}{after}")).unwrap();
        return;
    }
    assert!(
        section == generated,
        "the message reference in docs/protocol.md differs from the schema; regenerate with \
         `UPDATE_SCHEMAS=1 cargo test -p protocol --test doc` and commit"
    );
}

/// The doc outside the generated section.
fn prose() -> String {
    let doc = std::fs::read_to_string(doc_path()).unwrap();
    let (before, _, after) = split(&doc);
    format!("{before}{after}")
}

#[test]
fn every_close_code_is_documented() {
    let prose = prose();
    for code in CloseCode::ALL {
        let row = format!("| {} | `{code:?}` | {} |", code.as_u32(), code.reason());
        assert!(prose.contains(&row), "docs/protocol.md lacks the row {row}");
    }
}

#[test]
fn every_error_code_is_documented() {
    let prose = prose();
    let mut seen = BTreeSet::new();
    for n in 0..=4096u16 {
        let code = ErrorCode::from(n);
        if matches!(code, ErrorCode::Other(_)) {
            continue;
        }
        let name = format!("{code:?}");
        assert!(seen.insert(name.clone()), "{name} has two numbers");
        let row = format!("| {n} | `{name}` |");
        assert!(prose.contains(&row), "docs/protocol.md lacks the row {row}");
    }
    assert!(seen.len() >= 12);
}

/// Every variant of every enum of the schema is named in the prose (not only in the
/// generated tables).
#[test]
fn every_variant_is_described() {
    let prose = prose();
    let schema = read_json("schema");
    for (ty, def) in schema["types"].as_object().unwrap() {
        for v in def["variants"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap();
            assert!(
                prose.contains(&format!("`{name}")) || prose.contains(&format!("::{name}")),
                "docs/protocol.md does not describe {ty}::{name}"
            );
        }
    }
}

/// `golden <name>: <hex bytes>` lines in the doc quote the golden file exactly.
#[test]
fn byte_examples_match_the_golden_vectors() {
    let golden = read_json("golden");
    let vectors = golden["vectors"].as_array().unwrap();
    let mut checked = 0;
    for line in prose().lines() {
        let Some(rest) = line.strip_prefix("golden ") else {
            continue;
        };
        let (name, hex) = rest.split_once(": ").expect("golden <name>: <hex>");
        let vector = vectors
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no golden vector {name}"));
        assert_eq!(
            hex.replace(' ', ""),
            vector["hex"].as_str().unwrap(),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} byte examples");
}
