//! `pixsim-client play`, the real binary, driven through its stdin and stdout like a
//! person at a terminal: pick a scene, answer the numbered choices and the reflex
//! prompts, quit and resume by session id, and carry on after the server is SIGKILLed
//! and restarted mid-play without printing anything twice.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use game_client::play::{MENU_FOOTER, REFLEX_PROMPT};
use tests::{TempDir, TestServer};

/// Bound on waiting for any one expected line.
const STEP: Duration = Duration::from_secs(60);

pub(crate) fn client_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("pixsim-client");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build --bins`, which `make test` does)",
        bin.display()
    );
    bin
}

/// A child process read line by line.
pub(crate) struct Lines {
    rx: Receiver<String>,
    /// Everything read so far.
    pub(crate) seen: Vec<String>,
}

impl Lines {
    pub(crate) fn of(out: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line; `None` once the process closed its output.
    pub(crate) fn next(&mut self, timeout: Duration) -> Option<String> {
        match self.rx.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!(
                "no output within {timeout:?}; so far:\n{}",
                self.seen.join("\n")
            ),
        }
    }

    /// Reads until a line satisfies `f`, returning it.
    pub(crate) fn until(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {what}; so far:\n{}",
                self.seen.join("\n")
            );
            match self.next(left) {
                Some(line) if f(&line) => return line,
                Some(_) => {}
                None => panic!("output ended before {what}:\n{}", self.seen.join("\n")),
            }
        }
    }
}

/// `pixsim-client play` with piped stdin and stdout.
pub(crate) struct Terminal {
    child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) out: Lines,
}

impl Terminal {
    pub(crate) fn start(args: &[String]) -> Self {
        let mut child = Command::new(client_binary())
            .arg("play")
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("PIXSIM_EMAIL")
            .env_remove("PIXSIM_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = Lines::of(child.stdout.take().unwrap());
        Terminal {
            child,
            stdin: Some(stdin),
            out,
        }
    }

    pub(crate) fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Picks `scene` from the numbered scene list.
    pub(crate) fn pick_scene(&mut self, scene: &str) {
        let tag = format!("({scene})");
        let line = self.out.until("the scene list", |l| l.contains(&tag));
        let n = number_of(&line);
        self.out
            .until("the scene question", |l| l.starts_with("pick a scene"));
        self.type_line(&n.to_string());
    }

    /// Answers the next menu: the first label of `prefer` offered, else choice 1.
    /// Returns the label taken.
    pub(crate) fn choose(&mut self, prefer: &[&str]) -> String {
        self.out.until("a menu", |l| l == MENU_FOOTER);
        self.answer_menu(prefer)
    }

    /// Answers the menu just printed and waits for the player's echo of the choice,
    /// so that a menu printed before the answer was read is never answered too.
    fn answer_menu(&mut self, prefer: &[&str]) -> String {
        let menu = current_menu(&self.out.seen);
        let pick = prefer
            .iter()
            .find_map(|want| menu.iter().find(|(_, label)| label == want))
            .or_else(|| menu.first())
            .cloned()
            .unwrap_or_else(|| panic!("empty menu:\n{}", self.out.seen.join("\n")));
        self.type_line(&pick.0.to_string());
        let echo = format!("> {}", pick.1);
        self.out.until("the echo of the choice", |l| l == echo);
        pick.1
    }

    /// Plays on (menus by `prefer`, Enter at every reflex prompt) until the end line;
    /// returns the ending.
    pub(crate) fn play_to_end(&mut self, prefer: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no ending:\n{}", self.out.seen.join("\n"));
            let Some(line) = self.out.next(left.min(STEP)) else {
                panic!("output ended:\n{}", self.out.seen.join("\n"));
            };
            if let Some(end) = line
                .strip_prefix("=== the end: ")
                .and_then(|r| r.strip_suffix(" ==="))
            {
                return end.to_owned();
            }
            if line.ends_with(REFLEX_PROMPT) {
                self.type_line("");
            } else if line == MENU_FOOTER {
                self.answer_menu(prefer);
            }
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub(crate) fn exit_code(mut self) -> i32 {
        drop(self.stdin.take());
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the player did not exit:\n{}", self.out.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `  3) label` → 3.
fn number_of(line: &str) -> usize {
    line.trim()
        .split(')')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

/// The numbered entries of the last menu printed.
fn current_menu(seen: &[String]) -> Vec<(usize, String)> {
    let start = seen
        .iter()
        .rposition(|l| l == "choices:")
        .expect("a menu header");
    seen[start + 1..]
        .iter()
        .take_while(|l| l.as_str() != MENU_FOOTER)
        .map(|l| {
            let (n, label) = l.trim().split_once(") ").unwrap();
            (n.parse().unwrap(), label.to_owned())
        })
        .collect()
}

/// Lines that tell the story (dialogue, media): in the demo each is seen once per
/// play-through, so each must be printed once. (A pending generation's status line,
/// `[media] generating…`, is the same for every generation node the player passes.)
fn story_lines(seen: &[String]) -> Vec<&String> {
    seen.iter()
        .filter(|l| {
            l.starts_with("mara: ")
                || l.starts_with("player: ")
                || (l.starts_with("[media]") && !l.starts_with("[media] generating"))
        })
        .collect()
}

pub(crate) fn assert_no_repeats(seen: &[String]) {
    let mut count: HashMap<&String, usize> = HashMap::new();
    for l in story_lines(seen) {
        *count.entry(l).or_default() += 1;
    }
    let repeated: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "printed more than once: {repeated:?}\n{}",
        seen.join("\n")
    );
}

/// The way to the vault (a failed reflex game may lead elsewhere: any ending will do).
pub(crate) const PREFER: &[&str] = &[
    "Step inside",
    "I'm in.",
    "Sneak past the guard",
    "Swipe the keycard",
    "Cheers",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_terminal_player_plays_the_demo_quits_and_resumes_by_session_id() {
    let ts = TestServer::start().await;
    let base = ts.base.clone();
    let quic = ts.server.quic_addr.to_string();
    let fingerprint = ts.server.quic_fingerprint.clone();
    let args = move |extra: &[&str]| {
        let mut a: Vec<String> = [
            "--http",
            &base,
            "--server",
            &quic,
            "--fingerprint",
            &fingerprint,
            "--email",
            "term@example.com",
            "--password",
            "password123",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let out = tokio::task::spawn_blocking(move || {
        // A new account, a scene picked from the list, two choices, then quit.
        let mut t = Terminal::start(&args(&["--register"]));
        t.pick_scene("gallery");
        t.out.until("the session id", |l| {
            l.contains("resume it later with --session")
        });
        let session = t
            .out
            .seen
            .last()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned();
        t.out
            .until("the generated media", |l| l == "[media] generating…");
        assert_eq!(t.choose(&["Step inside"]), "Step inside");
        t.out.until("Mara", |l| {
            l == "mara: You came. The Blue Nocturne hangs in the vault tonight."
        });
        t.out.until("the next menu", |l| l == MENU_FOOTER);
        assert_eq!(current_menu(&t.out.seen), vec![(1, "I'm in.".to_owned())]);
        // The edge's effect: its state change may be printed before or after the menu
        // (the player prints events as they arrive; under load the order varies).
        if !t.out.seen.iter().any(|l| l == "[item] coin ×3") {
            t.out.until("the coins", |l| l == "[item] coin ×3");
        }
        t.type_line("s");
        t.out.until("the stats", |l| l == "items: coin ×3");
        t.type_line("q");
        t.out.until("the goodbye", |l| {
            l.contains(&format!("--session {session}"))
        });
        let first = t.out.seen.clone();
        assert_eq!(t.exit_code(), 0);
        assert_no_repeats(&first);

        // Resumed by id: the current node and its menu, not the whole story again.
        let mut t = Terminal::start(&args(&["--session", &session]));
        t.out
            .until("the resume", |l| l == format!("resuming session {session}"));
        t.out.until("the current node", |l| {
            l == "mara: He has the keycard. Get it, however you like."
        });
        assert!(
            !t.out.seen.iter().any(|l| l.starts_with("[media]")),
            "the arrival is history: {:?}",
            t.out.seen
        );
        assert_eq!(t.choose(PREFER), "I'm in.");
        t.out.until("the quest", |l| l == "[quest] heist: active");
        let end = t.play_to_end(PREFER);
        let second = t.out.seen.clone();
        assert_eq!(t.exit_code(), 0);
        assert_no_repeats(&second);
        (end, second)
    })
    .await
    .unwrap();
    let (end, transcript) = out;
    assert!(
        ["success", "failure", "neutral"].contains(&end.as_str()),
        "{end}\n{}",
        transcript.join("\n")
    );
    // The reflex game was played and judged.
    assert!(
        transcript.iter().any(|l| l.starts_with("[round 1] ")),
        "{}",
        transcript.join("\n")
    );
    ts.stop().await;
}

/// Two free ports (TCP for HTTP, UDP for QUIC) for a server that must come back on
/// the same addresses after a restart.
fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    )
}

/// A server child process, killed if the test fails half-way.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The real server binary on `state` and fixed ports; returns once it is ready.
fn serve_on(state: &Path, http: u16, quic: u16) -> Served {
    let mut child = Command::new(crate::lifecycle::server_binary())
        .arg("--state-dir")
        .arg(state)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("PIXSIM_HTTP__ADDR", format!("127.0.0.1:{http}"))
        .env("PIXSIM_QUIC__ADDR", format!("127.0.0.1:{quic}"))
        .env("PIXSIM_WEBTRANSPORT__ADDR", "127.0.0.1:0")
        .env("PIXSIM_CONTENT__SCENES_DIR", tests::demo_scenes())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = Lines::of(child.stdout.take().unwrap());
    let child = Served(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "server not ready: {:?}", out.seen);
        match out.next(left) {
            Some(l) if l.starts_with("Press Ctrl-C") => break,
            Some(_) => {}
            None => panic!("server exited: {:?}", out.seen),
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || while out.next(Duration::from_secs(3600)).is_some() {});
    child
}

fn kill(child: &mut Served, sig: i32) {
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, sig) }, 0);
    child.0.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_terminal_player_carries_on_after_the_server_is_killed_and_restarted() {
    let state = TempDir::new("play-crash");
    let (http, quic) = free_ports();
    let state_dir = state.0.clone();
    let mut server = tokio::task::spawn_blocking(move || serve_on(&state_dir, http, quic))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{http}");
    let cert = state.0.join("quic").join("cert.pem");
    let args: Vec<String> = [
        "--http",
        &base,
        "--server",
        &format!("127.0.0.1:{quic}"),
        "--cert",
        cert.to_str().unwrap(),
        "--email",
        "crash-player@example.com",
        "--password",
        "password123",
        "--register",
        "--scene",
        "gallery",
        "--heartbeat-ms",
        "300",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let state_dir = state.0.clone();
    let (end, transcript) = tokio::task::spawn_blocking(move || {
        let mut t = Terminal::start(&args);
        assert_eq!(t.choose(PREFER), "Step inside");
        assert_eq!(t.choose(PREFER), "I'm in.");
        // At the plan, with both earlier choices acknowledged: the server dies.
        t.out
            .until("the plan's menu", |l| l == "  1) Sneak past the guard");
        t.out.until("the footer", |l| l == MENU_FOOTER);
        kill(&mut server, libc::SIGKILL);
        t.out
            .until("the drop", |l| l.starts_with("(connection lost"));
        // The embedded PostgreSQL dies with the server (parent-death signal).
        std::thread::sleep(Duration::from_millis(500));
        let mut server = serve_on(&state_dir, http, quic);
        t.out.until("the reconnect", |l| l == "(reconnected)");
        t.out.until("the resume", |l| {
            l == "(the server resumed the session at gallery/plan)"
        });
        // The restart, missed while away, may be told after the menu the rejoin's
        // snapshot printed: that menu is the one to answer then.
        let rejoined = t.out.seen.iter().rposition(|l| l == "(reconnected)");
        if rejoined.is_some_and(|at| t.out.seen[at..].iter().any(|l| l == MENU_FOOTER)) {
            t.answer_menu(PREFER);
        }
        let end = t.play_to_end(PREFER);
        let transcript = t.out.seen.clone();
        assert_eq!(t.exit_code(), 0);
        kill(&mut server, libc::SIGTERM);
        (end, transcript)
    })
    .await
    .unwrap();
    assert!(
        ["success", "failure", "neutral"].contains(&end.as_str()),
        "{end}"
    );
    // Nothing of the story was printed twice, and it went on past the plan.
    assert_no_repeats(&transcript);
    let text = transcript.join("\n");
    for line in [
        "mara: You came. The Blue Nocturne hangs in the vault tonight.",
        "mara: He has the keycard. Get it, however you like.",
    ] {
        assert!(text.contains(line), "{text}");
    }
    assert!(
        transcript.iter().any(|l| l.starts_with("[round 1] ")),
        "{text}"
    );
}
