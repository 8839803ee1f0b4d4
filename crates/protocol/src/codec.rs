//! Length-prefixed framing and the postcard payload codec.
//!
//! A frame is a `u32` big-endian payload length followed by the payload.
//! [`FrameDecoder`] accepts arbitrary byte chunks (as they come off a QUIC
//! stream) and yields whole messages; its buffer never exceeds
//! [`FRAME_HEADER_LEN`] + [`MAX_FRAME_LEN`] bytes, and a declared length above
//! [`MAX_FRAME_LEN`] is rejected before anything is allocated for it.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{CloseCode, FRAME_HEADER_LEN, MAX_DATAGRAM_LEN, MAX_FRAME_LEN};

/// Encoding or decoding failure.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A frame (declared or encoded) is longer than [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// Offending length.
        len: u64,
        /// The maximum, [`MAX_FRAME_LEN`].
        max: usize,
    },
    /// A datagram (received or encoded) is longer than [`crate::MAX_DATAGRAM_LEN`].
    #[error("datagram of {len} bytes exceeds the maximum of {max} bytes")]
    DatagramTooLarge {
        /// Offending length.
        len: usize,
        /// The maximum, [`crate::MAX_DATAGRAM_LEN`].
        max: usize,
    },
    /// The payload is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(#[source] postcard::Error),
    /// The payload holds a valid message followed by extra bytes.
    #[error("malformed message: {0} trailing bytes")]
    TrailingBytes(usize),
    /// The message could not be serialized.
    #[error("cannot encode message: {0}")]
    Encode(#[source] postcard::Error),
    /// The decoder failed earlier; the stream is out of sync.
    #[error("decoder used after a framing error")]
    Poisoned,
    /// A text message is not a valid message in the JSON encoding.
    #[error("malformed JSON message: {0}")]
    Json(String),
}

impl CodecError {
    /// The close code a connection should be closed with after this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            CodecError::FrameTooLarge { .. } => CloseCode::FrameTooLarge,
            CodecError::Encode(_) => CloseCode::InternalError,
            CodecError::Malformed(_)
            | CodecError::TrailingBytes(_)
            | CodecError::Poisoned
            | CodecError::Json(_)
            | CodecError::DatagramTooLarge { .. } => CloseCode::ProtocolError,
        }
    }
}

/// Appends one frame (length prefix + postcard payload) holding `msg` to
/// `out`. On error `out` is left as it was.
pub fn encode_frame<M: Serialize + ?Sized>(msg: &M, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    let encoded = postcard::to_io(msg, &mut *out).map(|_| ());
    let len = out.len() - start - FRAME_HEADER_LEN;
    let result = match encoded {
        Err(e) => Err(CodecError::Encode(e)),
        Ok(()) if len > MAX_FRAME_LEN => Err(CodecError::FrameTooLarge {
            len: len as u64,
            max: MAX_FRAME_LEN,
        }),
        Ok(()) => match u32::try_from(len) {
            Ok(len32) => {
                out[start..start + FRAME_HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
                return Ok(());
            }
            Err(_) => Err(CodecError::FrameTooLarge {
                len: len as u64,
                max: MAX_FRAME_LEN,
            }),
        },
    };
    out.truncate(start);
    result
}

/// Encodes `msg` as a complete frame in a new buffer.
pub fn frame<M: Serialize + ?Sized>(msg: &M) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_frame(msg, &mut out)?;
    Ok(out)
}

/// Decodes one payload (without the length prefix). The payload must be
/// consumed exactly.
pub fn decode_payload<M: DeserializeOwned>(payload: &[u8]) -> Result<M, CodecError> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(CodecError::FrameTooLarge {
            len: payload.len() as u64,
            max: MAX_FRAME_LEN,
        });
    }
    let (msg, rest) = postcard::take_from_bytes(payload).map_err(CodecError::Malformed)?;
    if rest.is_empty() {
        Ok(msg)
    } else {
        Err(CodecError::TrailingBytes(rest.len()))
    }
}

/// The LEB128 varint `u32` at the start of `bytes` (an enum tag), if there is one.
pub(crate) fn read_varint_u32(bytes: &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().take(5).enumerate() {
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(value).ok();
        }
    }
    None
}

/// Encodes `msg` as one datagram payload (no length prefix), at most
/// [`MAX_DATAGRAM_LEN`] bytes.
pub fn encode_datagram<M: Serialize + ?Sized>(msg: &M) -> Result<Vec<u8>, CodecError> {
    let out = postcard::to_stdvec(msg).map_err(CodecError::Encode)?;
    if out.len() > MAX_DATAGRAM_LEN {
        return Err(CodecError::DatagramTooLarge {
            len: out.len(),
            max: MAX_DATAGRAM_LEN,
        });
    }
    Ok(out)
}

/// Decodes one datagram payload: at most [`MAX_DATAGRAM_LEN`] bytes (checked
/// before decoding), consumed exactly, like a frame's payload.
pub fn decode_datagram<M: DeserializeOwned>(datagram: &[u8]) -> Result<M, CodecError> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(CodecError::DatagramTooLarge {
            len: datagram.len(),
            max: MAX_DATAGRAM_LEN,
        });
    }
    decode_payload(datagram)
}

/// Incremental frame decoder for messages of type `M`.
///
/// ```
/// use protocol::{FrameDecoder, encode_frame, v2::ClientMessage};
/// let mut bytes = Vec::new();
/// encode_frame(&ClientMessage::Ping { nonce: 7, client_time_us: 0 }, &mut bytes).unwrap();
/// let mut decoder = FrameDecoder::<ClientMessage>::new();
/// let mut input = &bytes[..];
/// let mut got = Vec::new();
/// while !input.is_empty() {
///     if let Some(msg) = decoder.decode(&mut input).unwrap() {
///         got.push(msg);
///     }
/// }
/// assert_eq!(got.len(), 1);
/// ```
pub struct FrameDecoder<M> {
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    /// Declared payload length once the header is complete.
    payload_len: Option<usize>,
    payload: Vec<u8>,
    poisoned: bool,
    _msg: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for FrameDecoder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("header_len", &self.header_len)
            .field("payload_len", &self.payload_len)
            .field("buffered", &self.payload.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl<M> Default for FrameDecoder<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> FrameDecoder<M> {
    /// A decoder at a frame boundary.
    pub fn new() -> Self {
        FrameDecoder {
            header: [0; FRAME_HEADER_LEN],
            header_len: 0,
            payload_len: None,
            payload: Vec::new(),
            poisoned: false,
            _msg: PhantomData,
        }
    }

    /// True when the decoder holds part of a frame (a stream ending now
    /// would be truncated).
    pub fn has_partial(&self) -> bool {
        self.header_len > 0 || self.payload_len.is_some()
    }

    /// Bytes currently buffered (header + payload), at most
    /// `FRAME_HEADER_LEN + MAX_FRAME_LEN`.
    pub fn buffered(&self) -> usize {
        self.header_len + self.payload.len()
    }
}

impl<M: DeserializeOwned> FrameDecoder<M> {
    /// Consumes bytes from the front of `input` until one message is
    /// complete (returned as `Some`) or `input` is exhausted (`None`).
    /// Call it again while `input` is non-empty.
    ///
    /// After a [`CodecError::FrameTooLarge`] the stream is out of sync and
    /// every later call returns [`CodecError::Poisoned`]. After a malformed
    /// payload the frame has been consumed; the caller is expected to close
    /// the connection anyway.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<M>, CodecError> {
        self.decode_with(input, decode_payload)
    }
}

impl<M> FrameDecoder<M> {
    /// [`FrameDecoder::decode`] with another payload decoder, e.g.
    /// [`decode_server_payload`] on a client.
    pub fn decode_with<T>(
        &mut self,
        input: &mut &[u8],
        decode_payload: impl FnOnce(&[u8]) -> Result<T, CodecError>,
    ) -> Result<Option<T>, CodecError> {
        if self.poisoned {
            return Err(CodecError::Poisoned);
        }
        loop {
            let Some(len) = self.payload_len else {
                // Reading the header.
                let take = (FRAME_HEADER_LEN - self.header_len).min(input.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&input[..take]);
                self.header_len += take;
                *input = &input[take..];
                if self.header_len < FRAME_HEADER_LEN {
                    return Ok(None);
                }
                let declared = u32::from_be_bytes(self.header);
                let len = declared as usize;
                if len > MAX_FRAME_LEN {
                    self.poisoned = true;
                    return Err(CodecError::FrameTooLarge {
                        len: u64::from(declared),
                        max: MAX_FRAME_LEN,
                    });
                }
                self.payload_len = Some(len);
                continue;
            };
            // Reading the payload. Fast path: the whole payload is in
            // `input` and nothing is buffered, so decode in place.
            if self.payload.is_empty() && input.len() >= len {
                let (payload, rest) = input.split_at(len);
                *input = rest;
                self.reset_frame();
                return decode_payload(payload).map(Some);
            }
            let take = (len - self.payload.len()).min(input.len());
            if self.payload.capacity() < len {
                // `len` was checked against MAX_FRAME_LEN above.
                self.payload.reserve_exact(len - self.payload.len());
            }
            self.payload.extend_from_slice(&input[..take]);
            *input = &input[take..];
            if self.payload.len() < len {
                return Ok(None);
            }
            let result = decode_payload(&self.payload);
            self.payload.clear();
            self.reset_frame();
            return result.map(Some);
        }
    }

    fn reset_frame(&mut self) {
        self.header_len = 0;
        self.payload_len = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::v2::{ClientMessage, ErrorCode, ServerMessage};
    use proptest::prelude::*;

    fn decode_all<M: DeserializeOwned>(
        dec: &mut FrameDecoder<M>,
        mut input: &[u8],
    ) -> Result<Vec<M>, CodecError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            if let Some(m) = dec.decode(&mut input)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn arb_client() -> impl Strategy<Value = ClientMessage> {
        prop_oneof![
            (any::<u16>(), ".{0,64}").prop_map(|(protocol_version, client)| {
                ClientMessage::Hello {
                    protocol_version,
                    client,
                }
            }),
            (any::<u64>(), any::<u64>()).prop_map(|(nonce, client_time_us)| {
                ClientMessage::Ping {
                    nonce,
                    client_time_us,
                }
            }),
            ".{0,64}".prop_map(|token| ClientMessage::Authenticate { token }),
            (
                proptest::option::of(".{0,16}"),
                proptest::option::of(".{0,8}")
            )
                .prop_map(|(scene, world)| ClientMessage::CreateSession { scene, world }),
            (any::<u128>(), proptest::option::of(any::<u64>())).prop_map(|(id, last_seq)| {
                ClientMessage::JoinSession {
                    session_id: uuid::Uuid::from_u128(id),
                    last_seq,
                }
            }),
            (any::<u64>(), ".{0,16}").prop_map(|(request_id, edge)| ClientMessage::Command {
                request_id,
                command: crate::v2::GameCommand::Choose { edge },
            }),
            (any::<u64>(), any::<u32>(), any::<u64>(), any::<i64>()).prop_map(
                |(request_id, round, nonce, client_time_ms)| ClientMessage::Command {
                    request_id,
                    command: crate::v2::GameCommand::MiniGameInput {
                        round,
                        nonce,
                        client_time_ms,
                    },
                }
            ),
            any::<u64>().prop_map(|client_time_ms| ClientMessage::Heartbeat { client_time_ms }),
        ]
    }

    fn arb_server() -> impl Strategy<Value = ServerMessage> {
        prop_oneof![
            (any::<u16>(), ".{0,64}", any::<u64>()).prop_map(
                |(protocol_version, server_version, server_time_ms)| ServerMessage::Welcome {
                    protocol_version,
                    server_version,
                    server_time_ms,
                }
            ),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::option::of(any::<i64>())
            )
                .prop_map(|(nonce, server_time_ms, world_time_ms)| {
                    ServerMessage::Pong {
                        nonce,
                        server_time_ms,
                        world_time_ms,
                    }
                }),
            (any::<u16>(), ".{0,64}").prop_map(|(code, message)| ServerMessage::Error {
                code: ErrorCode::from(code),
                message,
            }),
        ]
    }

    proptest! {
        #[test]
        fn client_round_trip_any_chunking(
            msgs in proptest::collection::vec(arb_client(), 0..16),
            chunk in 1usize..64,
        ) {
            let mut bytes = Vec::new();
            for m in &msgs {
                encode_frame(m, &mut bytes).unwrap();
            }
            let mut dec = FrameDecoder::<ClientMessage>::new();
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                got.extend(decode_all(&mut dec, piece).unwrap());
            }
            prop_assert!(!dec.has_partial());
            prop_assert_eq!(got, msgs);
        }

        #[test]
        fn server_round_trip(msgs in proptest::collection::vec(arb_server(), 0..16)) {
            let mut bytes = Vec::new();
            for m in &msgs {
                encode_frame(m, &mut bytes).unwrap();
            }
            let mut dec = FrameDecoder::<ServerMessage>::new();
            prop_assert_eq!(decode_all(&mut dec, &bytes).unwrap(), msgs);
        }

        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            chunk in 1usize..300,
        ) {
            let mut dec = FrameDecoder::<ClientMessage>::new();
            for piece in bytes.chunks(chunk) {
                let mut input = piece;
                while !input.is_empty() {
                    match dec.decode(&mut input) {
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                prop_assert!(dec.buffered() <= FRAME_HEADER_LEN + MAX_FRAME_LEN);
            }
            let _ = decode_payload::<ServerMessage>(&bytes);
        }

        #[test]
        fn random_payloads_in_valid_frames_never_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&payload);
            let mut dec = FrameDecoder::<ClientMessage>::new();
            let mut input = &bytes[..];
            let _ = dec.decode(&mut input);
            // A complete frame is consumed whether or not it decodes.
            prop_assert!(input.is_empty());
            prop_assert!(!dec.has_partial());
        }
    }

    #[test]
    fn oversized_prefix_rejected_before_allocation() {
        let mut dec = FrameDecoder::<ClientMessage>::new();
        let mut input: &[u8] = &[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];
        match dec.decode(&mut input) {
            Err(CodecError::FrameTooLarge { len, max }) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, MAX_FRAME_LEN);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(dec.payload.capacity(), 0, "nothing allocated");
        assert_eq!(
            CodecError::FrameTooLarge { len: 0, max: 0 }.close_code(),
            CloseCode::FrameTooLarge
        );
        assert!(matches!(dec.decode(&mut input), Err(CodecError::Poisoned)));
    }

    #[test]
    fn max_len_plus_one_rejected_max_len_accepted() {
        let mut dec = FrameDecoder::<ClientMessage>::new();
        let mut input: &[u8] = &((MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert!(matches!(
            dec.decode(&mut input),
            Err(CodecError::FrameTooLarge { .. })
        ));

        // A declared MAX_FRAME_LEN is accepted by the framing (the payload
        // itself is garbage, so decoding fails afterwards, but not before
        // all of it arrived).
        let mut dec = FrameDecoder::<ClientMessage>::new();
        let mut input: &[u8] = &(MAX_FRAME_LEN as u32).to_be_bytes();
        assert!(dec.decode(&mut input).unwrap().is_none());
        let filler = vec![0xFFu8; MAX_FRAME_LEN - 1];
        let mut input = &filler[..];
        assert!(dec.decode(&mut input).unwrap().is_none());
        let mut input: &[u8] = &[0xFF];
        assert!(matches!(
            dec.decode(&mut input),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn encode_rejects_oversized_message() {
        let msg = ClientMessage::Hello {
            protocol_version: 1,
            client: "x".repeat(MAX_FRAME_LEN),
        };
        let mut out = vec![9u8];
        assert!(matches!(
            encode_frame(&msg, &mut out),
            Err(CodecError::FrameTooLarge { .. })
        ));
        assert_eq!(out, vec![9u8], "buffer restored");
    }

    #[test]
    fn datagrams_round_trip_and_are_bounded() {
        use crate::v2::{ClientDatagram, ServerDatagram};
        let req = ClientDatagram::TimeSyncRequest {
            client_send_us: u64::MAX,
        };
        let bytes = encode_datagram(&req).unwrap();
        assert_eq!(decode_datagram::<ClientDatagram>(&bytes).unwrap(), req);
        let reply = ServerDatagram::TimeSyncReply {
            client_send_us: 7,
            world_time_ms: i64::MIN,
            tick: u64::MAX,
        };
        let bytes = encode_datagram(&reply).unwrap();
        assert!(bytes.len() <= MAX_DATAGRAM_LEN);
        assert_eq!(decode_datagram::<ServerDatagram>(&bytes).unwrap(), reply);

        // Same rules as frames: exact consumption, unknown tags refused.
        let mut trailing = encode_datagram(&req).unwrap();
        trailing.push(0);
        let err = decode_datagram::<ClientDatagram>(&trailing).unwrap_err();
        assert!(matches!(err, CodecError::TrailingBytes(1)), "{err:?}");
        assert_eq!(err.close_code(), CloseCode::ProtocolError);
        for bad in [&[][..], &[1, 0][..], &[0xFF, 0xFF][..], &[0][..]] {
            let err = decode_datagram::<ClientDatagram>(bad).unwrap_err();
            assert_eq!(err.close_code(), CloseCode::ProtocolError, "{bad:?}");
        }
        // Oversized: refused before decoding.
        let big = vec![0u8; MAX_DATAGRAM_LEN + 1];
        let err = decode_datagram::<ClientDatagram>(&big).unwrap_err();
        assert!(
            matches!(err, CodecError::DatagramTooLarge { len, .. } if len == MAX_DATAGRAM_LEN + 1)
        );
        assert_eq!(err.close_code(), CloseCode::ProtocolError);
    }

    proptest! {
        #[test]
        fn random_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
            use crate::v2::{ClientDatagram, ServerDatagram};
            if let Ok(msg) = decode_datagram::<ClientDatagram>(&bytes) {
                let again = encode_datagram(&msg).unwrap();
                prop_assert_eq!(decode_datagram::<ClientDatagram>(&again).unwrap(), msg);
            }
            let _ = decode_datagram::<ServerDatagram>(&bytes);
        }
    }

    #[test]
    fn frame_layout() {
        let bytes = frame(&ClientMessage::Ping {
            nonce: 1,
            client_time_us: 2,
        })
        .unwrap();
        assert_eq!(bytes, vec![0, 0, 0, 3, 1, 1, 2]);
    }

    #[test]
    fn trailing_bytes_and_empty_payload_are_errors() {
        assert!(matches!(
            decode_payload::<ClientMessage>(&[1, 1, 2, 0]),
            Err(CodecError::TrailingBytes(1))
        ));
        assert!(matches!(
            decode_payload::<ClientMessage>(&[]),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            decode_payload::<ClientMessage>(&[99]),
            Err(CodecError::Malformed(_))
        ));
        // Huge declared string length inside a small payload.
        assert!(matches!(
            decode_payload::<ClientMessage>(&[0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
            Err(CodecError::Malformed(_))
        ));
    }
}
