//! Adding a node kind does not build until every place that must decide about it does.
//!
//! The test copies the crates that match on `NodeKind` (domain, content, sim) into a scratch
//! workspace (same `Cargo.lock`, dependencies and lints), checks that the copy builds, adds a
//! throwaway variant `Throwaway {}` to `NodeKind`, and runs `cargo check` again. Each round,
//! the compiler's non-exhaustive-match errors (E0004) are recorded and their suggested arms
//! (`Throwaway {} => todo!()`) applied, so that the crates depending on those files get
//! checked too; the rounds end when the copy builds again. The files named must be exactly
//! [`DECISION_POINTS`]: that list is where a new node kind must decide (content shape in
//! domain, validation in content, behaviour in sim).
//!
//! Cost: `cargo check` only, on the running build's own target directory (`cargo test`
//! holds its lock only while it builds, so the nested cargo does not wait on it), so the
//! dependencies checked by `make lint` or an earlier run are reused and only the three
//! copied crates are checked (seconds). The copy itself lives in
//! `<target>/scratch-node-kind/ws`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files where the compiler says a new node kind must be handled, by crate. Update this
/// list when such a match moves: it documents where a new kind decides.
const DECISION_POINTS: &[&str] = &[
    // domain: the kind's name, what it calls/returns/generates, which saved waits it resumes.
    "crates/domain/src/narrative/scene.rs",
    "crates/domain/src/narrative/save.rs",
    // content: validation, one module per kind, dispatched here.
    "crates/content/src/validate/nodes/mod.rs",
    // sim: the kind's behaviour, one module per kind, dispatched here.
    "crates/sim/src/nodes/mod.rs",
];

/// The crates copied; each must have at least one decision point.
const CRATES: &[&str] = &["domain", "content", "sim"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The target dir of the running build.
fn target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |t| root.join(t))
}

/// `<target>/scratch-node-kind`, where the copy is made.
fn scratch_dir() -> PathBuf {
    target_dir().join("scratch-node-kind")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The real root manifest with only the copied crates as members.
fn scratch_manifest(root_manifest: &str) -> String {
    let mut out = String::new();
    let mut lines = root_manifest.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("members = [") {
            out.push_str("members = [");
            for c in CRATES {
                out.push_str(&format!("\"crates/{c}\", "));
            }
            out.push_str("]\n");
            for l in lines.by_ref() {
                if l.trim() == "]" {
                    break;
                }
            }
        } else if !line.starts_with("default-members") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Lays out the scratch workspace afresh and returns its root.
fn scratch_workspace() -> PathBuf {
    let root = workspace_root();
    let ws = scratch_dir().join("ws");
    let _ = std::fs::remove_dir_all(&ws);
    for c in CRATES {
        copy_dir(&root.join("crates").join(c), &ws.join("crates").join(c));
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    std::fs::write(ws.join("Cargo.toml"), scratch_manifest(&manifest)).unwrap();
    std::fs::copy(root.join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    ws
}

/// Adds `Throwaway {}` as the first variant of `NodeKind`.
fn add_throwaway_kind(ws: &Path) {
    let path = ws.join("crates/domain/src/narrative/scene.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let anchor = "pub enum NodeKind {\n";
    assert!(text.contains(anchor), "NodeKind not found in scene.rs");
    let text = text.replacen(
        anchor,
        &format!("{anchor}    /// A throwaway kind.\n    Throwaway {{}},\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
}

/// One error from `cargo check --message-format=json`.
struct CompileError {
    code: Option<String>,
    file: String,
    rendered: String,
    /// Suggested replacements: (file, byte range, text).
    fixes: Vec<(String, usize, usize, String)>,
}

/// Runs `cargo check` in `ws`; returns its errors (empty when it builds).
fn check(ws: &Path) -> Vec<CompileError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(ws)
        .args([
            "check",
            "--offline",
            "--keep-going",
            "--message-format=json",
        ])
        .arg("--target-dir")
        .arg(target_dir())
        .env_remove("CARGO_TARGET_DIR")
        // Plain rustc, as in `make test`: under `make ci` clippy wraps rustc with
        // warnings denied, and its lints on the scratch copy are not what this test reads.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTFLAGS");
    for c in CRATES {
        cmd.args(["-p", c]);
    }
    let out = cmd.output().expect("run cargo check");
    let mut errors = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let m = &msg["message"];
        if msg["reason"] != "compiler-message" || m["level"] != "error" {
            continue;
        }
        let primary = m["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["is_primary"] == true));
        let mut fixes = Vec::new();
        for child in m["children"].as_array().into_iter().flatten() {
            for s in child["spans"].as_array().into_iter().flatten() {
                if let Some(text) = s["suggested_replacement"].as_str() {
                    fixes.push((
                        s["file_name"].as_str().unwrap().to_string(),
                        s["byte_start"].as_u64().unwrap() as usize,
                        s["byte_end"].as_u64().unwrap() as usize,
                        text.to_string(),
                    ));
                }
            }
        }
        errors.push(CompileError {
            code: m["code"]["code"].as_str().map(str::to_string),
            file: primary.map_or_else(String::new, |s| {
                s["file_name"].as_str().unwrap_or_default().to_string()
            }),
            rendered: m["rendered"].as_str().unwrap_or_default().to_string(),
            fixes,
        });
    }
    assert!(
        errors.is_empty() == out.status.success(),
        "cargo check failed without a compiler error:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    errors
}

/// Applies suggested replacements, last first in each file.
fn apply(ws: &Path, fixes: &mut [(String, usize, usize, String)]) {
    fixes.sort_by(|a, b| (&a.0, b.1).cmp(&(&b.0, a.1)));
    let mut files: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for (file, start, end, text) in fixes.iter() {
        let bytes = files
            .entry(file)
            .or_insert_with(|| std::fs::read(ws.join(file)).unwrap());
        bytes.splice(*start..*end, text.bytes());
    }
    for (file, bytes) in files {
        std::fs::write(ws.join(file), bytes).unwrap();
    }
}

#[test]
fn a_new_node_kind_fails_to_build_at_each_decision_point() {
    let started = std::time::Instant::now();
    let ws = scratch_workspace();
    let errors = check(&ws);
    assert!(
        errors.is_empty(),
        "the unmodified copy does not build:\n{}",
        errors
            .iter()
            .map(|e| e.rendered.as_str())
            .collect::<String>()
    );

    add_throwaway_kind(&ws);
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    for round in 1.. {
        assert!(
            round <= CRATES.len() + 1,
            "still failing after {round} rounds"
        );
        let errors = check(&ws);
        if errors.is_empty() {
            break;
        }
        let mut fixes = Vec::new();
        for e in errors {
            assert_eq!(
                e.code.as_deref(),
                Some("E0004"),
                "a new kind should only cause non-exhaustive matches:\n{}",
                e.rendered
            );
            assert!(!e.fixes.is_empty(), "no suggested arm:\n{}", e.rendered);
            *named.entry(e.file).or_default() += 1;
            fixes.extend(e.fixes);
        }
        apply(&ws, &mut fixes);
    }

    for c in CRATES {
        let prefix = format!("crates/{c}/");
        assert!(
            named.keys().any(|f| f.starts_with(&prefix)),
            "no match in {c} decides about a new node kind: {named:?}"
        );
    }
    let files: BTreeSet<&str> = named.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = DECISION_POINTS.iter().copied().collect();
    assert_eq!(
        files, expected,
        "the files where a new node kind must decide changed (E0004 count per file: {named:?}); \
         update DECISION_POINTS"
    );
    eprintln!(
        "new node kind: {} decisions in {} files, checked in {:?}",
        named.values().sum::<usize>(),
        named.len(),
        started.elapsed()
    );
}
