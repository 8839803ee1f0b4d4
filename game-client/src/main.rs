//! `pixsim-client`: command-line client for a PixSim server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use game_client::{Client, ConnectOptions, Target, Transport, Trust, WsEncoding};

/// mimalloc: the tick, the QUIC tasks and the write-behind allocate many small,
/// short-lived objects, where it is markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the server keeps its self-signed certificate by default, relative
/// to its working directory.
const DEFAULT_CERT_DER: &str = ".pixsim/quic/cert.der";

#[derive(Debug, Parser)]
#[command(name = "pixsim-client", version, about = "PixSim game client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect, handshake, and measure round-trip times.
    Ping(PingArgs),
    /// Bots playing random valid choices; prints throughput and latency percentiles.
    Bots(BotsArgs),
    /// Play a scene in the terminal: log in, pick a scene, read, choose.
    Play(PlayArgs),
}

#[derive(Debug, Args)]
struct BotsArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Number of bots (one connection and one session each).
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Play time in seconds (after every bot has connected).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Accounts shared by the bots (registered when missing).
    #[arg(long, default_value_t = 8)]
    accounts: usize,
    /// Bot account emails are PREFIX-N@bots.pixsim.test.
    #[arg(long, default_value = "bot")]
    account_prefix: String,
    /// Password of the bot accounts.
    #[arg(long, env = "PIXSIM_BOT_PASSWORD", default_value = "bot-password-123")]
    password: String,
    /// Think time before each choice, in ms: MIN-MAX (uniform) or one value.
    #[arg(long, default_value = "500-1500", value_parser = parse_range_ms)]
    think_ms: (Duration, Duration),
    /// Connections being set up at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// QUIC: client UDP endpoints shared by the bots (0: one per bot).
    #[arg(long, default_value_t = 16)]
    endpoints: usize,
    /// Start scene (default: the world's start scene).
    #[arg(long)]
    scene: Option<String>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PlayArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Account email.
    #[arg(long, env = "PIXSIM_EMAIL")]
    email: Option<String>,
    /// Account password.
    #[arg(long, env = "PIXSIM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Create the account first (an existing one is fine).
    #[arg(long)]
    register: bool,
    /// Start this scene (by id) instead of picking from the list.
    #[arg(long, conflicts_with = "session")]
    scene: Option<String>,
    /// Resume this session instead of starting one.
    #[arg(long)]
    session: Option<uuid::Uuid>,
    /// Heartbeat period in ms; three without an answer count as a dropped connection.
    #[arg(long, default_value_t = 2000)]
    heartbeat_ms: u64,
    /// Keep trying to reconnect for this many seconds.
    #[arg(long, default_value_t = 300)]
    reconnect_secs: u64,
}

fn parse_range_ms(s: &str) -> Result<(Duration, Duration), String> {
    let parse = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{v:?} is not a number of milliseconds"))
    };
    match s.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (parse(lo)?, parse(hi)?);
            if hi < lo {
                return Err(format!("{s}: the maximum is below the minimum"));
            }
            Ok((lo, hi))
        }
        None => {
            let v = parse(s)?;
            Ok((v, v))
        }
    }
}

#[derive(Debug, Args)]
struct ConnArgs {
    /// The game channel's transport: quic (--server), or websocket (binary),
    /// websocket-json (JSON text messages) or webtransport (the URL and certificate
    /// hashes the HTTP origin publishes), all three found from --http.
    #[arg(long, env = "PIXSIM_TRANSPORT", default_value = "quic")]
    transport: Transport,
    /// REST base URL (logins; the origin of the WebSocket).
    #[arg(long, env = "PIXSIM_HTTP", default_value = "http://127.0.0.1:8080")]
    http: String,
    /// QUIC server address, HOST:PORT.
    #[arg(long, env = "PIXSIM_SERVER", default_value = "127.0.0.1:4433")]
    server: String,
    /// Pin the server certificate by its SHA-256 fingerprint (printed by
    /// the server at startup).
    #[arg(long, conflicts_with = "cert")]
    fingerprint: Option<String>,
    /// Trust the certificate(s) in this PEM or DER file instead.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// TLS server name (default: the host part of --server). Checked only
    /// with --cert.
    #[arg(long)]
    server_name: Option<String>,
}

#[derive(Debug, Args)]
struct PingArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Number of pings.
    #[arg(long, short = 'c', default_value_t = 4)]
    count: u32,
    /// Pause between pings, in milliseconds.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ping(args) => ping(args).await,
            Command::Bots(args) => bots(args).await,
            Command::Play(args) => play(args).await,
        }
    });
    // Stdin is read on a blocking thread that cannot be interrupted: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Splits HOST:PORT (IPv6 as `[::1]:4433`) and resolves it.
async fn resolve(server: &str) -> Result<(SocketAddr, String)> {
    let (host, _port) = server
        .rsplit_once(':')
        .with_context(|| format!("--server {server:?} is not HOST:PORT"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addr = tokio::net::lookup_host(server)
        .await
        .with_context(|| format!("resolving {server}"))?
        .next()
        .with_context(|| format!("{server} resolved to no address"))?;
    Ok((addr, host))
}

fn trust(conn: &ConnArgs) -> Result<Trust> {
    if let Some(fp) = &conn.fingerprint {
        return Ok(Trust::Fingerprint(fp.clone()));
    }
    if let Some(cert) = &conn.cert {
        return Ok(Trust::CertFile(cert.clone()));
    }
    let default = Path::new(DEFAULT_CERT_DER);
    if default.is_file() {
        let der = std::fs::read(default).with_context(|| format!("reading {DEFAULT_CERT_DER}"))?;
        return Ok(Trust::Fingerprint(game_client::fingerprint(&der)));
    }
    bail!(
        "no server certificate to trust: pass --fingerprint HEX (the server prints it at \
         startup) or --cert PATH, or run from the server's directory so that \
         {DEFAULT_CERT_DER} exists"
    )
}

/// Where `--transport` reaches the game channel.
async fn target(conn: &ConnArgs) -> Result<Target> {
    let ws = |encoding| {
        Target::websocket(&conn.http, encoding).with_context(|| format!("--http {}", conn.http))
    };
    match conn.transport {
        Transport::Quic => {
            let (addr, host) = resolve(&conn.server).await?;
            Ok(Target::Quic {
                addr,
                server_name: conn.server_name.clone().unwrap_or(host),
                trust: trust(conn)?,
            })
        }
        Transport::WebSocket => ws(WsEncoding::Binary),
        Transport::WebSocketJson => ws(WsEncoding::Json),
        Transport::WebTransport => {
            let rest = game_client::rest::Rest::new(&conn.http)?;
            Target::webtransport(&rest)
                .await
                .context("asking the server where its WebTransport endpoint is")
        }
    }
}

async fn ping(args: PingArgs) -> Result<()> {
    let target = target(&args.conn).await?;
    let mut client = Client::connect_to(&target, ConnectOptions::default())
        .await
        .with_context(|| format!("connecting over {}", args.conn.transport))?;
    let addr = client.remote_addr();
    println!(
        "connected to {addr} over {} — {} (protocol {})",
        client.transport(),
        client.server_version(),
        client.protocol_version()
    );
    let mut rtts = Vec::new();
    for i in 1..=args.count {
        if i > 1 {
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        }
        let rtt = client.ping().await.with_context(|| format!("ping {i}"))?;
        println!("ping {i}: rtt {:.2} ms", ms(rtt));
        rtts.push(rtt);
    }
    if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
        let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        println!(
            "{} pings: min {:.2} ms, avg {:.2} ms, max {:.2} ms",
            rtts.len(),
            ms(*min),
            ms(avg),
            ms(*max)
        );
    }
    client.close().await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bots(args: BotsArgs) -> Result<()> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let target = target(&args.conn).await?;
    let mut cfg = game_client::bots::BotConfig::new(&args.conn.http, target);
    cfg.count = args.count;
    cfg.accounts = args.accounts.max(1);
    cfg.account_prefix = args.account_prefix;
    cfg.password = args.password;
    cfg.think = args.think_ms;
    cfg.connect_concurrency = args.connect_concurrency.max(1);
    cfg.endpoints = args.endpoints;
    cfg.scene = args.scene;
    let tokens = game_client::bots::login(&cfg).await?;
    if !args.json {
        eprintln!(
            "{} accounts logged in; connecting {} bots…",
            tokens.len(),
            cfg.count
        );
    }
    let fleet = game_client::bots::Fleet::launch(&cfg, &tokens).await?;
    if !args.json {
        eprintln!(
            "{} bots connected ({} failed); playing for {} s…",
            fleet.connected(),
            fleet.failed(),
            args.duration
        );
    }
    let report = fleet.play(Duration::from_secs(args.duration)).await;
    if args.json {
        println!("{}", report.json());
    } else {
        println!("{report}");
    }
    if report.error_count() > 0 {
        bail!("{} bot errors", report.error_count());
    }
    Ok(())
}

async fn play(args: PlayArgs) -> Result<()> {
    let Some(email) = args.email else {
        bail!("pass --email or set PIXSIM_EMAIL");
    };
    let Some(password) = args.password else {
        bail!("pass --password or set PIXSIM_PASSWORD");
    };
    let target = target(&args.conn).await?;
    let cfg = game_client::play::PlayConfig {
        http: args.conn.http,
        target,
        email,
        password,
        register: args.register,
        scene: args.scene,
        session: args.session,
        heartbeat: Duration::from_millis(args.heartbeat_ms.max(100)),
        reconnect_for: Duration::from_secs(args.reconnect_secs),
    };
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    game_client::play::run(cfg, input, tokio::io::stdout()).await?;
    Ok(())
}
