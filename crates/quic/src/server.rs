//! Accept loop and per-connection protocol driver.

use std::any::Any;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::v1::{ClientDatagram, ClientMessage, ErrorCode, ServerDatagram, ServerMessage};
use protocol::{
    CloseCode, ConnState, FrameDecoder, PROTOCOL_VERSION, decode_datagram, encode_datagram,
    encode_frame, verify_datagram,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::{QuicConfig, QuicError, cert, client::idle, close_connection};

/// How long a closing connection waits for its last frames (e.g. the
/// `Error` explaining the close) to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);
/// Read buffer size per connection.
const READ_BUF: usize = 16 * 1024;
/// Received datagrams quinn keeps per connection until they are read (the oldest
/// are dropped beyond it).
const DATAGRAM_RECEIVE_BUFFER: usize = 64 * 1024;

/// Hook for everything beyond the version handshake and pings, which the
/// endpoint answers itself. Authentication and the bridge to the
/// simulation plug in here: keep the [`Outbox`] from `on_open` to push
/// server messages from anywhere (e.g. the tick loop), and move the
/// connection along its [`ConnState`]s with
/// [`ConnectionContext::set_state`].
///
/// Callbacks run on the connection's task and must not block; `on_message`
/// may await (e.g. a database lookup), which holds back further reads on
/// this connection only.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// The version handshake succeeded (`Welcome` already queued).
    fn on_open(&self, _conn: &mut ConnectionContext) {}

    /// A client message the endpoint does not handle itself, already
    /// checked legal in the current state. Returning an error closes the
    /// connection with that code.
    fn on_message<'a>(
        &'a self,
        _conn: &'a mut ConnectionContext,
        _msg: ClientMessage,
    ) -> HandlerFuture<'a> {
        Box::pin(std::future::ready(Err(CloseCode::ProtocolError)))
    }

    /// The connection is gone. `code` is the close code when known (sent
    /// by us or by the peer).
    fn on_close(&self, _conn: &ConnectionContext, _code: Option<CloseCode>) {}

    /// The simulation clock, read when a time-sync datagram is answered (it
    /// must be cheap and never block). `None` (the default) leaves time-sync
    /// requests unanswered: the client's per-sample timeout copes with that.
    fn clock(&self) -> Option<ClockReading> {
        None
    }
}

/// The simulation's clock as [`ConnectionHandler::clock`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockReading {
    /// World time now, in ms (the clock mini-game inputs are judged against).
    pub world_time_ms: i64,
    /// The tick that world time belongs to.
    pub tick: u64,
}

/// What [`ConnectionHandler::on_message`] returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CloseCode>> + Send + 'a>>;

/// The default handler: handshake and pings only.
#[derive(Debug, Default, Clone, Copy)]
pub struct BasicHandler;

impl ConnectionHandler for BasicHandler {}

/// Sends server messages to one connection, from any task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    conn: quinn::Connection,
}

#[derive(Debug)]
enum Outgoing {
    Frame(Vec<u8>),
    /// Flush, finish the stream and stop the writer.
    Finish,
}

impl Outbox {
    /// Queues `msg`. If the connection's queue is full the client is not
    /// keeping up: the connection is closed with
    /// [`CloseCode::SlowConsumer`] and that code returned. A closed
    /// connection also returns an error.
    pub fn send(&self, msg: &ServerMessage) -> Result<(), CloseCode> {
        let mut frame = Vec::new();
        encode_frame(msg, &mut frame).map_err(|e| {
            tracing::error!(error = %e, msg = msg.name(), "cannot encode server message");
            CloseCode::InternalError
        })?;
        match self.tx.try_send(Outgoing::Frame(frame)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                close_connection(&self.conn, CloseCode::SlowConsumer);
                Err(CloseCode::SlowConsumer)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CloseCode::Normal),
        }
    }

    /// Queues `frames`, one or more complete frames already encoded (with
    /// [`protocol::encode_frame`]), waiting up to `wait` for room in the connection's
    /// queue (for bulk senders such as a resend). A client that does not make room in
    /// time is closed with [`CloseCode::SlowConsumer`]. The frames go out in one write,
    /// so usually in one packet.
    pub async fn send_frames_wait(&self, frames: Vec<u8>, wait: Duration) -> Result<(), CloseCode> {
        if frames.is_empty() {
            return Ok(());
        }
        match self.tx.send_timeout(Outgoing::Frame(frames), wait).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                close_connection(&self.conn, CloseCode::SlowConsumer);
                Err(CloseCode::SlowConsumer)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(CloseCode::Normal),
        }
    }

    /// Closes the connection now with `code` (queued frames may be lost).
    pub fn close(&self, code: CloseCode) {
        close_connection(&self.conn, code);
    }

    /// True once the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    /// Resolves when the connection is closed, by either side.
    pub async fn closed(&self) {
        let _ = self.conn.closed().await;
    }
}

/// One connection as seen by a [`ConnectionHandler`].
#[derive(Debug)]
pub struct ConnectionContext {
    id: u64,
    remote: SocketAddr,
    client: String,
    state: ConnState,
    outbox: Outbox,
    data: Option<Box<dyn Any + Send + Sync>>,
}

impl ConnectionContext {
    /// The handler's per-connection data, if set and of type `T`. Dropped
    /// with the connection.
    pub fn data_mut<T: Any + Send + Sync>(&mut self) -> Option<&mut T> {
        self.data.as_mut().and_then(|d| d.downcast_mut::<T>())
    }
    /// The handler's per-connection data, if set and of type `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.data.as_ref().and_then(|d| d.downcast_ref::<T>())
    }
    /// Sets the handler's per-connection data.
    pub fn set_data<T: Any + Send + Sync>(&mut self, data: T) {
        self.data = Some(Box::new(data));
    }
    /// Endpoint-unique connection id (also in log spans).
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }
    /// The client identification from `Hello`.
    pub fn client(&self) -> &str {
        &self.client
    }
    /// Current protocol state.
    pub fn state(&self) -> ConnState {
        self.state
    }
    /// Moves the connection to `state` (e.g. after authentication).
    pub fn set_state(&mut self, state: ConnState) {
        self.state = state;
    }
    /// The connection's outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

/// Live counters of an endpoint. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct QuicStats {
    live: Arc<AtomicUsize>,
    accepted: Arc<AtomicU64>,
}

impl QuicStats {
    /// Connections currently established (TLS done, not closed).
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
    /// Connections established since start.
    pub fn total_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Decrements the live count when the connection task ends.
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Shared {
    cfg: QuicConfig,
    stats: QuicStats,
    handler: Arc<dyn ConnectionHandler>,
    next_id: AtomicU64,
}

/// A bound QUIC endpoint, ready to [`run`](QuicServer::run).
pub struct QuicServer {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    fingerprint: String,
    cert_source: cert::CertSource,
    cfg: QuicConfig,
    stats: QuicStats,
    handler: Arc<dyn ConnectionHandler>,
}

impl std::fmt::Debug for QuicServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicServer")
            .field("local_addr", &self.local_addr)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl QuicServer {
    /// Loads or generates the certificate and binds the UDP socket. Must be
    /// called inside a tokio runtime. Logs the certificate fingerprint.
    pub fn bind(cfg: QuicConfig) -> Result<Self, QuicError> {
        if cfg.max_connections == 0 {
            return Err(QuicError::Config("max_connections must be > 0".into()));
        }
        if cfg.outbox_capacity == 0 {
            return Err(QuicError::Config("outbox_capacity must be > 0".into()));
        }
        let material = cert::load_or_generate(
            cfg.cert_path.as_deref(),
            cfg.key_path.as_deref(),
            &cfg.state_dir,
            &cfg.server_names,
        )?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(material.chain, material.key)?;
        tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| QuicError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(idle(cfg.idle_timeout + Duration::from_secs(5))?))
            .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1))
            .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
            .datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER));
        server_config.transport_config(Arc::new(transport));

        let endpoint =
            quinn::Endpoint::server(server_config, cfg.bind).map_err(|source| QuicError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let local_addr = endpoint.local_addr().map_err(|source| QuicError::Bind {
            addr: cfg.bind,
            source,
        })?;
        match &material.source {
            cert::CertSource::Configured => tracing::info!(
                %local_addr,
                fingerprint = %material.fingerprint,
                "QUIC endpoint bound with configured certificate"
            ),
            cert::CertSource::Generated(dir) | cert::CertSource::Reused(dir) => tracing::info!(
                %local_addr,
                fingerprint = %material.fingerprint,
                dir = %dir.display(),
                generated = matches!(material.source, cert::CertSource::Generated(_)),
                "QUIC endpoint bound with self-signed certificate"
            ),
        }
        Ok(QuicServer {
            endpoint,
            local_addr,
            fingerprint: material.fingerprint,
            cert_source: material.source,
            cfg,
            stats: QuicStats::default(),
            handler: Arc::new(BasicHandler),
        })
    }

    /// Replaces the connection handler (default: [`BasicHandler`]).
    pub fn with_handler(mut self, handler: Arc<dyn ConnectionHandler>) -> Self {
        self.handler = handler;
        self
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 of the leaf certificate, `aa:bb:...` lowercase.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Where the certificate came from.
    pub fn cert_source(&self) -> &cert::CertSource {
        &self.cert_source
    }

    /// Connections currently established.
    pub fn connections(&self) -> usize {
        self.stats.connections()
    }

    /// A cloneable handle on the live counters, valid after `run` starts.
    pub fn stats(&self) -> QuicStats {
        self.stats.clone()
    }

    /// Accepts and serves connections until `shutdown` completes, then
    /// stops accepting, closes every connection with
    /// [`CloseCode::ServerShutdown`] and waits (bounded by
    /// `shutdown_timeout`) for the closes to be delivered.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), QuicError> {
        let QuicServer {
            endpoint,
            local_addr,
            cfg,
            stats,
            handler,
            ..
        } = self;
        let shutdown_timeout = cfg.shutdown_timeout;
        let shared = Arc::new(Shared {
            cfg,
            stats,
            handler,
            next_id: AtomicU64::new(1),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        tracing::info!(%local_addr, "QUIC endpoint accepting connections");

        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    log_join(done);
                }
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                    let span = tracing::info_span!("quic_conn", id, remote = %incoming.remote_address());
                    let shared = Arc::clone(&shared);
                    let stop = stop_rx.clone();
                    tasks.spawn(tracing::Instrument::instrument(
                        serve(incoming, id, shared, stop),
                        span,
                    ));
                }
            }
        }

        // Graceful shutdown.
        tracing::info!(
            connections = shared.stats.connections(),
            "QUIC endpoint shutting down"
        );
        endpoint.set_server_config(None);
        let _ = stop_tx.send(true);
        let deadline = Instant::now() + shutdown_timeout;
        let drained = timeout_at(deadline, async {
            while let Some(done) = tasks.join_next().await {
                log_join(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "QUIC connections still open after grace period"
            );
        }
        // Backstop: anything still open (or mid-handshake) is closed now.
        endpoint.close(
            crate::close_varint(CloseCode::ServerShutdown),
            CloseCode::ServerShutdown.reason().as_bytes(),
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let remaining = deadline.saturating_duration_since(Instant::now());
        if timeout(
            remaining.max(Duration::from_millis(100)),
            endpoint.wait_idle(),
        )
        .await
        .is_err()
        {
            tracing::warn!("QUIC endpoint did not become idle in time");
        }
        tracing::info!("QUIC endpoint stopped");
        Ok(())
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "QUIC connection task panicked");
    }
}

/// Resolves when shutdown is requested (or the run loop is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// How a connection's read loop ended.
enum End {
    /// We close with this code; `detail` goes into the `Error` message.
    Close(CloseCode, String),
    /// The peer closed or the connection failed.
    Lost(quinn::ConnectionError),
}

async fn serve(
    incoming: quinn::Incoming,
    id: u64,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let cfg = &shared.cfg;
    let handshake_deadline = Instant::now() + cfg.handshake_timeout;
    let remote = incoming.remote_address();
    let handshake = timeout_at(handshake_deadline, incoming.into_future());
    tokio::pin!(handshake);
    let conn = tokio::select! {
        biased;
        () = stopped(stop.clone()) => {
            // Dropping a half-open connection would close it with code 0;
            // finish the TLS handshake briefly to say why instead.
            if let Ok(Ok(Ok(conn))) = timeout(FLUSH_TIMEOUT, &mut handshake).await {
                close_connection(&conn, CloseCode::ServerShutdown);
            }
            return;
        }
        r = &mut handshake => match r {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "QUIC handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("QUIC handshake timed out");
                return;
            }
        },
    };

    let live = shared.stats.live.fetch_add(1, Ordering::Relaxed) + 1;
    let _guard = LiveGuard(Arc::clone(&shared.stats.live));
    if live > cfg.max_connections {
        tracing::warn!(max = cfg.max_connections, "connection refused: server full");
        close_connection(&conn, CloseCode::ServerFull);
        return;
    }
    shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("connection established");

    let streams = tokio::select! {
        biased;
        () = stopped(stop.clone()) => Err(End::Close(CloseCode::ServerShutdown, String::new())),
        r = timeout_at(handshake_deadline, conn.accept_bi()) => match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(End::Lost(e)),
            Err(_) => Err(End::Close(CloseCode::HandshakeTimeout, String::new())),
        },
    };
    let (send, recv) = match streams {
        Ok(s) => s,
        Err(End::Close(code, _)) => {
            close_connection(&conn, code);
            return;
        }
        Err(End::Lost(e)) => {
            tracing::debug!(error = %e, "connection lost before opening a stream");
            return;
        }
    };

    let (tx, rx) = mpsc::channel(cfg.outbox_capacity);
    let writer = tokio::spawn(write_loop(send, rx));
    let mut ctx = ConnectionContext {
        id,
        remote,
        client: String::new(),
        state: ConnState::Handshake,
        outbox: Outbox {
            tx: tx.clone(),
            conn: conn.clone(),
        },
        data: None,
    };

    let end = read_loop(&mut ctx, recv, &conn, &shared, handshake_deadline, stop).await;

    let code = match end {
        End::Close(code, detail) => {
            if code != CloseCode::Normal {
                tracing::info!(code = %code, detail = %detail, "closing connection");
                let message = if detail.is_empty() {
                    code.reason().to_owned()
                } else {
                    detail
                };
                // Best effort: tell the client why before closing.
                let _ = ctx.outbox.send(&ServerMessage::Error {
                    code: ErrorCode::from(code),
                    message,
                });
            } else {
                tracing::debug!("client finished its stream");
            }
            let _ = tx.try_send(Outgoing::Finish);
            let _ = timeout(FLUSH_TIMEOUT * 2, writer).await;
            close_connection(&conn, code);
            Some(code)
        }
        End::Lost(e) => {
            writer.abort();
            let code = crate::close_code_of(&e).map(|(c, _)| c);
            tracing::debug!(error = %e, "connection closed");
            code
        }
    };
    if ctx.state.is_handshaken() {
        shared.handler.on_close(&ctx, code);
    }
}

/// Writes queued frames in order; whatever is queued when it wakes goes out in one write
/// (up to [`COALESCE_BYTES`]), so a burst of messages shares packets.
async fn write_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<Outgoing>) {
    let mut finish = false;
    while !finish {
        let Some(first) = rx.recv().await else {
            break;
        };
        let mut buf = match first {
            Outgoing::Frame(frame) => frame,
            Outgoing::Finish => break,
        };
        while buf.len() < COALESCE_BYTES {
            match rx.try_recv() {
                Ok(Outgoing::Frame(frame)) => buf.extend_from_slice(&frame),
                Ok(Outgoing::Finish) => {
                    finish = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = send.write_all(&buf).await {
            tracing::debug!(error = %e, "write failed");
            return;
        }
    }
    if send.finish().is_ok() {
        // Give the peer a moment to acknowledge the last frames before the
        // connection close (which may discard unread data) goes out.
        let _ = timeout(FLUSH_TIMEOUT, send.stopped()).await;
    }
}

/// At most this many bytes of queued frames are joined into one write.
const COALESCE_BYTES: usize = 64 * 1024;

async fn read_loop(
    ctx: &mut ConnectionContext,
    mut recv: quinn::RecvStream,
    conn: &quinn::Connection,
    shared: &Shared,
    handshake_deadline: Instant,
    stop: watch::Receiver<bool>,
) -> End {
    let cfg = &shared.cfg;
    let mut decoder = FrameDecoder::<ClientMessage>::new();
    let mut buf = vec![0u8; READ_BUF];
    let stop_fut = stopped(stop);
    tokio::pin!(stop_fut);
    loop {
        let (deadline, timeout_code) = if ctx.state.is_handshaken() {
            (Instant::now() + cfg.idle_timeout, CloseCode::IdleTimeout)
        } else {
            (handshake_deadline, CloseCode::HandshakeTimeout)
        };
        let n = tokio::select! {
            biased;
            () = &mut stop_fut => return End::Close(CloseCode::ServerShutdown, String::new()),
            d = conn.read_datagram() => match d {
                Ok(bytes) => {
                    if let Err((code, detail)) = datagram(ctx, conn, &bytes, shared) {
                        return End::Close(code, detail);
                    }
                    continue;
                }
                Err(e) => return End::Lost(e),
            },
            r = timeout_at(deadline, recv.read(&mut buf)) => match r {
                Err(_) => return End::Close(timeout_code, String::new()),
                Ok(Ok(Some(n))) => n,
                Ok(Ok(None)) => {
                    return if decoder.has_partial() {
                        End::Close(CloseCode::ProtocolError, "stream ended inside a frame".into())
                    } else {
                        End::Close(CloseCode::Normal, String::new())
                    };
                }
                Ok(Err(quinn::ReadError::ConnectionLost(e))) => return End::Lost(e),
                Ok(Err(e)) => {
                    return End::Close(CloseCode::ProtocolError, format!("stream error: {e}"));
                }
            },
        };
        let mut input = buf.get(..n).unwrap_or_default();
        while !input.is_empty() {
            let msg = match decoder.decode(&mut input) {
                Ok(Some(msg)) => msg,
                Ok(None) => continue,
                Err(e) => return End::Close(e.close_code(), e.to_string()),
            };
            if let Err((code, detail)) = handle(ctx, msg, shared).await {
                return End::Close(code, detail);
            }
        }
    }
}

/// Handles one received datagram: decodes it (a malformed or oversized one is a
/// protocol error, like a bad frame), checks it is legal in the connection's state,
/// and answers time-sync requests with the handler's clock. Replies are datagrams
/// too and may be lost; a full send buffer drops them.
fn datagram(
    ctx: &ConnectionContext,
    conn: &quinn::Connection,
    bytes: &[u8],
    shared: &Shared,
) -> Result<(), (CloseCode, String)> {
    let msg = decode_datagram::<ClientDatagram>(bytes)
        .map_err(|e| (e.close_code(), format!("datagram: {e}")))?;
    verify_datagram(ctx.state, &msg).map_err(|code| {
        (
            code,
            format!(
                "{} datagram not allowed in state {:?}",
                msg.name(),
                ctx.state
            ),
        )
    })?;
    match msg {
        ClientDatagram::TimeSyncRequest { client_send_us } => {
            let Some(clock) = shared.handler.clock() else {
                tracing::debug!("time-sync request ignored: no simulation clock");
                return Ok(());
            };
            let reply = ServerDatagram::TimeSyncReply {
                client_send_us,
                world_time_ms: clock.world_time_ms,
                tick: clock.tick,
            };
            match encode_datagram(&reply) {
                Ok(out) => {
                    if let Err(e) = conn.send_datagram(out.into()) {
                        tracing::debug!(error = %e, "time-sync reply not sent");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode a time-sync reply"),
            }
            Ok(())
        }
    }
}

/// Handles one decoded message; the error is the close code and detail.
async fn handle(
    ctx: &mut ConnectionContext,
    msg: ClientMessage,
    shared: &Shared,
) -> Result<(), (CloseCode, String)> {
    let next = ctx.state.apply(&msg).map_err(|code| {
        let detail = match (&msg, code) {
            (
                ClientMessage::Hello {
                    protocol_version, ..
                },
                CloseCode::VersionMismatch,
            ) => {
                format!("server speaks protocol {PROTOCOL_VERSION}, client sent {protocol_version}")
            }
            _ => format!("{} not allowed in state {:?}", msg.name(), ctx.state),
        };
        (code, detail)
    })?;
    let no_detail = |code| (code, String::new());
    match msg {
        ClientMessage::Hello {
            protocol_version,
            client,
        } => {
            tracing::debug!(protocol_version, client = %client, "hello");
            ctx.client = client;
            ctx.state = next;
            ctx.outbox
                .send(&ServerMessage::Welcome {
                    protocol_version: PROTOCOL_VERSION,
                    server_version: shared.cfg.server_version.clone(),
                    server_time_ms: now_ms(),
                })
                .map_err(no_detail)?;
            shared.handler.on_open(ctx);
            Ok(())
        }
        ClientMessage::Ping { nonce, .. } => {
            ctx.state = next;
            ctx.outbox
                .send(&ServerMessage::Pong {
                    nonce,
                    server_time_ms: now_ms(),
                })
                .map_err(no_detail)
        }
        ClientMessage::Heartbeat { .. } => {
            ctx.state = next;
            ctx.outbox
                .send(&ServerMessage::Heartbeat {
                    server_time_ms: now_ms(),
                })
                .map_err(no_detail)
        }
        other => {
            ctx.state = next;
            let name = other.name();
            shared
                .handler
                .on_message(ctx, other)
                .await
                .map_err(|code| (code, format!("{name} refused: {}", code.reason())))
        }
    }
}
