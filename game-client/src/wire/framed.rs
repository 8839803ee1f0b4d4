//! [`Framed`]: the receiving side of the length-prefixed stream framing that QUIC and
//! WebTransport share (`u32` big-endian length, postcard payload): bytes in, decoded
//! server messages out, a message of a newer server skipped.

use std::collections::VecDeque;

use protocol::v2::ServerMessage;
use protocol::{CodecError, FrameDecoder};

/// Read buffer size of a framed stream.
pub(super) const READ_BUF: usize = 16 * 1024;

/// Decoder state of one framed stream.
#[derive(Debug)]
pub(super) struct Framed {
    decoder: FrameDecoder<ServerMessage>,
    inbox: VecDeque<ServerMessage>,
    /// The read buffer the transport reads into.
    pub(super) buf: Vec<u8>,
}

impl Framed {
    pub(super) fn new() -> Framed {
        Framed {
            decoder: FrameDecoder::new(),
            inbox: VecDeque::new(),
            buf: vec![0; READ_BUF],
        }
    }

    /// The next decoded message, if one is complete.
    pub(super) fn pop(&mut self) -> Option<ServerMessage> {
        self.inbox.pop_front()
    }

    /// Decodes the first `n` bytes of the read buffer.
    pub(super) fn feed(&mut self, n: usize) -> Result<(), CodecError> {
        let mut input = self.buf.get(..n).unwrap_or_default();
        while !input.is_empty() {
            // A message of a newer server (`None`) is skipped.
            if let Some(Some(msg)) = self
                .decoder
                .decode_with(&mut input, protocol::decode_server_payload)?
            {
                self.inbox.push_back(msg);
            }
        }
        Ok(())
    }
}
