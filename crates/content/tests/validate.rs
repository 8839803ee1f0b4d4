//! Validation tests: the demo passes; every fixture under `tests/fixtures/` fails with exactly
//! the report in its `expected.txt` (re-record with `UPDATE_EXPECTED=1`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// Every node kind, as the loader names it (serde's list of `NodeKind` variants).
fn node_kinds() -> Vec<String> {
    let err = toml::from_str::<domain::narrative::Node>("id = 'x'\nkind = '?'")
        .expect_err("'?' is no node kind")
        .to_string();
    let (_, list) = err
        .split_once("expected one of ")
        .expect("serde lists the variants");
    list.trim()
        .split(", ")
        .map(|k| k.trim_matches('`').to_string())
        .collect()
}

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes")
}

#[test]
fn demo_is_valid() {
    let report = content::validate_path(demo_dir());
    assert!(report.is_ok(), "demo story invalid:\n{report}");
    let c = content::load_dir(demo_dir()).unwrap();
    assert!(c.scenes.len() >= 3);
    let nodes: usize = c.scenes.values().map(|s| s.nodes.len()).sum();
    assert!(nodes >= 20, "only {nodes} nodes");
    let kinds: std::collections::BTreeSet<&str> = c
        .scenes
        .values()
        .flat_map(|s| s.nodes.iter().map(|n| n.kind.name()))
        .collect();
    let every_kind = node_kinds();
    let every_kind: std::collections::BTreeSet<&str> =
        every_kind.iter().map(String::as_str).collect();
    assert_eq!(kinds, every_kind, "demo must use every node kind");
}

#[test]
fn fixtures_report_precise_problems() {
    // Paths in reports are relative to the crate directory.
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("tests/fixtures")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 15);
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut failures = Vec::new();
    for dir in dirs {
        let report = content::validate_path(&dir);
        assert!(!report.is_ok(), "{} unexpectedly valid", dir.display());
        let got = report.to_string();
        let expected_path = dir.join("expected.txt");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- got\n{got}",
                dir.display()
            ));
        }
        assert!(content::load_dir(&dir).is_err());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn single_file_is_validated_in_context() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let r = content::validate_path("tests/fixtures/dangling_edge/main.toml");
    assert_eq!(
        r.to_string(),
        "tests/fixtures/dangling_edge/main.toml: node 'start': edge 'bad' points to missing node 'nope'\n"
    );
}

/// Broken copies of the demo fail with a precise message.
#[test]
fn broken_demo_copies() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "gallery.toml",
            "to = \"got_card\"\non = \"success\"",
            "to = \"nowhere\"\non = \"success\"",
            "gallery.toml: node 'sneak': edge 'sneak_ok' points to missing node 'nowhere'",
        ),
        (
            "gallery.toml",
            "var.alarm >= 2",
            "var.alarms >= 2",
            "gallery.toml: node 'alarm_check': edge 'too_loud' condition: 'var.alarms >= 2': undefined variable 'alarms'",
        ),
        (
            "gallery.toml",
            "game = \"reflex\"",
            "game = \"pong\"",
            "gallery.toml: node 'sneak': unknown mini-game 'pong' (known: reflex, skill_check)",
        ),
        (
            "vault.toml",
            "values = { loot = \"0\" }",
            "values = { loot = \"'none'\" }",
            "vault.toml: node 'jammed': return value 'loot' is string, declared int",
        ),
        (
            "gallery.toml",
            "args = { alarm = \"var.alarm\" }",
            "args = { }",
            "gallery.toml: node 'to_vault': call does not bind parameter 'alarm' (int) of scene 'vault'",
        ),
        (
            "gallery.toml",
            "{ op = \"give\", item = \"keycard\" }",
            "{ op = \"give\", item = \"keycards\" }",
            "gallery.toml: node 'got_card': action effect #1: undefined item 'keycards'",
        ),
        (
            "epilogue.toml",
            "axis = \"chemistry\"",
            "axis = \"passion\"",
            "epilogue.toml: node 'tip': action effect #2: stat 'relationship' has no axis 'passion'",
        ),
    ];
    for (i, (file, from, to, msg)) in cases.iter().enumerate() {
        let tmp =
            std::env::temp_dir().join(format!("pixsim-broken-demo-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        for e in std::fs::read_dir(demo_dir()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, tmp.join(p.file_name().unwrap())).unwrap();
            }
        }
        let path = tmp.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "case {i}: '{from}' not in {file}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let report = content::validate_path(&tmp).to_string();
        let expected = format!("{}/{msg}", tmp.display());
        assert!(
            report.lines().any(|l| l == expected),
            "case {i}: expected\n{expected}\ngot\n{report}"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

#[test]
fn watcher_detects_changes_and_keeps_reporting() {
    let tmp = std::env::temp_dir().join(format!("pixsim-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    for e in std::fs::read_dir(demo_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, tmp.join(p.file_name().unwrap())).unwrap();
        }
    }
    let mut w = content::Watcher::new(&tmp);
    assert!(w.poll().is_none());
    std::fs::write(tmp.join("broken.toml"), "id = 3").unwrap();
    let r = w.poll().unwrap();
    assert!(r.is_err());
    assert!(w.poll().is_none());
    std::fs::remove_file(tmp.join("broken.toml")).unwrap();
    assert!(w.poll().unwrap().is_ok());
    std::fs::remove_dir_all(&tmp).unwrap();
}
