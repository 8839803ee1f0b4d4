//! The game channel's [`Link`] over a WebTransport session: a close is the session
//! closed with the [`CloseCode`] number as its error code and the code's reason text
//! (the CLOSE_WEBTRANSPORT_SESSION capsule), and the peer's close is read back the
//! same way.

use protocol::CloseCode;
use std::sync::OnceLock;

use channel::{BoxFuture, Link};
use tokio::sync::watch;
use web_transport_quinn::Session;

use crate::client::close_of;

/// Closes `session` with `code`: the WebTransport session error code is the
/// [`CloseCode`] number, the reason its text.
pub fn close_session(session: &Session, code: CloseCode) {
    session.close(code.as_u32(), code.reason().as_bytes());
}

/// A [`Link`] over one WebTransport session.
#[derive(Debug)]
pub(crate) struct SessionLink {
    session: Session,
    /// The code we closed with, first close wins.
    local: OnceLock<CloseCode>,
    /// Turns true at our close (the session itself reports closed only once the peer
    /// has answered the close or the close timed out).
    closing: watch::Sender<bool>,
}

impl SessionLink {
    pub(crate) fn new(session: Session) -> Self {
        SessionLink {
            session,
            local: OnceLock::new(),
            closing: watch::Sender::new(false),
        }
    }

    /// Waits (at most `wait`) for a close of ours to reach the peer.
    pub(crate) async fn flush_close(&self, wait: std::time::Duration) {
        let _ = tokio::time::timeout(wait, self.session.closed()).await;
    }
}

impl Link for SessionLink {
    fn close(&self, code: CloseCode) {
        if self.local.set(code).is_ok() {
            close_session(&self.session, code);
            self.closing.send_replace(true);
        }
    }

    fn is_closed(&self) -> bool {
        self.local.get().is_some() || self.session.close_reason().is_some()
    }

    fn closed(&self) -> BoxFuture<'_, ()> {
        let mut closing = self.closing.subscribe();
        Box::pin(async move {
            tokio::select! {
                _ = closing.wait_for(|c| *c) => {}
                _ = self.session.closed() => {}
            }
        })
    }

    fn close_code(&self) -> Option<CloseCode> {
        self.local.get().copied().or_else(|| {
            self.session
                .close_reason()
                .and_then(|e| close_of(&e))
                .and_then(|(code, _)| CloseCode::from_u32(code))
        })
    }
}
