//! A WebTransport client of the game channel, for tests and tools: it pins the server
//! by certificate hash (as a browser's `serverCertificateHashes`), opens the game
//! stream and speaks the framed protocol on it. Decoding is lenient, as a client's
//! should be (a message of a newer server is skipped).

use std::collections::VecDeque;
use std::time::Duration;

use protocol::v2::{ClientMessage, ServerMessage};
use protocol::{CodecError, FrameDecoder, encode_frame};
use web_transport_quinn::{RecvStream, SendStream, Session, SessionError, WebTransportError};

/// Read buffer size.
const READ_BUF: usize = 16 * 1024;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Invalid URL.
    #[error("invalid URL {0}")]
    Url(String),
    /// The connection or the WebTransport session could not be set up (a certificate
    /// whose hash is not pinned fails here).
    #[error("connecting: {0}")]
    Connect(#[from] web_transport_quinn::ClientError),
    /// The session failed.
    #[error("session: {0}")]
    Session(#[from] SessionError),
    /// Writing to the game stream failed.
    #[error("write: {0}")]
    Write(#[from] web_transport_quinn::WriteError),
    /// Reading from the game stream failed.
    #[error("read: {0}")]
    Read(#[from] web_transport_quinn::ReadError),
    /// A frame could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The server finished its stream.
    #[error("stream ended")]
    StreamEnded,
}

/// One WebTransport session of the game channel, with its game stream open.
#[derive(Debug)]
pub struct GameClient {
    session: Session,
    send: SendStream,
    recv: RecvStream,
    decoder: FrameDecoder<ServerMessage>,
    inbox: VecDeque<ServerMessage>,
    buf: Vec<u8>,
}

/// A WebTransport client endpoint trusting exactly the certificates with these
/// SHA-256 hashes (as a browser's `serverCertificateHashes` does).
pub fn pinned_client(hashes: Vec<[u8; 32]>) -> Result<web_transport_quinn::Client, ClientError> {
    let hashes = hashes.into_iter().map(|h| h.to_vec()).collect();
    Ok(web_transport_quinn::ClientBuilder::new().with_server_certificate_hashes(hashes)?)
}

impl GameClient {
    /// Opens a session at `url` (`https://host:port/game`) trusting the certificates
    /// whose SHA-256 is in `hashes`, and opens the game stream.
    pub async fn connect(url: &str, hashes: Vec<[u8; 32]>) -> Result<Self, ClientError> {
        let url = url::Url::parse(url).map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
        let session = pinned_client(hashes)?.connect(url).await?;
        Self::open(session).await
    }

    /// Opens the game stream on an established session.
    pub async fn open(session: Session) -> Result<Self, ClientError> {
        let (send, recv) = session.open_bi().await?;
        Ok(GameClient {
            session,
            send,
            recv,
            decoder: FrameDecoder::new(),
            inbox: VecDeque::new(),
            buf: vec![0; READ_BUF],
        })
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let mut frame = Vec::new();
        encode_frame(msg, &mut frame)?;
        self.send_raw(&frame).await
    }

    /// Sends raw bytes on the game stream (malformed frames in tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.send.write_all(bytes).await?;
        Ok(())
    }

    /// Receives the next server message.
    pub async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        loop {
            if let Some(msg) = self.inbox.pop_front() {
                return Ok(msg);
            }
            let Some(n) = self.recv.read(&mut self.buf).await? else {
                return Err(ClientError::StreamEnded);
            };
            let mut input = self.buf.get(..n).unwrap_or_default();
            while !input.is_empty() {
                if let Some(Some(msg)) = self
                    .decoder
                    .decode_with(&mut input, protocol::decode_server_payload)?
                {
                    self.inbox.push_back(msg);
                }
            }
        }
    }

    /// [`Self::recv`] within `wait`; `None` when nothing came.
    pub async fn recv_within(
        &mut self,
        wait: Duration,
    ) -> Result<Option<ServerMessage>, ClientError> {
        match tokio::time::timeout(wait, self.recv()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Waits for the session to close; the WebTransport close code and reason when
    /// the server closed it with one.
    pub async fn closed(&self) -> Option<(u32, String)> {
        close_of(&self.session.closed().await)
    }

    /// Closes the session with `code` and `reason`.
    pub fn close(&self, code: u32, reason: &str) {
        self.session.close(code, reason.as_bytes());
    }
}

/// The WebTransport close code and reason in `err`, if it is a session close.
pub fn close_of(err: &SessionError) -> Option<(u32, String)> {
    match err {
        SessionError::WebTransportError(WebTransportError::Closed(code, reason)) => {
            Some((*code, reason.clone()))
        }
        SessionError::WebTransportError(_)
        | SessionError::ConnectionError(_)
        | SessionError::SendDatagramError(_) => None,
    }
}
