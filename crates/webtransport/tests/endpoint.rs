//! The endpoint over loopback with the channel's basic handler (version handshake,
//! pings and heartbeats): pinning by hash, the session path, rotation without restart,
//! a close carrying the close code and reason, and the shutdown.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use protocol::v2::{ClientMessage, ErrorCode, ServerMessage};
use protocol::{CloseCode, PROTOCOL_VERSION};
use webtransport::client::{GameClient, pinned_client};
use webtransport::{CLOCK_SKEW, CertStore, WebTransportConfig, WebTransportServer};

const T: Duration = Duration::from_secs(10);

struct Running {
    url: String,
    certs: Arc<CertStore>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// An endpoint whose certificates rotate every [`CLOCK_SKEW`], so a rotation brought
/// forward serves a certificate valid now.
async fn start() -> Running {
    let mut cfg = WebTransportConfig::new("127.0.0.1:0".parse().unwrap(), "test 0");
    cfg.rotation = CLOCK_SKEW;
    let server = WebTransportServer::bind(cfg, Arc::new(channel::BasicHandler)).unwrap();
    let url = format!("https://127.0.0.1:{}/game", server.local_addr().port());
    let certs = server.certificates();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        url,
        certs,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

async fn recv(client: &mut GameClient) -> ServerMessage {
    tokio::time::timeout(T, client.recv())
        .await
        .unwrap()
        .unwrap()
}

/// Connects pinned to `hashes` and says hello.
async fn connect(url: &str, hashes: Vec<[u8; 32]>) -> GameClient {
    let mut client = GameClient::connect(url, hashes).await.unwrap();
    client
        .send(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "endpoint test".into(),
        })
        .await
        .unwrap();
    match recv(&mut client).await {
        ServerMessage::Welcome {
            protocol_version,
            server_version,
            ..
        } => {
            assert_eq!(protocol_version, PROTOCOL_VERSION);
            assert_eq!(server_version, "test 0");
        }
        other => panic!("expected Welcome, got {other:?}"),
    }
    client
}

async fn heartbeat(client: &mut GameClient) {
    client
        .send(&ClientMessage::Heartbeat { client_time_ms: 1 })
        .await
        .unwrap();
    assert!(matches!(
        recv(client).await,
        ServerMessage::Heartbeat { .. }
    ));
}

#[tokio::test]
async fn a_client_pinned_by_the_published_hash_plays_and_a_close_carries_code_and_reason() {
    let s = start().await;
    let hashes: Vec<_> = s
        .certs
        .published()
        .certificates
        .iter()
        .map(|c| c.sha256)
        .collect();
    let mut client = connect(&s.url, hashes).await;
    heartbeat(&mut client).await;
    // The basic handler refuses everything beyond the handshake: an Error, then the
    // session closed with the code and its reason.
    client
        .send(&ClientMessage::Authenticate { token: "x".into() })
        .await
        .unwrap();
    match recv(&mut client).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::ProtocolError),
        other => panic!("expected Error, got {other:?}"),
    }
    let (code, reason) = tokio::time::timeout(T, client.closed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, CloseCode::ProtocolError.as_u32());
    assert_eq!(reason, CloseCode::ProtocolError.reason());
    s.stop().await;
}

#[tokio::test]
async fn a_client_pinned_to_another_hash_cannot_connect() {
    let s = start().await;
    let err = GameClient::connect(&s.url, vec![[7u8; 32]])
        .await
        .unwrap_err();
    assert!(
        matches!(err, webtransport::client::ClientError::Connect(_)),
        "{err}"
    );
    s.stop().await;
}

#[tokio::test]
async fn another_path_is_refused() {
    let s = start().await;
    let hashes = vec![s.certs.current().sha256()];
    let url = s.url.replace("/game", "/other");
    let err = pinned_client(hashes)
        .unwrap()
        .connect(url::Url::parse(&url).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    s.stop().await;
}

#[tokio::test]
async fn rotation_changes_the_served_certificate_without_a_restart() {
    let s = start().await;
    let (old_current, old_next) = (s.certs.current().sha256(), s.certs.next().sha256());
    // Before: the current one is served.
    let mut before = connect(&s.url, vec![old_current]).await;
    assert!(GameClient::connect(&s.url, vec![old_next]).await.is_err());

    s.certs.rotate_now().unwrap();
    // After: the previous next is served, the old current no longer.
    let mut after = connect(&s.url, vec![old_next]).await;
    heartbeat(&mut after).await;
    assert!(
        GameClient::connect(&s.url, vec![old_current])
            .await
            .is_err()
    );
    // The session made before the rotation goes on.
    heartbeat(&mut before).await;
    s.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_server_shutdown() {
    let s = start().await;
    let mut client = connect(&s.url, vec![s.certs.current().sha256()]).await;
    heartbeat(&mut client).await;
    s.stop().await;
    let closed = tokio::time::timeout(T, client.closed()).await.unwrap();
    assert_eq!(
        closed.map(|c| c.0),
        Some(CloseCode::ServerShutdown.as_u32())
    );
}
