//! [`WsWire`]: the game channel over WebSocket (`GET /api/v1/game/ws`). The
//! subprotocol names the encoding ([`WsEncoding`]): `pixsim.v2`, one postcard payload
//! per *binary* message, or `pixsim.v2.json`, one JSON message per *text* message. The
//! server closes with its `Error` message, then a close frame whose code is
//! `4000 + CloseCode`. There are no datagrams: the clock is synced with pings
//! (`Pong.world_time_ms`, in [`crate::timesync`]).
//!
//! A reader task owns the socket's receiving half: it decodes messages into a bounded
//! channel (so a client that stops reading still pushes back on the server) and keeps
//! how the socket ended, which [`WsWire::closed`] reports without a `&mut`.

use std::net::SocketAddr;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use protocol::CloseCode;
use protocol::v2::{ClientMessage, ServerMessage};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;

/// The path of the game channel on the HTTP origin.
pub const WS_PATH: &str = "/api/v1/game/ws";
/// Messages decoded ahead of the application.
const INBOX: usize = 64;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The two encodings of the game channel over WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsEncoding {
    /// `pixsim.v2`: binary messages, each one postcard payload.
    Binary,
    /// `pixsim.v2.json`: text messages, each one message in the JSON encoding.
    Json,
}

impl WsEncoding {
    /// The `Sec-WebSocket-Protocol` naming this encoding.
    pub fn subprotocol(self) -> &'static str {
        match self {
            WsEncoding::Binary => "pixsim.v2",
            WsEncoding::Json => "pixsim.v2.json",
        }
    }
}

/// The game channel's WebSocket URL for the HTTP origin `http` (`http://host:port`
/// → `ws://host:port/api/v1/game/ws`, `https` → `wss`).
pub fn websocket_url(http: &str) -> Result<String, ClientError> {
    let base = http.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        return Err(ClientError::Url(format!(
            "{http}: expected an http://, https://, ws:// or wss:// origin"
        )));
    };
    Ok(format!("{rest}{WS_PATH}"))
}

/// The WebSocket close code of a PixSim close: `4000 +` its number.
pub fn ws_close_code(code: CloseCode) -> u16 {
    u16::try_from(4000 + code.as_u32()).unwrap_or(4000)
}

/// One WebSocket game connection.
pub(crate) struct WsWire {
    sink: SplitSink<Socket, Message>,
    inbox: mpsc::Receiver<Result<ServerMessage, ClientError>>,
    /// How the socket ended; `None` while it is open.
    ended: watch::Receiver<Option<Ended>>,
    encoding: WsEncoding,
    remote: SocketAddr,
    reader: tokio::task::JoinHandle<()>,
}

/// How the socket ended, as the reader saw it.
#[derive(Clone, Debug)]
enum Ended {
    /// A close frame: its code and reason.
    Closed(u16, String),
    /// The socket ended without a close frame, or failed.
    Lost(String),
}

impl Ended {
    fn error(&self) -> ClientError {
        match self {
            Ended::Closed(code, reason) => {
                match code
                    .checked_sub(4000)
                    .and_then(|n| CloseCode::from_u32(u32::from(n)))
                {
                    Some(code) => ClientError::Closed {
                        code,
                        reason: reason.clone(),
                    },
                    None => ClientError::WebSocketClosed {
                        code: *code,
                        reason: reason.clone(),
                    },
                }
            }
            Ended::Lost(why) => ClientError::WebSocketLost(why.clone()),
        }
    }
}

impl Drop for WsWire {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl WsWire {
    /// Opens `url` offering `encoding`'s subprotocol, within `timeout`.
    pub(crate) async fn connect(
        url: &str,
        encoding: WsEncoding,
        timeout: Duration,
    ) -> Result<WsWire, ClientError> {
        let mut req = url.into_client_request().map_err(ClientError::websocket)?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(encoding.subprotocol()),
        );
        let connecting = tokio_tungstenite::connect_async_with_config(req, None, true);
        let (socket, res) = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(ClientError::websocket)?;
        let chosen = res
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if chosen != Some(encoding.subprotocol()) {
            return Err(ClientError::Unexpected("WebSocket subprotocol"));
        }
        let remote = peer_addr(socket.get_ref())?;
        let (sink, stream) = socket.split();
        let (tx, inbox) = mpsc::channel(INBOX);
        let (ended_tx, ended) = watch::channel(None);
        let reader = tokio::spawn(read_loop(stream, encoding, tx, ended_tx));
        Ok(WsWire {
            sink,
            inbox,
            ended,
            encoding,
            remote,
            reader,
        })
    }

    pub(crate) fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    pub(crate) fn encoding(&self) -> WsEncoding {
        self.encoding
    }

    pub(crate) async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let out = match self.encoding {
            WsEncoding::Binary => {
                let frame = protocol::frame(msg)?;
                Message::Binary(frame.get(4..).unwrap_or_default().to_vec().into())
            }
            WsEncoding::Json => Message::Text(protocol::to_json(msg)?.into()),
        };
        self.write(out).await
    }

    /// One binary message of `bytes` (tests: malformed input).
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.write(Message::Binary(bytes.to_vec().into())).await
    }

    async fn write(&mut self, msg: Message) -> Result<(), ClientError> {
        match self.sink.send(msg).await {
            Ok(()) => Ok(()),
            // The socket is gone: say how, if the reader saw it end.
            Err(e) => Err(match self.ended.borrow().as_ref() {
                Some(ended) => ended.error(),
                None => ClientError::websocket(e),
            }),
        }
    }

    /// The next server message (cancel-safe).
    pub(crate) async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        match self.inbox.recv().await {
            Some(r) => r,
            None => Err(self.closed().await),
        }
    }

    /// Waits until the socket ends and says how.
    pub(crate) async fn closed(&self) -> ClientError {
        let mut ended = self.ended.clone();
        match ended.wait_for(Option::is_some).await {
            Ok(e) => e.as_ref().map_or(ClientError::StreamEnded, Ended::error),
            Err(_) => ClientError::StreamEnded,
        }
    }

    /// Sends a close frame (`4000 + code`) and waits briefly for the server's.
    pub(crate) async fn close(mut self, code: CloseCode) {
        let frame = CloseFrame {
            code: WsCloseCode::from(ws_close_code(code)),
            reason: code.reason().into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            // Until the reader has seen the server's close frame.
            while self.inbox.recv().await.is_some() {}
        })
        .await;
    }
}

fn peer_addr(stream: &MaybeTlsStream<TcpStream>) -> Result<SocketAddr, ClientError> {
    match stream {
        MaybeTlsStream::Plain(s) => Ok(s.peer_addr()?),
        MaybeTlsStream::Rustls(s) => Ok(s.get_ref().0.peer_addr()?),
        // Not built with other TLS stacks.
        _ => Err(ClientError::Unexpected("WebSocket stream kind")),
    }
}

/// Decodes the socket's messages into `tx` until it ends; then records how in
/// `ended` (before `tx` is dropped, so a reader finding the channel closed finds it).
async fn read_loop(
    mut stream: SplitStream<Socket>,
    encoding: WsEncoding,
    tx: mpsc::Sender<Result<ServerMessage, ClientError>>,
    ended: watch::Sender<Option<Ended>>,
) {
    let end = loop {
        let msg = match stream.next().await {
            None => break Ended::Lost("the socket ended without a close frame".into()),
            Some(Err(e)) => break Ended::Lost(e.to_string()),
            Some(Ok(msg)) => msg,
        };
        let decoded = match (msg, encoding) {
            (Message::Binary(b), WsEncoding::Binary) => {
                protocol::decode_server_payload(&b).map_err(ClientError::from)
            }
            (Message::Text(t), WsEncoding::Json) => {
                protocol::server_from_json(t.as_str()).map_err(ClientError::from)
            }
            (Message::Text(_), WsEncoding::Binary) => {
                Err(ClientError::Unexpected("a text message on pixsim.v2"))
            }
            (Message::Binary(_), WsEncoding::Json) => Err(ClientError::Unexpected(
                "a binary message on pixsim.v2.json",
            )),
            (Message::Close(frame), _) => {
                break match frame {
                    Some(f) => Ended::Closed(u16::from(f.code), f.reason.as_str().to_owned()),
                    None => Ended::Closed(1005, String::new()),
                };
            }
            (Message::Ping(_) | Message::Pong(_) | Message::Frame(_), _) => continue,
        };
        let item = match decoded {
            // A message of a newer server is skipped.
            Ok(None) => continue,
            Ok(Some(msg)) => Ok(msg),
            Err(e) => Err(e),
        };
        if tx.send(item).await.is_err() {
            break Ended::Lost("the client stopped reading".into());
        }
    };
    ended.send_replace(Some(end));
}

impl ClientError {
    fn websocket(e: tungstenite::Error) -> ClientError {
        ClientError::WebSocket(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn websocket_urls_follow_the_http_origin() {
        assert_eq!(
            websocket_url("http://127.0.0.1:8080/").unwrap(),
            "ws://127.0.0.1:8080/api/v1/game/ws"
        );
        assert_eq!(
            websocket_url("https://game.example").unwrap(),
            "wss://game.example/api/v1/game/ws"
        );
        assert!(matches!(
            websocket_url("127.0.0.1:8080"),
            Err(ClientError::Url(_))
        ));
    }

    #[test]
    fn close_frames_carry_pixsim_codes_above_4000() {
        assert_eq!(ws_close_code(CloseCode::SessionTakenOver), 4011);
        let e = Ended::Closed(4011, "session taken over".into()).error();
        assert_eq!(e.close_code(), Some(CloseCode::SessionTakenOver));
        let e = Ended::Closed(1000, String::new()).error();
        assert!(matches!(e, ClientError::WebSocketClosed { code: 1000, .. }));
    }
}
