//! Golden vectors: `golden/v{PROTOCOL_VERSION}.json` pins the exact bytes (postcard
//! payload, no frame prefix) and the JSON encoding of the sample messages of
//! `support/samples.rs`. For every vector, encoding the value gives the hex, decoding the
//! hex gives the value, and the JSON encoding equals (and decodes from) the `json` field.
//!
//! `UPDATE_GOLDEN=1 cargo test -p protocol --test golden` rewrites the file. It may add
//! vectors, but refuses to change or drop an existing one: an encoding change needs a new
//! `PROTOCOL_VERSION`, which writes a new `golden/v{N}.json` and keeps the old file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use protocol::v2::{ClientDatagram, ServerDatagram, ServerMessage};
use protocol::{PROTOCOL_VERSION, to_json};
use serde_json::Value;
use support::samples::{MAX_SAFE, Sample, samples};

/// One vector as the file holds it.
#[derive(Clone, Debug, PartialEq)]
struct Vector {
    name: String,
    root: String,
    /// The JSON encoding, as `protocol::to_json` writes it (fields in declaration order).
    json: String,
    hex: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn encode(sample: &Sample) -> (Vec<u8>, String) {
    match sample {
        Sample::Client(m) => (postcard::to_stdvec(m).unwrap(), to_json(m).unwrap()),
        Sample::Server(m) => (postcard::to_stdvec(m).unwrap(), to_json(m).unwrap()),
        Sample::ClientDatagram(m) => (postcard::to_stdvec(m).unwrap(), to_json(m).unwrap()),
        Sample::ServerDatagram(m) => (postcard::to_stdvec(m).unwrap(), to_json(m).unwrap()),
    }
}

fn generated() -> Vec<Vector> {
    samples()
        .iter()
        .map(|(name, sample)| {
            let (bytes, json) = encode(sample);
            Vector {
                name: name.clone(),
                root: sample.root().to_string(),
                json,
                hex: hex(&bytes),
            }
        })
        .collect()
}

/// The file's text for `version`: one field per line, the JSON encoding on one line.
fn render(version: u16, vectors: &[Vector]) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let items: Vec<String> = vectors
        .iter()
        .map(|v| {
            format!(
                "    {{\n      \"name\": {},\n      \"root\": {},\n      \"json\": {},\n      \"hex\": {}\n    }}",
                q(&v.name),
                q(&v.root),
                v.json,
                q(&v.hex)
            )
        })
        .collect();
    format!(
        "{{\n  \"protocol_version\": {version},\n  \"vectors\": [\n{}\n  ]\n}}\n",
        items.join(",\n")
    )
}

/// Parses a golden file: its protocol version and vectors (JSON re-encoded compactly).
fn parse(text: &str) -> (u64, Vec<Vector>) {
    let file: Value = serde_json::from_str(text).expect("golden file is JSON");
    let version = file["protocol_version"].as_u64().expect("protocol_version");
    let vectors = file["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| Vector {
            name: v["name"].as_str().expect("name").to_string(),
            root: v["root"].as_str().expect("root").to_string(),
            json: v["json"].to_string(),
            hex: v["hex"].as_str().expect("hex").to_string(),
        })
        .collect();
    (version, vectors)
}

/// Whether `generated` may replace `existing` within one protocol version: every existing
/// vector is still generated, with the same root, bytes and JSON (compared as values).
/// New vectors may be added.
fn may_replace(existing: &[Vector], generated: &[Vector]) -> Result<(), String> {
    let mut problems = Vec::new();
    for old in existing {
        match generated.iter().find(|g| g.name == old.name) {
            None => problems.push(format!("{}: dropped", old.name)),
            Some(new) => {
                if new.root != old.root {
                    problems.push(format!("{}: root {} -> {}", old.name, old.root, new.root));
                }
                if new.hex != old.hex {
                    problems.push(format!("{}: bytes {} -> {}", old.name, old.hex, new.hex));
                }
                let (a, b): (Value, Value) = (
                    serde_json::from_str(&old.json).unwrap(),
                    serde_json::from_str(&new.json).unwrap(),
                );
                if a != b {
                    problems.push(format!("{}: JSON {} -> {}", old.name, old.json, new.json));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "existing golden vectors would change within protocol version {PROTOCOL_VERSION} \
             (an encoding change needs a new PROTOCOL_VERSION):\n  {}",
            problems.join("\n  ")
        ))
    }
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn golden_path(version: u16) -> PathBuf {
    golden_dir().join(format!("v{version}.json"))
}

/// `UPDATE_GOLDEN`: writes `dir/v{version}.json` from `generated`, unless that file exists
/// and [`may_replace`] refuses (then nothing is written). Files of other versions are
/// left as they are.
fn update(dir: &std::path::Path, version: u16, generated: &[Vector]) -> Result<(), String> {
    let path = dir.join(format!("v{version}.json"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let (file_version, existing) = parse(&text);
        if file_version != u64::from(version) {
            return Err(format!("{} holds version {file_version}", path.display()));
        }
        may_replace(&existing, generated)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(&path, render(version, generated)).map_err(|e| e.to_string())
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

#[test]
fn checked_in_vectors_are_generated_from_the_samples() {
    let generated = generated();
    if updating() {
        update(&golden_dir(), PROTOCOL_VERSION, &generated).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let path = golden_path(PROTOCOL_VERSION);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != render(PROTOCOL_VERSION, &generated) {
        let (_, existing) = parse(&checked_in);
        // Say whether a regeneration would be accepted.
        let verdict = match may_replace(&existing, &generated) {
            Ok(()) => "only new vectors: regenerate with \
                       `UPDATE_GOLDEN=1 cargo test -p protocol --test golden` and commit"
                .to_string(),
            Err(e) => e,
        };
        panic!(
            "{} differs from the generated vectors; {verdict}",
            path.display()
        );
    }
}

/// Every checked-in vector: the value encodes to its bytes and JSON, and decodes back
/// from both, as a client (lenient) and, for client messages, as the server (strict).
#[test]
fn every_vector_round_trips() {
    // While updating, the file being written is checked (it may not exist yet).
    let text = match updating() {
        true => render(PROTOCOL_VERSION, &generated()),
        false => std::fs::read_to_string(golden_path(PROTOCOL_VERSION)).expect("golden file"),
    };
    let (version, vectors) = parse(&text);
    assert_eq!(version, u64::from(PROTOCOL_VERSION));
    let samples = samples();
    assert_eq!(vectors.len(), samples.len());
    for v in &vectors {
        let (_, sample) = samples
            .iter()
            .find(|(n, _)| *n == v.name)
            .unwrap_or_else(|| panic!("{}: no sample", v.name));
        let (bytes, json) = encode(sample);
        assert_eq!(hex(&bytes), v.hex, "{}: bytes", v.name);
        assert_eq!(v.root, sample.root(), "{}", v.name);
        let file_json: Value = serde_json::from_str(&v.json).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap(),
            file_json,
            "{}: JSON",
            v.name
        );
        assert_integers_are_safe(&v.name, &file_json);
        let payload = unhex(&v.hex);
        let decoded = decode(sample, &payload, &v.json);
        assert_eq!(&decoded, sample, "{}: decoded", v.name);
    }
}

/// Decodes `payload` and `json` as the sample's root; both must agree.
fn decode(sample: &Sample, payload: &[u8], json: &str) -> Sample {
    match sample {
        Sample::Client(_) => {
            let m = protocol::decode_payload(payload).unwrap();
            assert_eq!(protocol::client_from_json(json).unwrap(), m);
            Sample::Client(m)
        }
        Sample::Server(_) => {
            let m = protocol::decode_server_payload(payload).unwrap().unwrap();
            let strict: ServerMessage = protocol::decode_payload(payload).unwrap();
            assert_eq!(strict, m);
            assert_eq!(protocol::server_from_json(json).unwrap(), Some(m.clone()));
            Sample::Server(m)
        }
        Sample::ClientDatagram(_) => {
            let m: ClientDatagram = protocol::decode_datagram(payload).unwrap();
            assert_eq!(serde_json::from_str::<ClientDatagram>(json).unwrap(), m);
            Sample::ClientDatagram(m)
        }
        Sample::ServerDatagram(_) => {
            let m: ServerDatagram = protocol::decode_datagram(payload).unwrap();
            assert_eq!(serde_json::from_str::<ServerDatagram>(json).unwrap(), m);
            Sample::ServerDatagram(m)
        }
    }
}

/// Every number in a vector's JSON is an integer a double holds exactly.
fn assert_integers_are_safe(name: &str, v: &Value) {
    match v {
        Value::Number(n) => {
            let ok = n.as_u64().is_some_and(|u| u <= MAX_SAFE)
                || n.as_i64().is_some_and(|i| i.unsigned_abs() <= MAX_SAFE);
            assert!(ok, "{name}: {n} is not a safe JSON integer");
        }
        Value::Array(a) => a.iter().for_each(|v| assert_integers_are_safe(name, v)),
        Value::Object(m) => m.values().for_each(|v| assert_integers_are_safe(name, v)),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// The vectors cover what the issue asks: every message, event, command and datagram
/// variant, `None` and `Some`, empty and non-empty sequences, negative i64, multi-byte
/// varints, and the extremes of the JSON-safe range.
#[test]
fn vectors_cover_every_variant_and_encoding_case() {
    let vectors = generated();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("schema")
                .join(format!("v{PROTOCOL_VERSION}.json")),
        )
        .expect("schema file"),
    )
    .unwrap();
    let all_json: Vec<Value> = vectors
        .iter()
        .map(|v| serde_json::from_str(&v.json).unwrap())
        .collect();
    // Every variant name of every enum appears as a key (or a unit string) somewhere.
    let text = all_json
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for (ty, def) in schema["types"].as_object().unwrap() {
        for variant in def["variants"].as_array().into_iter().flatten() {
            let name = variant["name"].as_str().unwrap();
            assert!(
                text.contains(&format!("{{\"{name}\":")) || text.contains(&format!("\"{name}\"")),
                "no vector holds {ty}::{name}"
            );
        }
    }
    for needle in ["null", "[]", ":-", "9007199254740991", "-9007199254740991"] {
        assert!(text.contains(needle), "no vector holds {needle}");
    }
    // Multi-byte varints: some payload byte has the continuation bit.
    assert!(
        vectors
            .iter()
            .any(|v| unhex(&v.hex).iter().any(|b| b & 0x80 != 0))
    );
    for root in ["client", "server", "client_datagram", "server_datagram"] {
        assert!(vectors.iter().any(|v| v.root == root), "{root}");
    }
}

/// The refusal rule of `UPDATE_GOLDEN`: adding is fine; changing bytes or JSON, changing
/// the root or dropping a vector is refused.
#[test]
fn regeneration_refuses_to_change_existing_vectors() {
    let v = |name: &str, json: &str, hex: &str| Vector {
        name: name.into(),
        root: "client".into(),
        json: json.into(),
        hex: hex.into(),
    };
    let existing = [v("a", r#"{"A":{"x":1,"y":2}}"#, "0001")];
    // Same vector (JSON key order does not matter) plus a new one: accepted.
    assert_eq!(
        may_replace(
            &existing,
            &[
                v("a", r#"{"A":{"y":2,"x":1}}"#, "0001"),
                v("b", "\"B\"", "01")
            ]
        ),
        Ok(())
    );
    let err = may_replace(&existing, &[v("a", r#"{"A":{"x":1,"y":2}}"#, "0002")]).unwrap_err();
    assert!(err.contains("a: bytes 0001 -> 0002"), "{err}");
    let err = may_replace(&existing, &[v("a", r#"{"A":{"x":1}}"#, "0001")]).unwrap_err();
    assert!(err.contains("a: JSON"), "{err}");
    let err = may_replace(&existing, &[v("b", "\"B\"", "01")]).unwrap_err();
    assert!(err.contains("a: dropped"), "{err}");
    let mut moved = existing[0].clone();
    moved.root = "server".into();
    let err = may_replace(&existing, &[moved]).unwrap_err();
    assert!(err.contains("a: root client -> server"), "{err}");
    // And the renderer writes what the parser reads.
    let rendered = render(PROTOCOL_VERSION, &existing);
    assert_eq!(
        parse(&rendered),
        (u64::from(PROTOCOL_VERSION), existing.to_vec())
    );
}

/// `UPDATE_GOLDEN` in a directory: a changed encoding is refused within a version (the
/// file is left as it was), and written as a new file when the version changed (the old
/// file is kept).
#[test]
fn update_writes_a_new_file_for_a_new_version_and_keeps_the_old_one() {
    let dir = std::env::temp_dir().join(format!("pixsim-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let v = |hex: &str| Vector {
        name: "a".into(),
        root: "client".into(),
        json: "\"A\"".into(),
        hex: hex.into(),
    };
    update(&dir, 7, &[v("00")]).unwrap();
    let v7 = std::fs::read_to_string(dir.join("v7.json")).unwrap();
    let err = update(&dir, 7, &[v("01")]).unwrap_err();
    assert!(err.contains("a: bytes 00 -> 01"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("v7.json")).unwrap(), v7);
    update(&dir, 8, &[v("01")]).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("v7.json")).unwrap(), v7);
    assert_eq!(
        parse(&std::fs::read_to_string(dir.join("v8.json")).unwrap()),
        (8, vec![v("01")])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
