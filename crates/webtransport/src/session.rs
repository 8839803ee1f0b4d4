//! One connection up to its game stream: the QUIC handshake, the HTTP/3 SETTINGS and
//! the WebTransport CONNECT (only [`SESSION_PATH`](crate::SESSION_PATH) is accepted,
//! any other path is answered 404), the admission under `max_connections`, and the
//! client-opened bidirectional stream, all within the handshake deadline. Then the
//! `channel` crate's driver runs the game protocol on the stream
//! ([`channel::drive_stream`]) and closes through [`SessionLink`].

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use channel::{Channel, Link, StreamConnection, drive_stream};
use protocol::CloseCode;
use tokio::time::{Instant, timeout, timeout_at};
use web_transport_quinn::{Request, Session};

use crate::link::SessionLink;

/// How long a close waits to reach the peer before the task lets the session go.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Serves one incoming connection on `channel`.
pub(crate) async fn serve(incoming: quinn::Incoming, channel: Channel, path: &'static str) {
    let deadline = Instant::now() + channel.config().handshake_timeout;
    let remote = incoming.remote_address();
    let session = tokio::select! {
        biased;
        () = channel.stopped() => return,
        r = timeout_at(deadline, establish(incoming, path)) => match r {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(_) => {
                tracing::debug!("WebTransport handshake timed out");
                return;
            }
        },
    };
    let link = Arc::new(SessionLink::new(session.clone()));
    let _admission = match channel.admit() {
        Ok(a) => a,
        Err(code) => {
            link.close(code);
            link.flush_close(CLOSE_WAIT).await;
            return;
        }
    };
    let streams = tokio::select! {
        biased;
        () = channel.stopped() => Err(CloseCode::ServerShutdown),
        r = timeout_at(deadline, session.accept_bi()) => match r {
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
            let stream = StreamConnection {
                recv,
                send,
                link: Arc::clone(&link) as Arc<dyn Link>,
                remote,
                handshake_deadline: deadline,
            };
            drive_stream(&channel, stream).await;
        }
        Err(code) => link.close(code),
    }
    link.flush_close(CLOSE_WAIT).await;
}

/// The QUIC handshake, the HTTP/3 settings and the CONNECT request; `None` when one
/// failed or the path is not `path` (answered 404).
async fn establish(incoming: quinn::Incoming, path: &str) -> Option<Session> {
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
    if request.url.path() != path {
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
