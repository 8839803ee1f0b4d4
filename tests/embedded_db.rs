//! The embedded PostgreSQL of the real binary, seen from a second command on the same
//! state dir (issue #18): `migrate` and `user create` next to a running server use its
//! database and leave it running (item 9), and that database takes only the password
//! kept in the state dir, which nothing prints (item 2a); a state dir from before,
//! initialised with `trust`, is upgraded in place.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::time::Duration;

use tests::TempDir;

use crate::lifecycle::{admin_token, command, processes_mentioning, serve, signal, wait_until};

async fn ready(http: &str) -> reqwest::StatusCode {
    reqwest::get(format!("{http}/ready"))
        .await
        .unwrap()
        .status()
}

/// SIGKILLs the server if the test fails, so it does not outlive the test run.
struct KillOnPanic(i32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: kill(2) on the pid of our own child process.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_commands_beside_a_running_server_leave_its_database_up() {
    let dir = TempDir::new("adopt");
    let state = dir.0.join("state");
    let needle = state.to_string_lossy().into_owned();
    let data = state.join("postgres");

    let mut run = serve(&state);
    let _guard = KillOnPanic(i32::try_from(run.child.id()).unwrap());
    assert_eq!(ready(&run.http).await, 200);
    let port = embedded::postgres::status(&data).expect("the server's postgres runs");

    // `migrate` on the same state dir: it finds the server's cluster running, uses it,
    // and (before the fix) stopped it on exit, so the server lost its database.
    let out = command(&state).arg("migrate").output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "migrate: {stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");
    assert_eq!(
        embedded::postgres::status(&data),
        Some(port),
        "migrate stopped the running server's database"
    );
    assert_eq!(ready(&run.http).await, 200, "the server lost its database");

    // `user create` too; the server then reads that user from its database.
    let out = command(&state)
        .args(["user", "create", "--email", "root@example.com"])
        .args(["--password", "password123", "--admin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(embedded::postgres::status(&data), Some(port));
    admin_token(&run.http).await;

    // The database wants the password kept in the state dir, and nothing printed it.
    let password_file = embedded::postgres::password_file(&data);
    assert_eq!(password_file, state.join("postgres.password"));
    assert_eq!(mode(&password_file), 0o600);
    assert_eq!(mode(&data), 0o700);
    let password = std::fs::read_to_string(&password_file).unwrap();
    let password = password.trim();
    assert!(password.len() >= 32);
    for text in [&stdout, &stderr] {
        assert!(!text.contains(password), "the password was printed: {text}");
    }
    let open = format!("postgres://postgres@127.0.0.1:{port}/pixsim");
    let refused = <sqlx::PgConnection as sqlx::Connection>::connect(&open).await;
    assert!(refused.is_err(), "connected without a password");
    let url = format!("postgres://postgres:{password}@127.0.0.1:{port}/pixsim");
    let conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await;
    sqlx::Connection::close(conn.unwrap()).await.unwrap();

    // The server, which started it, still stops it.
    signal(&run.child, libc::SIGTERM);
    let status = run.child.wait().unwrap();
    assert!(status.success(), "{status}");
    wait_until("no process after SIGTERM", Duration::from_secs(20), || {
        processes_mentioning(&needle).is_empty()
    });
    assert_eq!(embedded::postgres::status(&data), None);
}

/// Non-comment lines of `pg_hba.conf` with a `trust` token.
fn trust_lines(data: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(data.join("pg_hba.conf"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().to_owned())
        .filter(|l| l.split_whitespace().any(|t| t == "trust"))
        .collect()
}

/// `state/postgres` as every state dir had it before: `initdb --auth=trust`, no password
/// file. Run as `nobody` when root (initdb refuses root; the server takes the directory
/// over for its own user).
fn legacy_trust_state_dir(state: &std::path::Path) {
    use std::os::unix::process::CommandExt;
    let data = state.join("postgres");
    std::fs::create_dir_all(state).unwrap();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&data)
        .unwrap();
    let pginstall = embedded::wheel::ensure_pginstall(&embedded::default_cache_dir()).unwrap();
    let mut cmd = std::process::Command::new(pginstall.join("bin/initdb"));
    cmd.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
    ]);
    cmd.current_dir("/").env("LC_ALL", "C");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let name = std::ffi::CString::new("nobody").unwrap();
        // SAFETY: getpwnam with a valid C string; the result is read at once.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        assert!(!pw.is_null(), "no user nobody");
        // SAFETY: getpwnam returned a valid entry.
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(trust_lines(&data).len(), 6, "a trust data dir as before");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_dir_from_before_is_upgraded_to_password_authentication() {
    let dir = TempDir::new("upgrade");
    let state = dir.0.join("state");
    let needle = state.to_string_lossy().into_owned();
    let data = state.join("postgres");
    legacy_trust_state_dir(&state);

    let out = command(&state).arg("migrate").output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "migrate: {stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");
    assert_eq!(trust_lines(&data), Vec::<String>::new());
    let password_file = embedded::postgres::password_file(&data);
    assert_eq!(mode(&password_file), 0o600);
    assert_eq!(mode(&data), 0o700);
    let password = std::fs::read_to_string(&password_file).unwrap();
    let password = password.trim().to_owned();
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(&password),
            "the password was printed: {text}"
        );
    }

    let mut run = serve(&state);
    let _guard = KillOnPanic(i32::try_from(run.child.id()).unwrap());
    assert_eq!(ready(&run.http).await, 200);
    let port = embedded::postgres::status(&data).unwrap();
    let open = format!("postgres://postgres@127.0.0.1:{port}/pixsim");
    let refused = <sqlx::PgConnection as sqlx::Connection>::connect(&open).await;
    assert!(refused.is_err(), "connected without a password");
    let url = format!("postgres://postgres:{password}@127.0.0.1:{port}/pixsim");
    let conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await;
    sqlx::Connection::close(conn.unwrap()).await.unwrap();
    signal(&run.child, libc::SIGTERM);
    assert!(run.child.wait().unwrap().success());
    wait_until("no process after SIGTERM", Duration::from_secs(20), || {
        processes_mentioning(&needle).is_empty()
    });
}
