//! `pixsim-client`: command-line client for a PixSim server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use game_client::{Client, Trust};

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
}

#[derive(Debug, Args)]
struct BotsArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// REST base URL (for the bots' logins).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    http: String,
    /// Number of bots (one QUIC connection each).
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Run time in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
}

#[derive(Debug, Args)]
struct ConnArgs {
    /// Server address, HOST:PORT.
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
        }
    });
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
        return Ok(Trust::Fingerprint(quic::fingerprint(&der)));
    }
    bail!(
        "no server certificate to trust: pass --fingerprint HEX (the server prints it at \
         startup) or --cert PATH, or run from the server's directory so that \
         {DEFAULT_CERT_DER} exists"
    )
}

async fn ping(args: PingArgs) -> Result<()> {
    let (addr, host) = resolve(&args.conn.server).await?;
    let server_name = args.conn.server_name.clone().unwrap_or(host);
    let trust = trust(&args.conn)?;
    let mut client = Client::connect(addr, &server_name, trust)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    println!(
        "connected to {addr} — {} (protocol {})",
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
    let (addr, _host) = resolve(&args.conn.server).await?;
    let trust = trust(&args.conn)?;
    let report = game_client::bots::run(game_client::bots::BotConfig {
        http: args.http.trim_end_matches('/').to_owned(),
        quic: addr,
        trust,
        count: args.count,
        duration: Duration::from_secs(args.duration),
        tag: format!("{:x}", std::process::id()),
    })
    .await;
    println!("{report}");
    if report.errors > 0 {
        bail!("{} bot errors", report.errors);
    }
    Ok(())
}
