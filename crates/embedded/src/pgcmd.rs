//! Low-level pieces shared by the cluster's lifecycle ([`crate::postgres`]) and its
//! password authentication ([`crate::pgauth`]): the superuser's name, the files named
//! after the data directory, and how PostgreSQL's programs are run (as the server user,
//! with no libpq settings inherited from the environment).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sys::User;

/// Superuser created by `initdb` (password authentication on 127.0.0.1).
pub const SUPERUSER: &str = "postgres";

/// `DATA` + suffix, e.g. `/x/pgdata.lock`.
pub(crate) fn sibling(data_dir: &Path, suffix: &str) -> PathBuf {
    let mut s = data_dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes every libpq environment variable, so a command connects (or initialises)
/// only as told on its command line.
pub(crate) fn clear_libpq_env(cmd: &mut Command) {
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGOPTIONS",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGSSLMODE",
        "PGPASSFILE",
        "PGPASSWORD",
        "PGDATA",
    ] {
        cmd.env_remove(var);
    }
}

/// Applies the uid/gid switch (when `user` is set) and a neutral cwd/locale.
pub(crate) fn as_server_user(cmd: &mut Command, user: Option<&User>) {
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
        cmd.env("USER", &user.name).env("LOGNAME", &user.name);
    }
    cmd.current_dir("/").env("LC_ALL", "C");
    clear_libpq_env(cmd);
}
