//! PixSim wire protocol: messages, close codes, framing codec and the
//! per-connection state machine. This crate does no I/O at all.
//!
//! `docs/protocol.md` is the normative description (every transport, encoding and rule).
//! Generated from these types and kept current by tests: `schema/v{N}.json`, the
//! machine-readable schema (`tests/schema.rs`, `UPDATE_SCHEMAS=1`), and `golden/v{N}.json`,
//! sample messages with their exact bytes and JSON (`tests/golden.rs`, `UPDATE_GOLDEN=1`).
//!
//! # Wire format
//!
//! * Transport: QUIC with ALPN [`ALPN`] (`pixsim/1`).
//! * One client-opened bidirectional stream per connection carries all
//!   reliable messages, in both directions.
//! * On that stream every message is a *frame*: a `u32` big-endian length
//!   prefix followed by exactly that many payload bytes. The length never
//!   exceeds [`MAX_FRAME_LEN`]; a larger declared length closes the
//!   connection with [`CloseCode::FrameTooLarge`] before anything is
//!   allocated for it.
//! * The payload is one message encoded with [postcard] (serde, compact:
//!   enum tags and integers are LEB128 varints, strings are a varint length
//!   plus UTF-8 bytes). Client→server payloads are [`v2::ClientMessage`],
//!   server→client payloads are [`v2::ServerMessage`]. A payload must be
//!   consumed exactly; trailing bytes are a protocol error.
//! * The first client message must be [`v2::ClientMessage::Hello`], answered
//!   by [`v2::ServerMessage::Welcome`] or by [`v2::ServerMessage::Error`]
//!   followed by a connection close.
//! * **Datagrams** (QUIC DATAGRAM frames) carry only traffic whose loss is
//!   harmless, today time sync: [`v2::ClientDatagram`] and
//!   [`v2::ServerDatagram`], one postcard message per datagram, no length
//!   prefix, at most [`MAX_DATAGRAM_LEN`] bytes, consumed exactly
//!   ([`decode_datagram`]). They are legal only after the version handshake;
//!   an undecodable or oversized datagram closes the connection with
//!   [`CloseCode::ProtocolError`], like a malformed frame.
//! * Connections are closed with a QUIC application error code from
//!   [`CloseCode`] and its [`CloseCode::reason`] text as the reason bytes.
//!
//! [postcard]: https://docs.rs/postcard

pub mod close;
pub mod codec;
pub mod json;
pub mod presentation;
pub mod state;
pub mod v2;

pub use close::CloseCode;
pub use codec::{
    CodecError, FrameDecoder, decode_datagram, decode_payload, encode_datagram, encode_frame, frame,
};
pub use json::{client_from_json, server_from_json, to_json};
pub use state::{ConnState, verify_datagram};
pub use v2::decode_server_payload;

/// ALPN protocol identifier negotiated during the TLS handshake.
pub const ALPN: &[u8] = b"pixsim/1";

/// Revision of [`PROTOCOL_VERSION`]: raised by a compatible change (`docs/protocol.md`
/// §14), a field appended to a server message or to an event. A client of any revision of
/// a version works with a server of any other revision of it; the golden vectors
/// (`golden/v{N}.json`) record the revision they were written at.
pub const PROTOCOL_REVISION: u16 = 2;

/// Protocol version announced in `Hello` and `Welcome`. Version 1 (events inline, not
/// length-delimited; no snapshot on join) is no longer spoken.
pub const PROTOCOL_VERSION: u16 = 2;

/// Hard maximum payload length of one frame (excluding the 4-byte prefix).
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Length of the frame length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Hard maximum length of one datagram payload. Small enough to fit one QUIC
/// packet at the minimum path MTU (1,200 bytes) with its headers.
pub const MAX_DATAGRAM_LEN: usize = 1024;
