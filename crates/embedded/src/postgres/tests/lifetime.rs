//! How long the server lives: owned servers die with the process (not with the thread
//! that started them), detached ones outlive it. Each test runs a child process (this
//! test binary, `helper_child_process`) that starts the server.

use super::*;

/// Child-process half of the lifetime tests below: starts postgres from a short-lived
/// thread (like a tokio blocking-pool thread), prints `PID PORT`, then sleeps.
#[test]
#[ignore = "helper, run by other tests in a child process"]
fn helper_child_process() {
    let Some(data) = std::env::var_os("EMBEDDED_TEST_CHILD_DATA") else {
        return;
    };
    let detached = std::env::var_os("EMBEDDED_TEST_CHILD_DETACHED").is_some();
    let pg = std::thread::spawn(move || {
        let mut o = opts(Path::new(&data));
        if detached {
            o.lifetime = Lifetime::Detached;
        }
        EmbeddedPostgres::start(o).unwrap()
    })
    .join()
    .unwrap();
    println!("PGINFO {} {}", pg.pid(), pg.port());
    if detached {
        drop(pg);
        return;
    }
    std::thread::sleep(Duration::from_secs(2)); // spawning thread is long gone
    println!("PGALIVE {}", sys::pid_alive(pg.pid() as i32));
    std::thread::sleep(Duration::from_secs(600));
}

/// Kills the helper process if a test assertion fails before it is reaped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_helper(
    data: &Path,
    detached: bool,
) -> (KillOnDrop, std::io::BufReader<std::process::ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "postgres::tests::lifetime::helper_child_process",
        "--ignored",
        "--nocapture",
    ])
    .env("EMBEDDED_TEST_CHILD_DATA", data)
    .stdout(Stdio::piped());
    if detached {
        cmd.env("EMBEDDED_TEST_CHILD_DETACHED", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    (KillOnDrop(child), out)
}

fn read_tagged(out: &mut impl std::io::BufRead, tag: &str) -> Vec<String> {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "helper ended before {tag}"
        );
        if let Some(rest) = line.trim().strip_prefix(tag) {
            return rest.split_whitespace().map(str::to_owned).collect();
        }
    }
}

#[test]
fn owned_dies_with_sigkilled_parent_not_with_spawning_thread() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let (mut child, mut out) = spawn_helper(&data, false);
    let info = read_tagged(&mut out, "PGINFO");
    let pid: i32 = info[0].parse().unwrap();
    assert_eq!(read_tagged(&mut out, "PGALIVE"), ["true"]);
    assert_eq!(status(&data), Some(info[1].parse().unwrap()));
    child.0.kill().unwrap(); // SIGKILL: no Drop runs
    child.0.wait().unwrap();
    assert!(
        sys::wait_gone(pid, Duration::from_secs(15)),
        "postgres outlived its parent"
    );
    assert_eq!(status(&data), None);
}

#[test]
fn detached_outlives_its_process() {
    let tmp = state_dir();
    let data = tmp.path().join("pgdata");
    let (mut child, mut out) = spawn_helper(&data, true);
    let info = read_tagged(&mut out, "PGINFO");
    let pid: i32 = info[0].parse().unwrap();
    assert!(child.0.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    assert!(sys::pid_alive(pid));
    assert_eq!(status(&data), Some(info[1].parse().unwrap()));
    assert!(stop_dir(&data).unwrap());
    assert!(!sys::pid_alive(pid));
}
