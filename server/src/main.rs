//! `pixsim-server`: serve (default), migrate, workers, users, scenes and demo assets.

mod assets_cmd;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use domain::user::Role;
use pixsim_server::config::{Config, LogFormat};
use pixsim_server::{Server, VERSION, open_database, telemetry};

/// mimalloc: the tick, the QUIC tasks and the write-behind allocate many small,
/// short-lived objects, where it is markedly faster than the system allocator. The
/// `system-alloc` feature keeps the system allocator instead, for heap profilers that
/// hook `malloc` (`heaptrack`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs on a runtime thread each time it goes idle: at most once a second, mimalloc
/// collects that thread's heap. A block freed by another thread (a connection's state,
/// dropped wherever its last task ended) waits in its page until the thread owning
/// the page collects it, and a thread collects only when it allocates in that size
/// class again: after a load leaves, an idle thread would keep those pages resident
/// for good (80 MB after 2,000 QUIC sessions came and were evicted, issue #24).
#[cfg(not(feature = "system-alloc"))]
fn collect_when_idle() {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    let due = LAST.with(|last| {
        let due = last
            .get()
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            last.set(Some(now));
        }
        due
    });
    if due {
        // SAFETY: `mi_collect` has no preconditions; it works on the calling thread's
        // heap (and the abandoned pages it can take over).
        unsafe { libmimalloc_sys::mi_collect(false) };
    }
}

#[cfg(feature = "system-alloc")]
fn collect_when_idle() {}

#[derive(Debug, Parser)]
#[command(name = "pixsim-server", version = VERSION, about = "PixSim game and generation server")]
struct Cli {
    /// TOML configuration file (defaults → file → PIXSIM_* environment).
    #[arg(long, global = true, env = "PIXSIM_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: text (default) or json.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    /// State directory (embedded database, QUIC certificate, token key).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Work with scene files.
    #[command(subcommand)]
    Scenes(ScenesCommand),
    /// Work with the media files scenes name (`content.assets_dir`).
    #[command(subcommand)]
    Assets(AssetsCommand),
    /// Run generation workers only (no HTTP, QUIC or tick), for scale-out.
    Worker {
        /// Number of workers (default: generation.workers, at least 1).
        #[arg(long)]
        count: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum ScenesCommand {
    /// Check scene files and the world config; lists every problem with file and node.
    Validate {
        /// A content directory or one scene file (default: content.scenes_dir).
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AssetsCommand {
    /// Render, with the offline renderer, every `assets/…` file a scene names that does
    /// not exist yet (same path, same bytes on every run).
    Render {
        /// Render every named file again, existing ones too.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "PIXSIM_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Give the user the admin role.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        display_name: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(f) = cli.log_format {
        cfg.log.format = f;
    }
    if let Some(d) = cli.state_dir {
        cfg.state_dir = d;
    }
    telemetry::init(&cfg.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(collect_when_idle)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(cfg).await,
            Command::Migrate => migrate(cfg).await,
            Command::User(UserCommand::Create {
                email,
                password,
                admin,
                display_name,
            }) => create_user(cfg, &email, &password, admin, display_name.as_deref()).await,
            Command::Worker { count } => run_workers(cfg, count).await,
            Command::Assets(AssetsCommand::Render { force }) => {
                let (scenes, assets) = (cfg.content.scenes_dir.clone(), cfg.content.assets_dir());
                tokio::task::spawn_blocking(move || {
                    assets_cmd::render_missing(&scenes, &assets, force).map(drop)
                })
                .await
                .context("the render task")?
            }
            Command::Scenes(ScenesCommand::Validate { path }) => {
                let path = path
                    .as_deref()
                    .unwrap_or(&cfg.content.scenes_dir)
                    .to_owned();
                let mut checks = pixsim_server::content_checks(&cfg)?;
                // Clips and branch points are checked against the asset library.
                if content::library::names_library(&path) {
                    let db = open_database(&cfg).await?;
                    let lib = pixsim_server::narrative::library(&db.pool).await;
                    db.close().await.ok();
                    checks.library = Some(std::sync::Arc::new(lib?));
                }
                validate_scenes(&path, &checks)
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let mut signals = pixsim_server::Signals::install().context("installing signal handlers")?;
    let server = Server::start(cfg).await?;
    print_banner(&server);
    let token = server.shutdown_token();
    tokio::select! {
        () = signals.recv() => {}
        () = token.cancelled() => {}
    }
    server.shutdown().await
}

/// Where the server listens. Written without `println!`, which panics when stdout is
/// closed: a server must not die because nobody reads its banner.
fn print_banner(server: &Server) {
    use std::io::Write;
    let http = server.http_addr;
    let webtransport = server.webtransport_addr.map_or_else(String::new, |wt| {
        format!(
            "\x20 WebTransport https://{wt}/game   (pin the certificate hashes of \
             http://{http}/api/v1/game/webtransport)\n"
        )
    });
    let text = format!(
        "PixSim {VERSION} ready\n\
         \x20 REST      http://{http}/\n\
         \x20 Player    http://{http}/play   (the web scene player)\n\
         \x20 API docs  http://{http}/api/docs   (OpenAPI: http://{http}/api/openapi.json)\n\
         \x20 QUIC      udp://{quic}   ALPN pixsim/1\n\
         \x20 QUIC certificate SHA-256 fingerprint (pin it in clients):\n\
         \x20           {fp}\n\
         {webtransport}\
         \x20 WebSocket ws://{http}/api/v1/game/ws   (subprotocol pixsim.v2 or pixsim.v2.json)\n\
         \x20 Database  {db}\n\
         Press Ctrl-C to stop.\n",
        quic = server.quic_addr,
        fp = server.quic_fingerprint,
        db = server.database,
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn validate_scenes(path: &std::path::Path, checks: &content::Checks) -> anyhow::Result<()> {
    let report = content::validate_path_with(path, checks);
    if report.is_ok() {
        if path.is_dir() {
            let c = content::load_dir_with(path, checks).map_err(|r| anyhow::anyhow!("{r}"))?;
            let nodes: usize = c.scenes.values().map(|s| s.nodes.len()).sum();
            println!(
                "{}: ok ({} scenes, {nodes} nodes)",
                path.display(),
                c.scenes.len()
            );
        } else {
            println!("{}: ok", path.display());
        }
        Ok(())
    } else {
        print!("{report}");
        bail!("{} problem(s) in {}", report.problems.len(), path.display())
    }
}

async fn run_workers(cfg: Config, count: Option<usize>) -> anyhow::Result<()> {
    let mut signals = pixsim_server::Signals::install().context("installing signal handlers")?;
    let db = open_database(&cfg).await?;
    let service = pixsim_server::generation_service(&cfg, db.pool.clone())?;
    let n = count.unwrap_or(cfg.generation.workers).max(1);
    let stop = tokio_util::sync::CancellationToken::new();
    // With Redis, wake-ups, events and cancels reach this worker-only node too.
    pixsim_server::connect_generation_nodes(&cfg, &service, stop.clone().cancelled_owned())?;
    let mut handles: Vec<_> = (0..n)
        .map(|i| {
            let worker = service.worker_named(format!("{}-{i}", std::process::id()));
            tokio::spawn(worker.run(stop.clone().cancelled_owned()))
        })
        .collect();
    // The events of this node's jobs reach their webhooks too.
    handles.push(tokio::spawn(
        service.run_webhooks(stop.clone().cancelled_owned()),
    ));
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "PixSim {VERSION}: {n} generation worker(s) running; Ctrl-C to stop."
        );
    }
    signals.recv().await;
    stop.cancel();
    for h in handles {
        let _ = h.await;
    }
    db.close().await
}

async fn migrate(cfg: Config) -> anyhow::Result<()> {
    let db = open_database(&cfg).await?;
    let applied = store::applied_migrations(&db.pool)
        .await
        .context("reading the migration table")?;
    println!("database is up to date ({applied} migrations applied)");
    db.close().await
}

async fn create_user(
    cfg: Config,
    email: &str,
    password: &str,
    admin: bool,
    display_name: Option<&str>,
) -> anyhow::Result<()> {
    let db = open_database(&cfg).await?;
    let result = async {
        let auth = pixsim_server::auth_service(&cfg, db.pool.clone())?;
        let role = if admin { Role::Admin } else { Role::User };
        match auth.register(email, password, display_name, role).await {
            Ok(user) => {
                println!("created {} user {} ({})", user.role, user.email, user.id);
                Ok(())
            }
            Err(e) => bail!("cannot create the user: {e}"),
        }
    }
    .await;
    db.close().await?;
    result
}
