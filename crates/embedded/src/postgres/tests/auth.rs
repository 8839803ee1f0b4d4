//! Password authentication (issue #18, item 2a): fresh clusters, and `trust` data
//! directories upgraded in place, stopped or running, after interruptions.

use super::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o777
}

/// Non-comment `pg_hba.conf` lines with a `trust` token (a naive check on purpose,
/// independent of the parser in `pgauth`).
fn trust_lines(data: &Path) -> Vec<String> {
    fs::read_to_string(data.join("pg_hba.conf"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().to_owned())
        .filter(|l| l.split_whitespace().any(|t| t == "trust"))
        .collect()
}

/// Runs `SELECT current_user` through `psql` with the given connection string and
/// no password from anywhere else; `Err(stderr)` on failure.
fn psql_with(pginstall: &Path, conninfo: &str) -> Result<String, String> {
    let mut cmd = Command::new(pginstall.join("bin/psql"));
    clear_libpq_env(&mut cmd);
    let out = cmd
        .env("PGPASSFILE", "/dev/null")
        .args([
            "-X",
            "-w",
            "-A",
            "-t",
            "-c",
            "SELECT current_user",
            "-d",
            conninfo,
        ])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn no_password(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")
}

/// Everything the brief asks of a secured cluster.
fn assert_secured(pg: &EmbeddedPostgres) {
    let data = pg.data_dir();
    assert_eq!(trust_lines(data), Vec::<String>::new());
    let err = psql_with(pg.pginstall(), &no_password(pg.port())).unwrap_err();
    assert!(err.contains("password"), "{err}");
    assert_eq!(
        psql_with(pg.pginstall(), &pg.url("postgres")).as_deref(),
        Ok("postgres")
    );
    let wrong = format!("postgres://postgres:wrong@127.0.0.1:{}/postgres", pg.port());
    assert!(psql_with(pg.pginstall(), &wrong).is_err(), "{wrong}");
    let file = pg.password_file();
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    assert_eq!(mode(data), 0o700, "{}", data.display());
    if let Some(user) = sys::resolve_server_user(None).unwrap() {
        assert_eq!(fs::metadata(&file).unwrap().uid(), user.uid);
        assert_eq!(fs::metadata(data).unwrap().uid(), user.uid);
    }
    let password = fs::read_to_string(&file).unwrap();
    let password = password.trim();
    assert!(password.len() >= 32);
    assert!(pg.url("x").contains(password));
    assert!(
        !format!("{pg:?}").contains(password),
        "Debug shows the password"
    );
    assert!(!pg.redacted_url("x").contains(password));
    let log = fs::read_to_string(pg.log_file()).unwrap_or_default();
    assert!(!log.contains(password), "the server log holds the password");
}

/// A data directory as the code before made them: `initdb --auth=trust`.
fn trust_data_dir(data: &Path) -> PathBuf {
    let pginstall = wheel::ensure_pginstall(&crate::default_cache_dir()).unwrap();
    let user = sys::resolve_server_user(None).unwrap();
    fs::DirBuilder::new().mode(0o700).create(data).unwrap();
    prepare_data_dir(data, user.as_ref()).unwrap();
    let mut cmd = Command::new(pginstall.join("bin/initdb"));
    cmd.arg("-D").arg(data).args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
    ]);
    as_server_user(&mut cmd, user.as_ref());
    sys::run_checked(&mut cmd, "").unwrap();
    assert_eq!(trust_lines(data).len(), 6, "initdb --auth=trust as before");
    pginstall
}

/// A detached postgres on a trust data directory, as the code before ran it.
fn run_trust_cluster(pginstall: &Path, data: &Path) -> (i32, u16) {
    let user = sys::resolve_server_user(None).unwrap();
    let port = sys::free_port().unwrap();
    let mut cmd = Command::new(pginstall.join("bin/postgres"));
    cmd.arg("-D").arg(data).arg("-p").arg(port.to_string());
    cmd.args([
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    as_server_user(&mut cmd, user.as_ref());
    sys::set_new_session(&mut cmd);
    let child = cmd.spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    reap_in_background(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(data) != Some(port) || !pg_isready(pginstall, port).unwrap() {
        assert!(Instant::now() < deadline, "trust cluster did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        psql_with(pginstall, &no_password(port)).as_deref(),
        Ok("postgres")
    );
    (pid, port)
}

#[test]
fn fresh_cluster_requires_the_password_in_its_url() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(pg.freshly_initialized());
    assert_eq!(pg.password_file(), tmp.path().join("pgdata.password"));
    assert_secured(&pg);
    let password = fs::read_to_string(pg.password_file()).unwrap();
    let pid = pg.pid();
    pg.stop().unwrap();
    assert!(!sys::pid_alive(pid as i32));

    // The password is generated once: a restart keeps it.
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(!pg.freshly_initialized());
    assert_eq!(fs::read_to_string(pg.password_file()).unwrap(), password);
    assert_secured(&pg);
    pg.stop().unwrap();

    // The password file deleted while the cluster is stopped: a new one is set.
    fs::remove_file(password_file(&data)).unwrap();
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert_secured(&pg);
    assert_ne!(fs::read_to_string(pg.password_file()).unwrap(), password);
    pg.stop().unwrap();
}

#[test]
fn trust_data_dir_is_upgraded_on_start() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    trust_data_dir(&data);
    assert!(!password_file(&data).exists());
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(!pg.freshly_initialized());
    assert!(!pg.adopted());
    assert_secured(&pg);
    let password = fs::read_to_string(pg.password_file()).unwrap();
    pg.stop().unwrap();
    // Idempotent: the next start changes nothing.
    let before = fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert_secured(&pg);
    assert_eq!(
        fs::read_to_string(data.join("pg_hba.conf")).unwrap(),
        before
    );
    assert_eq!(fs::read_to_string(pg.password_file()).unwrap(), password);
    pg.stop().unwrap();
}

#[test]
fn upgrade_interrupted_after_writing_the_password_file_completes() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    trust_data_dir(&data);
    // Interrupted after step 3: the file exists, pg_hba.conf still trusts, the role
    // has no password yet.
    pgauth::write_private_file(
        &password_file(&data),
        b"s3cret-from-an-interrupted-upgrade-0123456789\n",
        None,
    )
    .unwrap();
    // And a temp file of an interrupted pg_hba.conf rewrite.
    fs::write(data.join("pg_hba.conf.tmp"), "junk").unwrap();
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert_secured(&pg);
    assert!(
        pg.url("postgres")
            .contains(":s3cret-from-an-interrupted-upgrade-0123456789@")
    );
    pg.stop().unwrap();
}

/// The shared test cluster today: detached, trust, and many test processes adopting
/// it at once after this change lands.
#[test]
fn running_trust_cluster_is_upgraded_once_by_concurrent_adopters() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let pginstall = trust_data_dir(&data);
    let (pid, port) = run_trust_cluster(&pginstall, &data);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let mut o = opts(&data);
            o.lifetime = Lifetime::Detached;
            std::thread::spawn(move || EmbeddedPostgres::start(o).unwrap())
        })
        .collect();
    let pgs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(pgs.iter().all(|p| p.adopted() && p.pid() == pid as u32));
    assert!(pgs.iter().all(|p| p.url("x") == pgs[0].url("x")));
    assert_secured(&pgs[0]);
    drop(pgs);
    assert_eq!(status(&data), Some(port), "adopters left it running");
    assert!(stop_dir(&data).unwrap());
}

#[test]
fn running_cluster_that_still_trusts_is_reloaded() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let pginstall = trust_data_dir(&data);
    let (_, port) = run_trust_cluster(&pginstall, &data);
    // Interrupted before step 5: password set, file written, pg_hba.conf rewritten,
    // but the server not reloaded, so it still lets anyone in.
    let pw = pgauth::Password::generate().unwrap();
    let out = Command::new(pginstall.join("bin/psql"))
        .args([
            "-X",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &no_password(port),
        ])
        .args([
            "-c",
            &format!("ALTER ROLE postgres PASSWORD '{}'", pw.as_str()),
        ])
        .env("PGPASSFILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pgauth::write_private_file(
        &password_file(&data),
        format!("{}\n", pw.as_str()).as_bytes(),
        None,
    )
    .unwrap();
    let hba = fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    let meta = fs::metadata(data.join("pg_hba.conf")).unwrap();
    pgauth::write_private_file(
        &data.join("pg_hba.conf"),
        crate::hba::without_trust(&hba).as_bytes(),
        Some((meta.uid(), meta.gid())),
    )
    .unwrap();
    assert!(
        psql_with(&pginstall, &no_password(port)).is_ok(),
        "still trusts"
    );

    let mut o = opts(&data);
    o.lifetime = Lifetime::Detached;
    let pg = EmbeddedPostgres::start(o).unwrap();
    assert!(pg.adopted());
    assert_secured(&pg);
    drop(pg);
    assert!(stop_dir(&data).unwrap());
}

#[test]
fn running_cluster_without_its_password_file_is_a_clear_error() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let mut o = opts(&data);
    o.lifetime = Lifetime::Detached;
    let pg = EmbeddedPostgres::start(o.clone()).unwrap();
    let password = fs::read_to_string(pg.password_file()).unwrap();
    drop(pg);
    fs::remove_file(password_file(&data)).unwrap();
    let err = EmbeddedPostgres::start(o.clone()).unwrap_err();
    assert!(matches!(err, EmbeddedError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    // A wrong password: named as such, and not printed.
    pgauth::write_private_file(&password_file(&data), b"wrong\n", None).unwrap();
    let err = EmbeddedPostgres::start(o).unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert!(
        !err.contains("wrong\n") && !err.contains(password.trim()),
        "{err}"
    );
    assert!(stop_dir(&data).unwrap());
}
