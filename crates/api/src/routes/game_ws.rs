//! `GET /api/v1/game/ws`: the game channel over WebSocket, the transport for clients
//! without QUIC (browsers without WebTransport, Godot, Unity).
//!
//! The connection is driven by [`channel::Channel::drive`], like QUIC's: the same
//! state machine, `Hello`/`Welcome`, `Authenticate { token }` with the REST token
//! (browsers cannot set headers on a WebSocket), the same game handler, limits and
//! timeouts. What differs is the framing, chosen by the subprotocol
//! (`Sec-WebSocket-Protocol`):
//!
//! - `pixsim.v2` (also when the client offers none): each WS *binary* message is one
//!   postcard payload, without the length prefix;
//! - `pixsim.v2.json`: each WS *text* message is one message in the JSON encoding.
//!
//! A message of the other kind, an undecodable one, or one over
//! [`protocol::MAX_FRAME_LEN`] (refused by the WebSocket reader before it is
//! buffered) closes the connection: first the `ServerMessage::Error` saying why, then
//! a close frame with code `4000 + CloseCode` and [`CloseCode::reason`] as the reason.
//!
//! The limits are the [`channel::ChannelConfig`] of the channel the server hands over
//! in [`AppState::game_ws`]: its own live-connection count and `max_connections`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use channel::{
    Batch, COALESCE_BYTES, Channel, CloseSignal, Connection, End, FLUSH_TIMEOUT, Link, Outbox,
    OutboxReceiver, Read, Reader, split_frames,
};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use protocol::v2::{ClientMessage, ErrorCode, ServerMessage};
use protocol::{CloseCode, ConnState, MAX_FRAME_LEN};
use tokio::time::Instant;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ErrorBody, ErrorDetail};
use crate::state::AppState;

/// The binary subprotocol: one postcard payload per binary message.
pub const SUBPROTOCOL_BINARY: &str = "pixsim.v2";
/// The JSON subprotocol: one JSON-encoded message per text message.
pub const SUBPROTOCOL_JSON: &str = "pixsim.v2.json";
/// The WebSocket close code for `code`: `4000 +` its number.
pub fn ws_close_code(code: CloseCode) -> u16 {
    u16::try_from(4000 + code.as_u32()).unwrap_or(4000)
}

/// Read buffer of one WebSocket game connection.
const WS_READ_BUFFER: usize = 8 * 1024;
/// Bytes the writer gathers before writing to the socket (each batch is flushed anyway).
const WS_WRITE_BUFFER: usize = 16 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(game_ws))
}

/// The two encodings of the game channel over WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `pixsim.v2`: binary messages, postcard payloads.
    Binary,
    /// `pixsim.v2.json`: text messages, JSON.
    Json,
}

impl Mode {
    fn subprotocol(self) -> &'static str {
        match self {
            Mode::Binary => SUBPROTOCOL_BINARY,
            Mode::Json => SUBPROTOCOL_JSON,
        }
    }
}

/// The subprotocol to speak: the first the client offers that the server knows
/// (`Ok(None)`: none offered, binary); `Err` when it offers only others.
fn choose_mode(headers: &HeaderMap) -> Result<Option<Mode>, String> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok(None);
    }
    for p in &offered {
        if *p == SUBPROTOCOL_BINARY {
            return Ok(Some(Mode::Binary));
        }
        if *p == SUBPROTOCOL_JSON {
            return Ok(Some(Mode::Json));
        }
    }
    Err(format!(
        "unsupported subprotocol {offered:?}: offer `{SUBPROTOCOL_BINARY}` (binary) or `{SUBPROTOCOL_JSON}` (JSON text)"
    ))
}

fn refusal(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.into(),
            message,
            details: None,
        },
    };
    (status, axum::Json(body)).into_response()
}

/// The game channel over WebSocket. Offer the subprotocol `pixsim.v2` (binary: each
/// binary message is one postcard payload, no length prefix; the default when none is
/// offered) or `pixsim.v2.json` (each text message is one message in the JSON
/// encoding). Then speak the game protocol (see `docs/protocol.md`): `Hello`, then
/// `Authenticate { token }` with a token from `/api/v1/auth/login`. A connection is
/// closed with the `Error` message saying why, then a close frame with code
/// `4000 + CloseCode` (4001 protocol error, 4003 message over 64 KiB, ...).
#[utoipa::path(get, path = "/api/v1/game/ws", operation_id = "game_websocket", tag = "game",
    responses(
        (status = 101, description = "WebSocket upgrade; then the game protocol, one message per WebSocket message"),
        (status = 400, description = "a malformed WebSocket upgrade request, or only unknown subprotocols offered", body = ErrorBody),
        (status = 426, description = "not a WebSocket upgrade request", body = ErrorBody),
        (status = 503, description = "the game channel is not running", body = ErrorBody)))]
async fn game_ws(
    State(s): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let mut upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            let asked = headers
                .get(header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let status = if asked {
                e.status()
            } else {
                StatusCode::UPGRADE_REQUIRED
            };
            let message = format!("a WebSocket upgrade request is required: {}", e.body_text());
            let mut res = refusal(status, "upgrade_required", message);
            if status == StatusCode::UPGRADE_REQUIRED {
                let h = res.headers_mut();
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            }
            return res;
        }
    };
    let Some(channel) = s.game_ws.clone() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the game channel is not running".into(),
        );
    };
    let mode = match choose_mode(&headers) {
        Ok(Some(mode)) => {
            upgrade.set_selected_protocol(HeaderValue::from_static(mode.subprotocol()));
            mode
        }
        Ok(None) => Mode::Binary,
        Err(message) => return refusal(StatusCode::BAD_REQUEST, "bad_request", message),
    };
    let remote = extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    upgrade
        .max_message_size(MAX_FRAME_LEN)
        .max_frame_size(MAX_FRAME_LEN)
        // tungstenite's defaults are 128 KiB each way per connection; the game's
        // messages are small and the writer flushes every batch, so a few KiB serve
        // (a larger message still grows the buffer, up to the limits above).
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .on_upgrade(move |socket| {
            let id = channel.next_id();
            let span =
                tracing::info_span!("ws_conn", id, remote = %remote, mode = mode.subprotocol());
            tracing::Instrument::instrument(serve(socket, channel, id, remote, mode), span)
        })
}

/// Drives one upgraded connection to its close.
async fn serve(socket: WebSocket, channel: Channel, id: u64, remote: SocketAddr, mode: Mode) {
    let handshake_deadline = Instant::now() + channel.config().handshake_timeout;
    let (mut sink, stream) = socket.split();
    let _admission = match channel.admit() {
        Ok(a) => a,
        Err(code) => {
            refuse(&mut sink, code, mode).await;
            return;
        }
    };
    tracing::debug!("WebSocket game connection established");
    let link = Arc::new(CloseSignal::new());
    let (outbox, rx) = Outbox::new(link.clone(), channel.config().outbox_capacity);
    let writer = tokio::spawn(write_loop(sink, rx, link, mode));
    channel
        .drive(Connection {
            id,
            remote,
            reader: WsReader { stream, mode },
            outbox,
            writer,
            handshake_deadline,
        })
        .await;
}

/// Closes a connection the driver never ran for: the `Error` saying why, then the
/// close frame (bounded).
async fn refuse(sink: &mut SplitSink<WebSocket, Message>, code: CloseCode, mode: Mode) {
    let error = ServerMessage::Error {
        code: ErrorCode::from(code),
        message: code.reason().to_owned(),
    };
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, async {
        if let Ok(frame) = protocol::frame(&error) {
            let _ = send_frames(sink, &frame, mode).await;
        }
        let _ = sink.send(close_frame(code)).await;
    })
    .await;
}

fn close_frame(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code: ws_close_code(code),
        reason: code.reason().into(),
    }))
}

/// Client messages off the socket, decoded per the subprotocol.
struct WsReader {
    stream: SplitStream<WebSocket>,
    mode: Mode,
}

impl Reader for WsReader {
    async fn next(&mut self, _state: ConnState) -> Read {
        let msg = match self.stream.next().await {
            None => return Read::End(End::Lost(None)),
            Some(Err(e)) => return Read::End(read_error(e)),
            Some(Ok(msg)) => msg,
        };
        let decoded = match (msg, self.mode) {
            (Message::Binary(bytes), Mode::Binary) => {
                protocol::decode_payload::<ClientMessage>(&bytes)
            }
            (Message::Text(text), Mode::Json) => protocol::client_from_json(text.as_str()),
            (Message::Text(_), Mode::Binary) => {
                return protocol_error("a text message on the binary subprotocol");
            }
            (Message::Binary(_), Mode::Json) => {
                return protocol_error("a binary message on the JSON subprotocol");
            }
            // Pings are answered by the WebSocket layer; both count as activity.
            (Message::Ping(_) | Message::Pong(_), _) => return Read::Alive,
            // The client closes: a normal end (our close frame answers it).
            (Message::Close(_), _) => {
                return Read::End(End::Close(CloseCode::Normal, String::new()));
            }
        };
        match decoded {
            Ok(msg) => Read::Message(msg),
            Err(e) => Read::End(End::Close(e.close_code(), e.to_string())),
        }
    }
}

fn protocol_error(detail: &str) -> Read {
    Read::End(End::Close(CloseCode::ProtocolError, detail.to_owned()))
}

/// A failed read: a message or frame over the limit is [`CloseCode::FrameTooLarge`],
/// another WebSocket protocol violation [`CloseCode::ProtocolError`]; a broken or
/// closed socket is the connection lost.
fn read_error(e: axum::Error) -> End {
    let detail = e.to_string();
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) => match *e {
            tungstenite::Error::Capacity(_) => End::Close(CloseCode::FrameTooLarge, detail),
            tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
                End::Close(CloseCode::ProtocolError, detail)
            }
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_)
            | tungstenite::Error::Tls(_)
            | tungstenite::Error::WriteBufferFull(_)
            | tungstenite::Error::Url(_)
            | tungstenite::Error::Http(_)
            | tungstenite::Error::HttpFormat(_)
            | tungstenite::Error::AttackAttempt => {
                tracing::debug!(error = %detail, "WebSocket read failed");
                End::Lost(None)
            }
        },
        Err(_) => End::Lost(None),
    }
}

/// Sends the queued frames, one WebSocket message per payload (JSON: transcoded),
/// until the finish or a close of the link; then the close frame with the code.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: OutboxReceiver,
    link: Arc<CloseSignal>,
    mode: Mode,
) {
    let code = loop {
        let batch = tokio::select! {
            biased;
            b = rx.next(COALESCE_BYTES) => b,
            () = link.closed() => break link.close_code().unwrap_or(CloseCode::InternalError),
        };
        let bytes = match batch {
            Batch::Frames(bytes) => bytes,
            Batch::Finish(code) => break code,
        };
        let sent = send_frames(&mut sink, &bytes, mode);
        tokio::select! {
            biased;
            r = sent => if let Err(e) = r {
                tracing::debug!(error = %e, "WebSocket write failed");
                return;
            },
            () = link.closed() => break link.close_code().unwrap_or(CloseCode::InternalError),
        }
    };
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, sink.send(close_frame(code))).await;
}

/// One message per payload of `frames`, flushed together.
async fn send_frames(
    sink: &mut SplitSink<WebSocket, Message>,
    frames: &[u8],
    mode: Mode,
) -> Result<(), axum::Error> {
    for payload in split_frames(frames) {
        let msg = match mode {
            Mode::Binary => Message::Binary(Bytes::copy_from_slice(payload)),
            Mode::Json => match transcode(payload) {
                Some(text) => Message::Text(text.into()),
                None => continue,
            },
        };
        sink.feed(msg).await?;
    }
    sink.flush().await
}

/// A server message's postcard payload in the JSON encoding (the event bytes of an
/// `Event` become the nested event object).
fn transcode(payload: &[u8]) -> Option<String> {
    let msg = match protocol::decode_server_payload(payload) {
        Ok(Some(msg)) => msg,
        Ok(None) => {
            tracing::error!("an unknown server message cannot be sent as JSON");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "a server message cannot be decoded for JSON");
            return None;
        }
    };
    match protocol::to_json(&msg) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::error!(error = %e, msg = msg.name(), "a server message cannot be encoded as JSON");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn offered(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(v).unwrap(),
        );
        h
    }

    #[test]
    fn subprotocol_is_the_first_known_one_offered() {
        assert_eq!(choose_mode(&HeaderMap::new()), Ok(None));
        assert_eq!(
            choose_mode(&offered("pixsim.v2.json")),
            Ok(Some(Mode::Json))
        );
        assert_eq!(
            choose_mode(&offered("other, pixsim.v2, pixsim.v2.json")),
            Ok(Some(Mode::Binary))
        );
        assert!(choose_mode(&offered("pixsim.v1")).is_err());
        assert_eq!(ws_close_code(CloseCode::ProtocolError), 4001);
        assert_eq!(ws_close_code(CloseCode::SessionTakenOver), 4011);
    }

    #[test]
    fn events_transcode_to_nested_json() {
        let msg = protocol::v2::ServerMessage::Heartbeat { server_time_ms: 5 };
        let frame = protocol::frame(&msg).unwrap();
        let payload = split_frames(&frame).next().unwrap();
        assert_eq!(
            transcode(payload).unwrap(),
            r#"{"Heartbeat":{"server_time_ms":5}}"#
        );
    }
}
