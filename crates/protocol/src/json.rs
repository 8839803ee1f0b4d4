//! The JSON encoding of the messages (the WebSocket subprotocol `pixsim.v2.json`): the
//! same types through serde_json. The server reads a client message strictly; a client
//! reads a server message leniently (an unknown message is skipped, unknown fields are
//! ignored).

use serde::Serialize;

use crate::MAX_FRAME_LEN;
use crate::codec::CodecError;
use crate::v2::{ClientMessage, SERVER_MESSAGE_VARIANTS, ServerMessage};

/// Encodes `msg` in the JSON encoding (one WebSocket text message).
pub fn to_json<M: Serialize + ?Sized>(msg: &M) -> Result<String, CodecError> {
    serde_json::to_string(msg).map_err(|e| CodecError::Json(e.to_string()))
}

/// Decodes a client message in the JSON encoding, strictly (unknown fields are
/// ignored, like serde does, but an unknown message is an error). At most
/// [`MAX_FRAME_LEN`] bytes.
pub fn client_from_json(text: &str) -> Result<ClientMessage, CodecError> {
    if text.len() > MAX_FRAME_LEN {
        return Err(CodecError::FrameTooLarge {
            len: text.len() as u64,
            max: MAX_FRAME_LEN,
        });
    }
    serde_json::from_str(text).map_err(|e| CodecError::Json(e.to_string()))
}

/// Decodes a server message in the JSON encoding as a client should: a message this
/// build does not know gives `Ok(None)`, unknown fields are ignored.
pub fn server_from_json(text: &str) -> Result<Option<ServerMessage>, CodecError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| CodecError::Json(e.to_string()))?;
    let name = match &v {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Object(m) if m.len() == 1 => {
            m.keys().next().map(String::as_str).unwrap_or_default()
        }
        _ => {
            return Err(CodecError::Json(
                "a message is an object with one key".into(),
            ));
        }
    };
    if !SERVER_MESSAGE_VARIANTS.contains(&name) {
        return Ok(None);
    }
    serde_json::from_value(v)
        .map(Some)
        .map_err(|e| CodecError::Json(e.to_string()))
}
