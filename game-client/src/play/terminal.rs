//! The terminal loop of `pixsim-client play`: REST login, the scene picker, the game
//! session (over the [`Target`]'s transport), and one loop that selects over server messages, input lines, reveal
//! deadlines and heartbeats, feeding [`Player`] and printing what it says; when the
//! connection drops it reconnects with backoff and rejoins after `last_seq`.

use std::time::{Duration, Instant};

use protocol::v2::{ErrorCode, ServerMessage};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use super::clock::{WorldClock, stamp};
use super::player::{Done, Player, Step};
use super::render;
use crate::rest::{Rest, RestError, SceneSummary};
use crate::{Client, ClientError, ConnectOptions, Joined, Target};

/// Login details of `pixsim-client play`.
#[derive(Clone, Debug)]
pub struct PlayConfig {
    /// REST base URL.
    pub http: String,
    /// Where the game channel is, over which transport.
    pub target: Target,
    /// Account email.
    pub email: String,
    /// Account password.
    pub password: String,
    /// Create the account first (an existing one is fine).
    pub register: bool,
    /// Start this scene instead of asking.
    pub scene: Option<String>,
    /// Resume this session instead of starting one.
    pub session: Option<Uuid>,
    /// Heartbeat period; the connection counts as dropped after three without any
    /// message from the server.
    pub heartbeat: Duration,
    /// Give up reconnecting after this long.
    pub reconnect_for: Duration,
}

/// Failures of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// A REST call failed.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The game channel failed (and reconnecting did not help).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading input or writing output failed.
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
    /// Input ended before a scene was picked.
    #[error("input ended before a scene was chosen")]
    NoScene,
    /// Every reconnect attempt failed.
    #[error("could not reconnect within {0:?}: {1}")]
    Reconnect(Duration, ClientError),
}

struct Conn {
    client: Client,
    clock: WorldClock,
    /// Events from this seq on are live on this connection.
    live_from: u64,
}

async fn write_lines<W: AsyncWrite + Unpin>(out: &mut W, lines: &[String]) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut buf = String::new();
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    out.write_all(buf.as_bytes()).await?;
    out.flush().await
}

/// Connects, authenticates (logging in again when the token is refused) and
/// creates or joins the session.
async fn open(
    cfg: &PlayConfig,
    rest: &Rest,
    token: &mut String,
    goal: Goal<'_>,
    timeout: Duration,
) -> Result<(Conn, Joined), PlayError> {
    let opts = ConnectOptions {
        timeout,
        ..ConnectOptions::default()
    };
    // WebTransport: the certificates may have rotated (or the server restarted with
    // new ones) since the last connection: ask again which to pin.
    let target = match &cfg.target {
        Target::WebTransport { .. } => Target::webtransport(rest).await?,
        Target::Quic { .. } | Target::WebSocket { .. } => cfg.target.clone(),
    };
    let mut client = Client::connect_to(&target, opts).await?;
    if let Err(e) = client.authenticate(token).await {
        if e.close_code() != Some(protocol::CloseCode::Unauthenticated) {
            return Err(e.into());
        }
        // The token expired or was revoked: log in again on a new connection.
        *token = rest
            .login_patiently(&cfg.email, &cfg.password, Duration::from_secs(60))
            .await?;
        let opts = ConnectOptions {
            timeout,
            ..ConnectOptions::default()
        };
        client = Client::connect_to(&target, opts).await?;
        client.authenticate(token).await?;
    }
    let joined = match goal {
        Goal::Create(scene) => client.create_session(scene).await?,
        Goal::Join(id, last_seq) => client.join_session(id, last_seq).await?,
    };
    let clock = WorldClock::new(client.sync_clock(5).await.ok());
    let live_from = joined.next_seq;
    Ok((
        Conn {
            client,
            clock,
            live_from,
        },
        joined,
    ))
}

#[derive(Clone, Copy)]
enum Goal<'a> {
    Create(Option<&'a str>),
    Join(Uuid, Option<u64>),
}

/// Reads one line; `None` at the end of input.
async fn read_line<R: AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> Result<Option<String>, PlayError> {
    Ok(lines.next_line().await?)
}

/// Asks for a scene by number; `None` picks the world's start scene.
async fn pick_scene<R: AsyncBufRead + Unpin, W: AsyncWrite + Unpin>(
    scenes: &[SceneSummary],
    lines: &mut tokio::io::Lines<R>,
    out: &mut W,
) -> Result<Option<String>, PlayError> {
    let text = render::scene_list(scenes);
    write_lines(out, &text).await?;
    loop {
        let Some(line) = read_line(lines).await? else {
            return Err(PlayError::NoScene);
        };
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        match line
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| scenes.get(i))
        {
            Some(s) if s.locked => {
                write_lines(out, &[format!("{} is locked; pick another", s.title)]).await?;
            }
            Some(s) => return Ok(Some(s.id.clone())),
            None => {
                write_lines(out, &[format!("pick 1-{}", scenes.len())]).await?;
            }
        }
    }
}

/// Runs the player on `input` and `output` until the session ends or the user
/// quits; returns why it stopped.
pub async fn run<R, W>(cfg: PlayConfig, input: R, mut out: W) -> Result<Done, PlayError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let rest = Rest::new(&cfg.http)?;
    if cfg.register && rest.register(&cfg.email, &cfg.password).await? {
        write_lines(&mut out, &[format!("registered {}", cfg.email)]).await?;
    }
    let mut token = rest
        .login_patiently(&cfg.email, &cfg.password, Duration::from_secs(30))
        .await?;
    let scenes = rest.scenes(&token).await?;
    let mut lines = input.lines();
    let mut player = Player::new(rest.base(), &scenes);
    let scene = match (&cfg.session, &cfg.scene) {
        (Some(_), _) => None,
        (None, Some(s)) => Some(s.clone()),
        (None, None) => pick_scene(&scenes, &mut lines, &mut out).await?,
    };
    let goal = match cfg.session {
        Some(id) => Goal::Join(id, None),
        None => Goal::Create(scene.as_deref()),
    };
    let (mut conn, joined) = open(&cfg, &rest, &mut token, goal, Duration::from_secs(10)).await?;
    write_lines(&mut out, &player.attach(&joined, false).text).await?;
    if joined.ended && joined.next_seq == 0 {
        return Ok(Done::Ended("ended".into()));
    }
    let mut input_open = true;
    loop {
        match session_loop(
            &cfg,
            &mut player,
            &mut conn,
            &mut lines,
            &mut input_open,
            &mut out,
        )
        .await?
        {
            Ok(done) => {
                conn.client.close().await;
                return Ok(done);
            }
            Err(why) => {
                write_lines(&mut out, &player.connection_lost(&why).text).await?;
                let (c, joined) = reconnect(&cfg, &rest, &mut token, &player).await?;
                conn = c;
                write_lines(&mut out, &player.attach(&joined, true).text).await?;
            }
        }
    }
}

/// Reconnects with exponential backoff and rejoins the session after `last_seq`.
async fn reconnect(
    cfg: &PlayConfig,
    rest: &Rest,
    token: &mut String,
    player: &Player,
) -> Result<(Conn, Joined), PlayError> {
    let Some(id) = player.session() else {
        return Err(PlayError::Client(ClientError::Unexpected("no session")));
    };
    let deadline = Instant::now() + cfg.reconnect_for;
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::time::sleep(backoff).await;
        let goal = Goal::Join(id, player.last_seq());
        match open(cfg, rest, token, goal, Duration::from_secs(3)).await {
            Ok(ok) => return Ok(ok),
            Err(PlayError::Client(e)) if Instant::now() < deadline && !permanent(&e) => {
                tracing::debug!(error = %e, ?backoff, "reconnect failed");
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
            Err(PlayError::Rest(RestError::Unreachable { .. })) if Instant::now() < deadline => {
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
            Err(PlayError::Client(e)) => return Err(PlayError::Reconnect(cfg.reconnect_for, e)),
            Err(other) => return Err(other),
        }
    }
}

/// Failures that another attempt would meet again.
fn permanent(e: &ClientError) -> bool {
    match e {
        ClientError::Config(_)
        | ClientError::UntrustedCertificate(_)
        | ClientError::Url(_)
        | ClientError::Unsupported(_) => true,
        ClientError::Rejected { code, .. } => match code {
            ErrorCode::SessionNotFound | ErrorCode::InvalidRequest | ErrorCode::VersionMismatch => {
                true
            }
            ErrorCode::ProtocolError
            | ErrorCode::FrameTooLarge
            | ErrorCode::Unauthenticated
            | ErrorCode::ServerShutdown
            | ErrorCode::ServerFull
            | ErrorCode::Internal
            | ErrorCode::Busy
            | ErrorCode::SessionBusy
            | ErrorCode::SessionTakenOver
            | ErrorCode::Other(_) => false,
        },
        ClientError::Io(_)
        | ClientError::Connect(_)
        | ClientError::Closed { .. }
        | ClientError::Connection(_)
        | ClientError::Codec(_)
        | ClientError::Unexpected(_)
        | ClientError::StreamEnded
        | ClientError::Timeout(_)
        // A refused upgrade or socket error: the server may be restarting.
        | ClientError::WebSocket(_)
        | ClientError::WebSocketClosed { .. }
        | ClientError::WebSocketLost(_)
        | ClientError::WebTransportConnect(_)
        | ClientError::WebTransport(_) => false,
    }
}

/// Plays on one connection. `Ok(Ok(done))` when finished, `Ok(Err(why))` when the
/// connection dropped.
async fn session_loop<R, W>(
    cfg: &PlayConfig,
    player: &mut Player,
    conn: &mut Conn,
    lines: &mut tokio::io::Lines<R>,
    input_open: &mut bool,
    out: &mut W,
) -> Result<Result<Done, String>, PlayError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut heartbeat = tokio::time::interval(cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        let reveal_at = player
            .next_reveal()
            .and_then(|ms| conn.clock.instant_of(ms))
            .map(tokio::time::Instant::from_std);
        let step = tokio::select! {
            msg = conn.client.recv() => match msg {
                Ok(msg) => {
                    last_heard = Instant::now();
                    if let ServerMessage::Event { seq, at_ms, .. } = &msg
                        && *seq >= conn.live_from
                    {
                        conn.clock.saw(*at_ms);
                    }
                    player.on_message(msg, conn.clock.now())
                }
                // Another connection took the session over: playing on here would
                // take it back and forth.
                Err(e) if e.close_code() == Some(protocol::CloseCode::SessionTakenOver) => {
                    let mut step = Step::default();
                    step.text.push("(another connection took this session over; it is kept there)".into());
                    step.done = Some(Done::Quit);
                    step
                }
                Err(e) => return Ok(Err(e.to_string())),
            },
            line = lines.next_line(), if *input_open => {
                let pressed = Instant::now();
                match line? {
                    Some(line) => player.on_input(&line, stamp(&conn.clock, pressed)),
                    None => {
                        // Input closed: stop reading it and quit, keeping the session.
                        *input_open = false;
                        player.on_input("q", 0)
                    }
                }
            },
            () = sleep_until_opt(reveal_at) => {
                player.on_time(conn.clock.now().unwrap_or(i64::MAX))
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > cfg.heartbeat * 3 {
                    return Ok(Err("the server stopped answering".into()));
                }
                let beat = protocol::v2::ClientMessage::Heartbeat { client_time_ms: 0 };
                if let Err(e) = conn.client.send(&beat).await {
                    return Ok(Err(e.to_string()));
                }
                Step::default()
            },
        };
        write_lines(out, &step.text).await?;
        if let Some((id, command)) = step.command
            && let Err(e) = conn.client.command(id, command).await
        {
            return Ok(Err(e.to_string()));
        }
        if let Some(done) = step.done {
            return Ok(Ok(done));
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
