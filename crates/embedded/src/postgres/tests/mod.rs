//! Tests of the cluster against the real server: one file per concern, helpers here.

use super::datadir::prepare_data_dir;
use super::process::{pg_isready, reap_in_background};
use super::*;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::process::{Child, Stdio};

use crate::pgcmd::as_server_user;

mod auth;
mod lifecycle;
mod lifetime;

/// A temp dir the unprivileged server user can traverse (tempfile makes 0700 dirs).
pub(super) fn state_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    tmp
}

pub(super) fn opts(data: &Path) -> PgOptions {
    PgOptions::new(data).with_test_settings()
}

pub(super) fn psql(pg: &EmbeddedPostgres, sql: &str) -> String {
    let out = pg
        .psql("postgres")
        .args(["-A", "-t", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub(super) fn proc_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
