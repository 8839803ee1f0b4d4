//! The client side of the QUIC transport: the quinn client configuration (ALPN
//! [`protocol::ALPN`], keep-alive, idle timeout, flow-control windows) built from a
//! [`Trust`], and the PixSim close codes ([`protocol::CloseCode`]) carried as QUIC
//! application error codes, read and sent.

use std::sync::Arc;
use std::time::Duration;

use protocol::CloseCode;

use crate::tls::{self, TlsError, Trust};

/// Keep-alive interval of client connections (well below the server's idle
/// timeout at the transport level).
pub const CLIENT_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Transport idle timeout of client connections.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Flow-control window of the client's receiving side of the game stream: how far
/// the server may write ahead of what the client application has read. The event
/// stream of one session is small (a replay of a whole resend window is a few
/// hundred KiB, a few round trips), and a modest window means a client that stops
/// reading is noticed by the server (its send queue fills and it is closed as a
/// slow consumer) after tens of KiB rather than megabytes.
pub const CLIENT_STREAM_WINDOW: u32 = 64 * 1024;

/// Builds the quinn client configuration for `trust`.
pub fn client_config(trust: &Trust) -> Result<quinn::ClientConfig, TlsError> {
    quic_config(tls::rustls_config(trust)?)
}

/// Client configuration that accepts only the server certificate whose SHA-256 is
/// `fingerprint` (as printed by the server, `aa:bb:..`; colons and case are
/// optional). The server name is not checked.
pub fn client_config_pinned(fingerprint: &str) -> Result<quinn::ClientConfig, TlsError> {
    client_config(&Trust::Fingerprint(fingerprint.to_owned()))
}

/// Adds the ALPN and the transport parameters to a TLS client configuration.
fn quic_config(mut tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, TlsError> {
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    let idle = quinn::IdleTimeout::try_from(CLIENT_IDLE_TIMEOUT).map_err(|_| {
        TlsError::Config(format!("idle timeout {CLIENT_IDLE_TIMEOUT:?} out of range"))
    })?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(CLIENT_KEEP_ALIVE))
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(0))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .stream_receive_window(quinn::VarInt::from_u32(CLIENT_STREAM_WINDOW))
        .receive_window(quinn::VarInt::from_u32(2 * CLIENT_STREAM_WINDOW));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Closes `conn` with `code` and its reason text.
pub fn close_connection(conn: &quinn::Connection, code: CloseCode) {
    conn.close(
        quinn::VarInt::from_u32(code.as_u32()),
        code.reason().as_bytes(),
    );
}

/// The PixSim close code and reason of a connection the peer closed at the
/// application level; `None` for transport-level failures (timeouts, resets, local
/// closes) and unknown codes.
pub fn close_code_of(err: &quinn::ConnectionError) -> Option<(CloseCode, String)> {
    match err {
        quinn::ConnectionError::ApplicationClosed(close) => {
            CloseCode::from_u64(close.error_code.into_inner())
                .map(|code| (code, String::from_utf8_lossy(&close.reason).into_owned()))
        }
        // Transport-level: not a PixSim close (quinn's set, not ours).
        _ => None,
    }
}
