//! End-to-end tests: a real `quic::QuicServer` on 127.0.0.1:0 and real
//! clients (the `game-client` library and raw quinn connections).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use game_client::{Client, ClientError, ConnectOptions, Trust};
use protocol::v2::{ClientMessage, ErrorCode, ServerMessage};
use protocol::{CloseCode, FrameDecoder, PROTOCOL_VERSION, encode_frame};
use quic::{QuicConfig, QuicServer, QuicStats};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "pixsim-quic-test-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(state_dir: &Path) -> QuicConfig {
    let mut cfg = QuicConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        state_dir,
        "pixsim-server 0.1.0-test",
    );
    cfg.shutdown_timeout = Duration::from_secs(3);
    cfg
}

struct Running {
    addr: SocketAddr,
    fingerprint: String,
    stats: QuicStats,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), quic::QuicError>>,
}

impl Running {
    fn trust(&self) -> Trust {
        Trust::Fingerprint(self.fingerprint.clone())
    }
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }
}

fn start(cfg: QuicConfig) -> Running {
    let server = QuicServer::bind(cfg).unwrap();
    let (tx, rx) = oneshot::channel();
    Running {
        addr: server.local_addr(),
        fingerprint: server.fingerprint().to_owned(),
        stats: server.stats(),
        stop: Some(tx),
        task: tokio::spawn(server.run(async {
            let _ = rx.await;
        })),
    }
}

/// A raw quinn connection with one open bidirectional stream.
async fn raw(
    server: &Running,
) -> (
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
) {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let cfg = game_client::transport::client_config_pinned(&server.fingerprint).unwrap();
    let conn = endpoint
        .connect_with(cfg, server.addr, "localhost")
        .unwrap()
        .await
        .unwrap();
    let (send, recv) = conn.open_bi().await.unwrap();
    (endpoint, conn, send, recv)
}

async fn closed_code(conn: &quinn::Connection) -> (CloseCode, String) {
    let err = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("connection closed in time");
    game_client::transport::close_code_of(&err)
        .unwrap_or_else(|| panic!("not an application close: {err:?}"))
}

async fn hello(send: &mut quinn::SendStream) {
    let mut frame = Vec::new();
    encode_frame(
        &ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "raw".into(),
        },
        &mut frame,
    )
    .unwrap();
    send.write_all(&frame).await.unwrap();
}

async fn read_one(recv: &mut quinn::RecvStream) -> ServerMessage {
    let mut dec = FrameDecoder::<ServerMessage>::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = recv.read(&mut buf).await.unwrap().unwrap();
        let mut input = &buf[..n];
        if let Some(m) = dec.decode(&mut input).unwrap() {
            return m;
        }
    }
}

#[tokio::test]
async fn handshake_and_ping_round_trip() {
    let dir = TempDir::new();
    let server = start(config(dir.path()));
    let mut client = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap();
    assert_eq!(client.server_version(), "pixsim-server 0.1.0-test");
    assert_eq!(client.protocol_version(), PROTOCOL_VERSION);
    assert!(client.server_time_ms() > 0);
    for _ in 0..5 {
        let rtt = client.ping().await.unwrap();
        assert!(rtt < Duration::from_secs(2));
    }
    assert_eq!(server.stats.connections(), 1);
    assert_eq!(server.stats.total_accepted(), 1);
    client.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.stats.connections(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_fingerprint_is_refused() {
    let dir = TempDir::new();
    let server = start(config(dir.path()));
    let wrong = game_client::fingerprint(b"not the server certificate");
    let err = Client::connect(server.addr, "localhost", Trust::Fingerprint(wrong))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::UntrustedCertificate(_)),
        "{err:?}"
    );
    // A malformed fingerprint is a configuration error.
    let err = Client::connect(server.addr, "localhost", Trust::Fingerprint("xyz".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Config(_)), "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn version_mismatch_closes_with_version_mismatch() {
    let dir = TempDir::new();
    let server = start(config(dir.path()));
    let opts = ConnectOptions {
        protocol_version: PROTOCOL_VERSION + 1,
        ..ConnectOptions::default()
    };
    let err = Client::connect_with(server.addr, "localhost", server.trust(), opts)
        .await
        .unwrap_err();
    match err {
        ClientError::Rejected {
            code,
            message,
            close,
        } => {
            assert_eq!(code, ErrorCode::VersionMismatch);
            assert!(message.contains("protocol"), "{message}");
            assert_eq!(close, Some(CloseCode::VersionMismatch));
        }
        other => panic!("unexpected {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_frame_closes_with_protocol_error_and_server_keeps_serving() {
    let dir = TempDir::new();
    let server = start(config(dir.path()));
    let mut good = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap();

    let (_ep, conn, mut send, _recv) = raw(&server).await;
    // A well-framed payload that is not a message.
    send.write_all(&[0, 0, 0, 3, 0xFF, 0xFF, 0xFF])
        .await
        .unwrap();
    let (code, reason) = closed_code(&conn).await;
    assert_eq!(code, CloseCode::ProtocolError);
    assert_eq!(reason, "protocol error");

    // Ping before Hello is illegal too.
    let (_ep2, conn2, mut send2, _recv2) = raw(&server).await;
    let mut frame = Vec::new();
    encode_frame(
        &ClientMessage::Ping {
            nonce: 1,
            client_time_us: 0,
        },
        &mut frame,
    )
    .unwrap();
    send2.write_all(&frame).await.unwrap();
    assert_eq!(closed_code(&conn2).await.0, CloseCode::ProtocolError);

    // The existing connection and new ones still work.
    good.ping().await.unwrap();
    let mut fresh = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap();
    fresh.ping().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_length_prefix_closes_with_frame_too_large() {
    let dir = TempDir::new();
    let server = start(config(dir.path()));
    let (_ep, conn, mut send, mut recv) = raw(&server).await;
    hello(&mut send).await;
    assert!(matches!(
        read_one(&mut recv).await,
        ServerMessage::Welcome { .. }
    ));
    send.write_all(&[0xFF, 0xFF, 0xFF, 0xFF]).await.unwrap();
    match read_one(&mut recv).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::FrameTooLarge),
        other => panic!("unexpected {other:?}"),
    }
    let (code, reason) = closed_code(&conn).await;
    assert_eq!(code, CloseCode::FrameTooLarge);
    assert_eq!(reason, "frame too large");
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_timeout_closes_silent_connections() {
    let dir = TempDir::new();
    let mut cfg = config(dir.path());
    cfg.handshake_timeout = Duration::from_millis(300);
    let server = start(cfg);
    let (_ep, conn, mut send, _recv) = raw(&server).await;
    // Open the stream on the wire with a partial header, then stall.
    send.write_all(&[0, 0]).await.unwrap();
    let (code, _) = closed_code(&conn).await;
    assert_eq!(code, CloseCode::HandshakeTimeout);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let dir = TempDir::new();
    let mut cfg = config(dir.path());
    cfg.idle_timeout = Duration::from_millis(400);
    let server = start(cfg);
    let client = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .unwrap();
    assert_eq!(err.close_code(), Some(CloseCode::IdleTimeout), "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn max_connections_refuses_with_server_full() {
    let dir = TempDir::new();
    let mut cfg = config(dir.path());
    cfg.max_connections = 1;
    let server = start(cfg);
    let mut first = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap();
    let err = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap_err();
    assert_eq!(err.close_code(), Some(CloseCode::ServerFull), "{err:?}");
    first.ping().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_live_connections_with_server_shutdown() {
    let dir = TempDir::new();
    let server = start(config(dir.path()));
    let mut a = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap();
    let b = Client::connect(server.addr, "localhost", server.trust())
        .await
        .unwrap();
    a.ping().await.unwrap();
    let (_ep, raw_conn, _send, _recv) = raw(&server).await; // mid-handshake (no Hello)
    let addr = server.addr;
    let fingerprint = server.trust();
    server.shutdown().await;

    for client in [&a, &b] {
        let err = tokio::time::timeout(Duration::from_secs(5), client.closed())
            .await
            .unwrap();
        match err {
            ClientError::Closed { code, reason } => {
                assert_eq!(code, CloseCode::ServerShutdown);
                assert_eq!(reason, "server shutting down");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(closed_code(&raw_conn).await.0, CloseCode::ServerShutdown);
    // The ping on a closed connection fails with the close reason.
    assert_eq!(
        a.ping().await.unwrap_err().close_code(),
        Some(CloseCode::ServerShutdown)
    );
    // Nothing listens any more.
    let opts = ConnectOptions {
        timeout: Duration::from_millis(500),
        ..ConnectOptions::default()
    };
    assert!(
        Client::connect_with(addr, "localhost", fingerprint, opts)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn self_signed_cert_is_generated_once_and_reused() {
    let dir = TempDir::new();
    let first = QuicServer::bind(config(dir.path())).unwrap();
    let fp = first.fingerprint().to_owned();
    assert!(matches!(
        first.cert_source(),
        quic::CertSource::Generated(_)
    ));
    drop(first);
    let quic_dir = quic::self_signed_dir(dir.path());
    for f in [quic::CERT_PEM, quic::KEY_PEM, quic::CERT_DER] {
        assert!(quic_dir.join(f).is_file(), "{f} written");
    }
    let der = std::fs::read(quic_dir.join(quic::CERT_DER)).unwrap();
    assert_eq!(game_client::fingerprint(&der), fp);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(quic_dir.join(quic::KEY_PEM))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key is private");
    }

    let second = QuicServer::bind(config(dir.path())).unwrap();
    assert_eq!(second.fingerprint(), fp);
    assert!(matches!(second.cert_source(), quic::CertSource::Reused(_)));

    // The saved certificate also works as a trust root (name-checked).
    let (tx, rx) = oneshot::channel::<()>();
    let addr = second.local_addr();
    let task = tokio::spawn(second.run(async {
        let _ = rx.await;
    }));
    let trust = Trust::CertFile(quic_dir.join(quic::CERT_PEM));
    let mut client = Client::connect(addr, "localhost", trust.clone())
        .await
        .unwrap();
    client.ping().await.unwrap();
    let mut by_ip = Client::connect(addr, "127.0.0.1", trust.clone())
        .await
        .unwrap();
    by_ip.ping().await.unwrap();
    let err = Client::connect(addr, "example.com", trust)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::UntrustedCertificate(_)),
        "name not in the certificate: {err:?}"
    );
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();

    let other = TempDir::new();
    let third = QuicServer::bind(config(other.path())).unwrap();
    assert_ne!(third.fingerprint(), fp, "fresh state dir, fresh cert");
}

#[tokio::test]
async fn configured_cert_and_key_are_used() {
    let dir = TempDir::new();
    let certified = rcgen::generate_simple_self_signed(vec!["game.example".to_owned()]).unwrap();
    let cert_path = dir.path().join("server.crt");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).unwrap();

    let state = TempDir::new();
    let mut cfg = config(state.path());
    cfg.cert_path = Some(cert_path.clone());
    cfg.key_path = Some(key_path);
    let server = QuicServer::bind(cfg).unwrap();
    assert_eq!(
        server.fingerprint(),
        game_client::fingerprint(certified.cert.der().as_ref())
    );
    assert_eq!(server.cert_source(), &quic::CertSource::Configured);
    assert!(
        !quic::self_signed_dir(state.path()).exists(),
        "no self-signed cert generated"
    );
    let (tx, rx) = oneshot::channel::<()>();
    let addr = server.local_addr();
    let task = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    let mut client = Client::connect(addr, "game.example", Trust::CertFile(cert_path))
        .await
        .unwrap();
    client.ping().await.unwrap();
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();

    // Only one of the two files is a configuration error.
    let mut cfg = config(state.path());
    cfg.cert_path = Some(dir.path().join("server.crt"));
    assert!(matches!(
        QuicServer::bind(cfg),
        Err(quic::QuicError::Config(_))
    ));
}
