//! Golden vectors: `golden/v{PROTOCOL_VERSION}.json` pins the exact bytes (postcard
//! payload, no frame prefix) and the JSON encoding of the sample messages of
//! `support/samples.rs`. For every vector, encoding the value gives the hex, decoding the
//! hex gives the value, and the JSON encoding equals (and decodes from) the `json` field.
//!
//! `UPDATE_GOLDEN=1 cargo test -p protocol --test golden` rewrites the file. It may add
//! vectors, but refuses to change or drop an existing one: an encoding change needs a new
//! `PROTOCOL_VERSION`, which writes a new `golden/v{N}.json` and keeps the old file. The
//! one exception is the compatible change of `docs/protocol.md` §14, a field appended to
//! a server message or to an event: with a raised `PROTOCOL_REVISION`, an existing server
//! vector may grow at the end of the message or of its embedded event, its JSON gaining
//! keys, every old byte and value kept (an older client reads exactly what it read).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use protocol::v2::{ClientDatagram, ServerDatagram, ServerMessage};
use protocol::{PROTOCOL_REVISION, PROTOCOL_VERSION, to_json};
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

/// The file's text for `version` and `revision`: one field per line, the JSON encoding on
/// one line.
fn render(version: u16, revision: u16, vectors: &[Vector]) -> String {
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
        "{{\n  \"protocol_version\": {version},\n  \"revision\": {revision},\n  \"vectors\": [\n{}\n  ]\n}}\n",
        items.join(",\n")
    )
}

/// Parses a golden file: its protocol version, revision and vectors (JSON re-encoded
/// compactly).
fn parse(text: &str) -> (u64, u64, Vec<Vector>) {
    let file: Value = serde_json::from_str(text).expect("golden file is JSON");
    let version = file["protocol_version"].as_u64().expect("protocol_version");
    let revision = file["revision"].as_u64().unwrap_or(0);
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
    (version, revision, vectors)
}

/// Whether `generated` may replace `existing` within one protocol version: every existing
/// vector is still generated, with the same root, bytes and JSON (compared as values), or,
/// when the revision was raised (`revised`), a server vector only grew compatibly
/// ([`appended`]). New vectors may be added.
fn may_replace(existing: &[Vector], generated: &[Vector], revised: bool) -> Result<(), String> {
    let mut problems = Vec::new();
    for old in existing {
        match generated.iter().find(|g| g.name == old.name) {
            None => problems.push(format!("{}: dropped", old.name)),
            Some(new) => {
                if new.root != old.root {
                    problems.push(format!("{}: root {} -> {}", old.name, old.root, new.root));
                }
                let (a, b): (Value, Value) = (
                    serde_json::from_str(&old.json).unwrap(),
                    serde_json::from_str(&new.json).unwrap(),
                );
                let grew = revised
                    && new.root == "server"
                    && appended(&unhex(&old.hex), &unhex(&new.hex))
                    && json_extends(&a, &b);
                if new.hex != old.hex && !grew {
                    problems.push(format!("{}: bytes {} -> {}", old.name, old.hex, new.hex));
                }
                if a != b && !grew {
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
             (an encoding change needs a new PROTOCOL_VERSION; a field appended to a \
             server message or event needs a raised PROTOCOL_REVISION):\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// The LEB128 varint at the start of `bytes` and its length.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// An `Event` payload split as head (tag, seq, at_ms), embedded event bytes, rest.
fn split_event(p: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (tag, mut at) = varint(p)?;
    if tag != 5 {
        return None;
    }
    for _ in 0..2 {
        at += varint(p.get(at..)?)?.1;
    }
    let head = p.get(..at)?;
    let (len, n) = varint(p.get(at..)?)?;
    let start = at + n;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some((head, p.get(start..end)?, p.get(end..)?))
}

/// Whether the server payload `new` is `old` with fields appended: at the end of the
/// message, or (for an `Event`) at the end of its embedded event, whose length prefix then
/// grows. An older client, which ignores trailing bytes, reads the same values from both.
fn appended(old: &[u8], new: &[u8]) -> bool {
    if new.starts_with(old) {
        return true;
    }
    match (split_event(old), split_event(new)) {
        (Some((h0, e0, r0)), Some((h1, e1, r1))) => {
            h0 == h1 && e1.starts_with(e0) && r1.starts_with(r0)
        }
        _ => false,
    }
}

/// Whether JSON value `new` holds everything `old` does: the same scalars and arrays
/// (element by element), objects with every old key (and maybe new ones).
fn json_extends(old: &Value, new: &Value) -> bool {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| json_extends(v, w))),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| json_extends(v, w))
        }
        (a, b) => a == b,
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
fn update(
    dir: &std::path::Path,
    version: u16,
    revision: u16,
    generated: &[Vector],
) -> Result<(), String> {
    let path = dir.join(format!("v{version}.json"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let (file_version, file_revision, existing) = parse(&text);
        if file_version != u64::from(version) {
            return Err(format!("{} holds version {file_version}", path.display()));
        }
        if file_revision > u64::from(revision) {
            return Err(format!(
                "{} holds a later revision {file_revision}",
                path.display()
            ));
        }
        may_replace(&existing, generated, u64::from(revision) > file_revision)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(&path, render(version, revision, generated)).map_err(|e| e.to_string())
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

#[test]
fn checked_in_vectors_are_generated_from_the_samples() {
    let generated = generated();
    if updating() {
        update(
            &golden_dir(),
            PROTOCOL_VERSION,
            PROTOCOL_REVISION,
            &generated,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let path = golden_path(PROTOCOL_VERSION);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != render(PROTOCOL_VERSION, PROTOCOL_REVISION, &generated) {
        let (_, revision, existing) = parse(&checked_in);
        // Say whether a regeneration would be accepted.
        let revised = u64::from(PROTOCOL_REVISION) > revision;
        let verdict = match may_replace(&existing, &generated, revised) {
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
        true => render(PROTOCOL_VERSION, PROTOCOL_REVISION, &generated()),
        false => std::fs::read_to_string(golden_path(PROTOCOL_VERSION)).expect("golden file"),
    };
    let (version, _, vectors) = parse(&text);
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
            ],
            false
        ),
        Ok(())
    );
    let err = may_replace(
        &existing,
        &[v("a", r#"{"A":{"x":1,"y":2}}"#, "0002")],
        false,
    )
    .unwrap_err();
    assert!(err.contains("a: bytes 0001 -> 0002"), "{err}");
    let err = may_replace(&existing, &[v("a", r#"{"A":{"x":1}}"#, "0001")], false).unwrap_err();
    assert!(err.contains("a: JSON"), "{err}");
    let err = may_replace(&existing, &[v("b", "\"B\"", "01")], false).unwrap_err();
    assert!(err.contains("a: dropped"), "{err}");
    let mut moved = existing[0].clone();
    moved.root = "server".into();
    let err = may_replace(&existing, &[moved], false).unwrap_err();
    assert!(err.contains("a: root client -> server"), "{err}");
    // And the renderer writes what the parser reads.
    let rendered = render(PROTOCOL_VERSION, 3, &existing);
    assert_eq!(
        parse(&rendered),
        (u64::from(PROTOCOL_VERSION), 3, existing.to_vec())
    );
}

/// With a raised revision, a server vector may grow by an appended field: at the end of
/// the message, or at the end of an `Event`'s embedded event (its length prefix grows).
/// Any other change stays refused, and without a raised revision even an append is.
#[test]
fn a_raised_revision_accepts_appended_fields_only() {
    let v = |root: &str, json: &str, hex: &str| Vector {
        name: "a".into(),
        root: root.into(),
        json: json.into(),
        hex: hex.into(),
    };
    // Pong { nonce: 1, server_time_ms: 2, world_time_ms: None } and a field after it.
    let pong = [v("server", r#"{"Pong":{"n":1}}"#, "010102")];
    let grown = [v("server", r#"{"Pong":{"n":1,"extra":true}}"#, "01010201")];
    assert_eq!(may_replace(&pong, &grown, true), Ok(()));
    assert!(may_replace(&pong, &grown, false).is_err());
    // A changed byte, a changed value or a dropped key is still refused.
    let changed = [v("server", r#"{"Pong":{"n":1,"extra":true}}"#, "01010301")];
    assert!(may_replace(&pong, &changed, true).is_err());
    let lost = [v("server", r#"{"Pong":{"extra":true}}"#, "01010201")];
    assert!(may_replace(&pong, &lost, true).is_err());
    // Client messages never grow: the server reads them strictly.
    let hello = [v("client", r#"{"H":{}}"#, "0002")];
    let hello2 = [v("client", r#"{"H":{"x":1}}"#, "000201")];
    assert!(may_replace(&hello, &hello2, true).is_err());
    // Event { seq: 3, at_ms: 4, event: LevelUp { level: 2, xp: 9 } }: tag 5, seq 3, at_ms
    // zigzag 8, byte string of 3 (tag 10, 2, zigzag 18); then the event grows by a field.
    let event = [v("server", r#"{"E":{"l":2}}"#, "050308030a0212")];
    let grown = [v("server", r#"{"E":{"l":2,"m":0}}"#, "050308040a021200")];
    assert_eq!(may_replace(&event, &grown, true), Ok(()));
    let other_seq = [v("server", r#"{"E":{"l":2,"m":0}}"#, "050408040a021200")];
    assert!(may_replace(&event, &other_seq, true).is_err());
}

/// `UPDATE_GOLDEN` in a directory: a changed encoding is refused within a version (the
/// file is left as it was), and written as a new file when the version changed (the old
/// file is kept); a later revision in the file than in the code is refused.
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
    update(&dir, 7, 0, &[v("00")]).unwrap();
    let v7 = std::fs::read_to_string(dir.join("v7.json")).unwrap();
    let err = update(&dir, 7, 1, &[v("01")]).unwrap_err();
    assert!(err.contains("a: bytes 00 -> 01"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("v7.json")).unwrap(), v7);
    update(&dir, 7, 2, &[v("00")]).unwrap();
    let err = update(&dir, 7, 1, &[v("00")]).unwrap_err();
    assert!(err.contains("later revision 2"), "{err}");
    update(&dir, 8, 0, &[v("01")]).unwrap();
    assert_eq!(
        parse(&std::fs::read_to_string(dir.join("v7.json")).unwrap()),
        (7, 2, vec![v("00")])
    );
    assert_eq!(
        parse(&std::fs::read_to_string(dir.join("v8.json")).unwrap()),
        (8, 0, vec![v("01")])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
