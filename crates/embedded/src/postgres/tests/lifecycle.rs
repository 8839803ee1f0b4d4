//! Start, restart, adoption and stop of a cluster; data directories that are refused.

use super::*;

#[test]
fn owned_start_vector_stop() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(pg.freshly_initialized());
    assert!(!pg.adopted());
    assert_ne!(pg.port(), 0);
    let password = fs::read_to_string(pg.password_file()).unwrap();
    assert_eq!(
        pg.url("app"),
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/app",
            password.trim(),
            pg.port()
        )
    );
    assert_eq!(status(&data), Some(pg.port()));
    // Exactly the command from the brief, with the password.
    let out = Command::new(pg.pginstall().join("bin/psql"))
        .env("PGPASSWORD", password.trim())
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", "postgres", "-A", "-t", "-c"])
        .arg("CREATE EXTENSION vector; SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last().unwrap().trim(), "1", "{stdout}");
    assert!(psql(&pg, "SHOW fsync") == "off");
    assert!(psql(&pg, "SHOW max_connections") == "200");
    assert!(psql(&pg, "SHOW server_version").starts_with("18."));
    if sys::is_root() {
        // The server must not run as root.
        let uid = fs::metadata(format!("/proc/{}", pg.pid())).unwrap().uid();
        assert_ne!(uid, 0);
    }
    let pid = pg.pid();
    assert!(proc_exists(pid));
    pg.stop().unwrap();
    assert!(
        !proc_exists(pid),
        "postgres pid {pid} still exists after stop"
    );
    assert_eq!(status(&data), None);
    assert!(!data.join("postmaster.pid").exists());
}

#[test]
fn restart_reuses_data_dir_and_drop_stops() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(pg.freshly_initialized());
    psql(
        &pg,
        "CREATE TABLE keep_me (v int); INSERT INTO keep_me VALUES (42)",
    );
    let pid = pg.pid();
    drop(pg);
    assert!(!proc_exists(pid));

    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(
        !pg.freshly_initialized(),
        "second start must not initdb again"
    );
    assert!(!pg.adopted());
    assert_eq!(psql(&pg, "SELECT v FROM keep_me"), "42");
    let pid = pg.pid();
    drop(pg);
    assert!(!proc_exists(pid));
}

#[test]
fn stale_postmaster_pid_is_removed() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    let port = pg.port();
    pg.stop().unwrap();

    // A pid that is certainly dead: a reaped child of ours.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let fake = format!(
        "{dead_pid}\n{}\n1700000000\n{port}\n\n127.0.0.1\n  1234567  7\nready   \n",
        data.display()
    );
    fs::write(data.join("postmaster.pid"), &fake).unwrap();
    assert_eq!(status(&data), None);
    let pg = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(!pg.adopted());
    assert_eq!(psql(&pg, "SELECT 1"), "1");
    pg.stop().unwrap();

    // A live pid that is not postgres (this test process) is stale too.
    let fake = fake.replacen(&dead_pid.to_string(), &std::process::id().to_string(), 1);
    fs::write(data.join("postmaster.pid"), fake).unwrap();
    assert_eq!(status(&data), None);
    assert!(!stop_dir(&data).unwrap());
    assert!(!data.join("postmaster.pid").exists());
}

#[test]
fn detached_survives_drop_and_is_adopted() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let mut o = opts(&data);
    o.lifetime = Lifetime::Detached;
    let pg = EmbeddedPostgres::start(o.clone()).unwrap();
    let (pid, port) = (pg.pid(), pg.port());
    drop(pg);
    assert!(
        sys::pid_alive(pid as i32),
        "detached postgres died with its handle"
    );
    assert_eq!(status(&data), Some(port));

    // A second start (e.g. another test process) adopts it; dropping leaves it running.
    let again = EmbeddedPostgres::start(o).unwrap();
    assert!(again.adopted());
    assert_eq!((again.pid(), again.port()), (pid, port));
    assert_eq!(psql(&again, "SELECT 2"), "2");
    drop(again);
    assert_eq!(status(&data), Some(port));

    assert!(stop_dir(&data).unwrap());
    assert!(!sys::pid_alive(pid as i32));
    assert_eq!(status(&data), None);
    assert!(!stop_dir(&data).unwrap());
}

/// Item 9 of issue #18: `pixsim-server migrate` on the state dir of a running server
/// adopted its cluster with an `Owned` handle and stopped it on exit, taking the
/// server's database away. An adopter never stops a cluster it did not start.
#[test]
fn adopter_never_stops_the_cluster() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    // The server's cluster, started here (Owned) ...
    let server = EmbeddedPostgres::start(opts(&data)).unwrap();
    let pid = server.pid();
    assert!(!server.adopted());
    // ... and a CLI command adopting it, with an Owned handle of its own.
    let cli = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(cli.adopted());
    assert_eq!((cli.pid(), cli.port()), (pid, server.port()));
    assert_eq!(cli.url("postgres"), server.url("postgres"));
    assert_eq!(psql(&cli, "SELECT 3"), "3");
    drop(cli);
    assert!(
        sys::pid_alive(pid as i32),
        "the adopter's drop stopped the cluster"
    );
    assert_eq!(status(&data), Some(server.port()));
    assert_eq!(psql(&server, "SELECT 4"), "4");
    // An explicit stop through an adopted handle leaves it running too.
    let cli = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(cli.adopted());
    cli.stop().unwrap();
    assert!(
        sys::pid_alive(pid as i32),
        "the adopter's stop() stopped the cluster"
    );
    assert_eq!(psql(&server, "SELECT 5"), "5");
    // The process that started it stops it.
    drop(server);
    assert!(!sys::pid_alive(pid as i32));
    assert_eq!(status(&data), None);

    // Same for a detached cluster adopted by an Owned handle.
    let mut o = opts(&data);
    o.lifetime = Lifetime::Detached;
    let first = EmbeddedPostgres::start(o).unwrap();
    let pid = first.pid();
    drop(first);
    let owned = EmbeddedPostgres::start(opts(&data)).unwrap();
    assert!(owned.adopted());
    drop(owned);
    assert!(sys::pid_alive(pid as i32));
    assert!(stop_dir(&data).unwrap());
    assert!(!sys::pid_alive(pid as i32));
}

#[test]
fn parallel_starts_share_one_cluster() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let mut o = opts(&data);
            o.lifetime = Lifetime::Detached;
            std::thread::spawn(move || EmbeddedPostgres::start(o).unwrap())
        })
        .collect();
    let pgs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(pgs.iter().filter(|p| !p.adopted()).count(), 1);
    assert!(pgs.iter().all(|p| p.port() == pgs[0].port()));
    drop(pgs);
    assert!(stop_dir(&data).unwrap());
}

#[test]
fn non_empty_foreign_dir_is_refused() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("precious.txt"), "x").unwrap();
    let err = EmbeddedPostgres::start(opts(&data)).unwrap_err();
    assert!(matches!(err, EmbeddedError::DataDir { .. }), "{err}");
    assert!(data.join("precious.txt").exists());
}

#[test]
fn run_as_explicit_user() {
    if !sys::is_root() {
        let mut o = opts(Path::new("/nonexistent/pgdata"));
        o.run_as = Some("nobody".into());
        let err = EmbeddedPostgres::start(o).unwrap_err();
        assert!(matches!(err, EmbeddedError::User(_)), "{err}");
        return;
    }
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let mut o = opts(&data);
    o.run_as = Some("no-such-user-xyz".into());
    let err = EmbeddedPostgres::start(o.clone()).unwrap_err();
    assert!(err.to_string().contains("no-such-user-xyz"), "{err}");

    // initdb as the default user, then switch to `nobody`: ownership follows.
    EmbeddedPostgres::start(opts(&data))
        .unwrap()
        .stop()
        .unwrap();
    let nobody = sys::lookup_user("nobody").unwrap();
    o.run_as = Some("nobody".into());
    let pg = EmbeddedPostgres::start(o).unwrap();
    assert_eq!(fs::metadata(&data).unwrap().uid(), nobody.uid);
    assert_eq!(
        fs::metadata(data.join("PG_VERSION")).unwrap().uid(),
        nobody.uid
    );
    let proc_uid = fs::metadata(format!("/proc/{}", pg.pid())).unwrap().uid();
    assert_eq!(proc_uid, nobody.uid);
    assert_eq!(psql(&pg, "SELECT current_user"), "postgres");
    pg.stop().unwrap();
}

#[test]
fn untraversable_parent_is_a_clear_error() {
    if !sys::is_root() {
        return; // only relevant when switching to an unprivileged user
    }
    let tmp = state_dir();
    let locked = tmp.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
    let err = EmbeddedPostgres::start(opts(&locked.join("pgdata"))).unwrap_err();
    match &err {
        EmbeddedError::NotTraversable { dir, .. } => assert_eq!(dir, &locked),
        other => panic!("unexpected error: {other}"),
    }
    eprintln!("{err}");
    assert!(err.to_string().contains(&locked.display().to_string()));
}
