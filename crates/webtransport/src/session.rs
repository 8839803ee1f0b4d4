//! One connection up to its game stream: the QUIC handshake, the HTTP/3 SETTINGS and
//! the WebTransport CONNECT (only [`SESSION_PATH`](crate::SESSION_PATH) is accepted,
//! any other path is answered 404), the session limit, and the client-opened
//! bidirectional stream, all within the handshake deadline. Then the
//! [`SessionDriver`] runs the game protocol on the stream.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol::CloseCode;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};
use web_transport_quinn::{RecvStream, Request, SendStream, Session};

use crate::server::{LiveGuard, Shared, stopped};

/// How long a session closed before its stream is driven waits for the close to be
/// delivered.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// An established WebTransport session and its game stream, handed to the driver.
#[derive(Debug)]
pub struct GameStream {
    /// Endpoint-unique connection id (also in log spans).
    pub id: u64,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The session (close it with [`close_session`]).
    pub session: Session,
    /// Server to client.
    pub send: SendStream,
    /// Client to server.
    pub recv: RecvStream,
    /// When the handshake must be done by (the game's `Hello` included).
    pub handshake_deadline: Instant,
}

/// Runs the game protocol on one session's stream until it ends; resolves when the
/// connection is over. `stop` turns true when the endpoint shuts down (close with
/// [`CloseCode::ServerShutdown`]).
pub trait SessionDriver: Send + Sync + 'static {
    /// Drives `stream` to its end.
    fn drive(
        &self,
        stream: GameStream,
        stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// Closes `session` with `code`: the WebTransport session error code is the
/// [`CloseCode`] number, the reason its text.
pub fn close_session(session: &Session, code: CloseCode) {
    session.close(code.as_u32(), code.reason().as_bytes());
}

/// Closes `session` with `code` and waits (briefly) for the close to reach the peer.
async fn close_and_wait(session: &Session, code: CloseCode) {
    close_session(session, code);
    let _ = timeout(CLOSE_WAIT, session.closed()).await;
}

/// Serves one incoming connection.
pub(crate) async fn serve(
    incoming: quinn::Incoming,
    id: u64,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let deadline = Instant::now() + shared.cfg.handshake_timeout;
    let remote = incoming.remote_address();
    let established = tokio::select! {
        biased;
        () = stopped(stop.clone()) => return,
        r = timeout_at(deadline, establish(incoming, &shared)) => match r {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(_) => {
                tracing::debug!("WebTransport handshake timed out");
                return;
            }
        },
    };
    let live = shared.stats.live.fetch_add(1, Ordering::Relaxed) + 1;
    let _guard = LiveGuard(Arc::clone(&shared.stats.live));
    if live > shared.cfg.max_connections {
        tracing::warn!(
            max = shared.cfg.max_connections,
            "session refused: server full"
        );
        close_and_wait(&established, CloseCode::ServerFull).await;
        return;
    }
    shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
    let streams = tokio::select! {
        biased;
        () = stopped(stop.clone()) => Err(CloseCode::ServerShutdown),
        r = timeout_at(deadline, established.accept_bi()) => match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "session lost before opening a stream");
                return;
            }
            Err(_) => Err(CloseCode::HandshakeTimeout),
        },
    };
    match streams {
        Ok((send, recv)) => {
            let stream = GameStream {
                id,
                remote,
                session: established,
                send,
                recv,
                handshake_deadline: deadline,
            };
            shared.driver.drive(stream, stop).await;
        }
        Err(code) => close_and_wait(&established, code).await,
    }
}

/// The QUIC handshake, the HTTP/3 settings and the CONNECT request; `None` when one
/// failed or the path is not the game's (answered 404).
async fn establish(incoming: quinn::Incoming, shared: &Shared) -> Option<Session> {
    let conn = match incoming.into_future().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(error = %e, "QUIC handshake failed");
            return None;
        }
    };
    let request = match Request::accept(conn).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "WebTransport request failed");
            return None;
        }
    };
    if request.url.path() != shared.path {
        tracing::debug!(path = %request.url.path(), "WebTransport session refused: unknown path");
        let conn = request.conn().clone();
        if let Err(e) = request.reject(http::StatusCode::NOT_FOUND).await {
            tracing::debug!(error = %e, "refusing a WebTransport session failed");
        }
        // The client closes after the 404; bound the wait for it.
        let _ = timeout(CLOSE_WAIT, conn.closed()).await;
        conn.close(0u32.into(), b"not found");
        return None;
    }
    match request.ok().await {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::debug!(error = %e, "accepting a WebTransport session failed");
            None
        }
    }
}
