//! Client-side QUIC configuration: trust a pinned certificate fingerprint
//! or a set of root certificates.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::{QuicError, cert, idle};

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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts exactly one leaf certificate, identified by its SHA-256; the
/// handshake signature is still verified against that certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    sha256: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(
                presented = %crate::cert::fingerprint(end_entity.as_ref()),
                "server certificate does not match the pinned fingerprint"
            );
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn finish(tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, QuicError> {
    let mut tls = tls;
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| QuicError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(CLIENT_KEEP_ALIVE))
        .max_idle_timeout(Some(idle(CLIENT_IDLE_TIMEOUT)?))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(0))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .stream_receive_window(quinn::VarInt::from_u32(CLIENT_STREAM_WINDOW))
        .receive_window(quinn::VarInt::from_u32(2 * CLIENT_STREAM_WINDOW));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Client configuration that accepts only the server certificate whose
/// SHA-256 is `fingerprint` (as printed by the server, `aa:bb:..`; colons
/// and case are optional). The server name is not checked.
pub fn client_config_pinned(fingerprint: &str) -> Result<quinn::ClientConfig, QuicError> {
    let sha256 = cert::parse_fingerprint(fingerprint)?;
    let provider = provider();
    let verifier = PinnedVerifier {
        sha256,
        algorithms: provider.signature_verification_algorithms,
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    finish(tls)
}

/// Client configuration that validates the server certificate (chain and
/// server name) against `roots`, e.g. the server's self-signed `cert.pem`
/// or a private CA.
pub fn client_config_with_roots(
    roots: Vec<CertificateDer<'static>>,
) -> Result<quinn::ClientConfig, QuicError> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(store)
        .with_no_client_auth();
    finish(tls)
}
