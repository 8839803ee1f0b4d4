//! Any bytes, in any chunking, give messages or an error: never a panic,
//! never a buffer beyond one maximal frame. Decoded client messages drive
//! the connection state machine and must re-encode to themselves. The same
//! bytes as a datagram decode to a datagram message or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::v2::{ClientDatagram, ClientMessage, ServerDatagram, ServerMessage};
use protocol::{
    ConnState, FRAME_HEADER_LEN, FrameDecoder, MAX_DATAGRAM_LEN, MAX_FRAME_LEN, decode_datagram,
    decode_payload, encode_datagram, encode_frame, verify_datagram,
};

fuzz_target!(|data: &[u8]| {
    // First byte picks the chunk size the bytes arrive in.
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(*first).max(1);

    // Datagrams: bounded, decoded exactly, legal only after the handshake.
    match decode_datagram::<ClientDatagram>(rest) {
        Ok(msg) => {
            assert!(rest.len() <= MAX_DATAGRAM_LEN);
            let again = encode_datagram(&msg).ok();
            let back = again.as_deref().map(decode_datagram::<ClientDatagram>);
            assert!(matches!(back, Some(Ok(ref m)) if *m == msg));
            assert!(verify_datagram(ConnState::Handshake, &msg).is_err());
            assert!(verify_datagram(ConnState::AwaitingAuth, &msg).is_ok());
        }
        Err(e) => {
            let _ = e.close_code();
        }
    }
    let _ = decode_datagram::<ServerDatagram>(rest);

    // Server messages decode or fail without panicking, in frames too (the client
    // side), and re-encode to themselves.
    let _ = decode_payload::<ServerMessage>(rest);
    let mut server = FrameDecoder::<ServerMessage>::new();
    let mut input = rest;
    while !input.is_empty() {
        match server.decode(&mut input) {
            Ok(Some(msg)) => {
                let mut frame = Vec::new();
                if encode_frame(&msg, &mut frame).is_ok() {
                    let again = decode_payload::<ServerMessage>(&frame[FRAME_HEADER_LEN..]);
                    assert_eq!(again.ok().as_ref(), Some(&msg));
                }
            }
            Ok(None) => {}
            Err(_) => break,
        }
        assert!(server.buffered() <= FRAME_HEADER_LEN + MAX_FRAME_LEN);
    }

    let mut decoder = FrameDecoder::<ClientMessage>::new();
    let mut state = ConnState::Handshake;
    for piece in rest.chunks(chunk) {
        let mut input = piece;
        while !input.is_empty() {
            let before = input.len();
            let result = decoder.decode(&mut input);
            assert!(decoder.buffered() <= FRAME_HEADER_LEN + MAX_FRAME_LEN);
            match result {
                Ok(Some(msg)) => {
                    let mut frame = Vec::new();
                    if encode_frame(&msg, &mut frame).is_ok() {
                        let again = decode_payload::<ClientMessage>(&frame[FRAME_HEADER_LEN..]);
                        assert_eq!(again.ok().as_ref(), Some(&msg));
                    }
                    match state.apply(&msg) {
                        // The server moves on after authentication and joins; follow
                        // it so every state is explored.
                        Ok(next) => {
                            state = match (&msg, next) {
                                (ClientMessage::Authenticate { .. }, _) => ConnState::Authenticated,
                                (
                                    ClientMessage::CreateSession { .. }
                                    | ClientMessage::JoinSession { .. },
                                    _,
                                ) => ConnState::InSession,
                                (_, s) => s,
                            }
                        }
                        Err(_close) => return,
                    }
                }
                Ok(None) => assert!(input.is_empty() || input.len() < before),
                Err(e) => {
                    let _ = e.close_code();
                    return;
                }
            }
        }
    }
});
