//! The endpoint over loopback with a stand-in driver: pinning by hash, the session
//! path, rotation without restart, and a close carrying the close code and reason.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use protocol::v2::{ClientMessage, ServerMessage};
use protocol::{CloseCode, FrameDecoder, encode_frame};
use tokio::sync::watch;
use webtransport::client::{GameClient, pinned_client};
use webtransport::{
    CLOCK_SKEW, GameStream, SessionDriver, WebTransportConfig, WebTransportServer, close_session,
};

/// Answers the first `Heartbeat` with a `Heartbeat`, then closes the session with
/// `ProtocolError` on whatever comes next, or with `ServerShutdown` when told to stop.
struct Echo;

impl SessionDriver for Echo {
    fn drive(
        &self,
        mut s: GameStream,
        mut stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(async move {
            let mut decoder = FrameDecoder::<ClientMessage>::new();
            let mut buf = [0u8; 1024];
            let mut answered = false;
            loop {
                let read = tokio::select! {
                    _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                        close_session(&s.session, CloseCode::ServerShutdown);
                        let _ = s.session.closed().await;
                        return;
                    }
                    r = s.recv.read(&mut buf) => r,
                };
                let Ok(Some(n)) = read else {
                    return;
                };
                let mut input = &buf[..n];
                while !input.is_empty() {
                    match decoder.decode(&mut input) {
                        Ok(Some(ClientMessage::Heartbeat { .. })) if !answered => {
                            answered = true;
                            let mut out = Vec::new();
                            let msg = ServerMessage::Heartbeat { server_time_ms: 7 };
                            encode_frame(&msg, &mut out).unwrap();
                            s.send.write_all(&out).await.unwrap();
                        }
                        Ok(None) => {}
                        Ok(Some(_)) | Err(_) => {
                            close_session(&s.session, CloseCode::ProtocolError);
                            let _ = s.session.closed().await;
                            return;
                        }
                    }
                }
            }
        })
    }
}

struct Running {
    url: String,
    certs: Arc<webtransport::CertStore>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(rotation: Duration) -> Running {
    let mut cfg = WebTransportConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.rotation = rotation;
    let server = WebTransportServer::bind(cfg, Arc::new(Echo)).unwrap();
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

async fn heartbeat_round_trip(client: &mut GameClient) {
    client
        .send(&ClientMessage::Heartbeat { client_time_ms: 1 })
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), client.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, ServerMessage::Heartbeat { server_time_ms: 7 });
}

#[tokio::test]
async fn a_client_pinned_by_the_published_hash_plays_and_a_close_carries_code_and_reason() {
    let s = start(CLOCK_SKEW).await;
    let hashes: Vec<_> = s
        .certs
        .published()
        .certificates
        .iter()
        .map(|c| c.sha256)
        .collect();
    let mut client = GameClient::connect(&s.url, hashes).await.unwrap();
    heartbeat_round_trip(&mut client).await;
    // Anything else makes the stand-in driver close with ProtocolError.
    client
        .send(&ClientMessage::Heartbeat { client_time_ms: 2 })
        .await
        .unwrap();
    let (code, reason) = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, CloseCode::ProtocolError.as_u32());
    assert_eq!(reason, CloseCode::ProtocolError.reason());
    s.stop().await;
}

#[tokio::test]
async fn a_client_pinned_to_another_hash_cannot_connect() {
    let s = start(CLOCK_SKEW).await;
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
    let s = start(CLOCK_SKEW).await;
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
    let s = start(CLOCK_SKEW).await;
    let (old_current, old_next) = (s.certs.current().sha256(), s.certs.next().sha256());
    // Before: only the current one is served.
    let mut c = GameClient::connect(&s.url, vec![old_current])
        .await
        .unwrap();
    heartbeat_round_trip(&mut c).await;
    assert!(GameClient::connect(&s.url, vec![old_next]).await.is_err());

    s.certs.rotate_now().unwrap();
    // After: the previous next is served, the old current no longer.
    let mut c2 = GameClient::connect(&s.url, vec![old_next]).await.unwrap();
    heartbeat_round_trip(&mut c2).await;
    assert!(
        GameClient::connect(&s.url, vec![old_current])
            .await
            .is_err()
    );
    // The session made before the rotation goes on.
    heartbeat_round_trip_after_first(&mut c).await;
    s.stop().await;
}

/// On a connection whose heartbeat was answered, the next message closes it: proof
/// that the connection is still up.
async fn heartbeat_round_trip_after_first(client: &mut GameClient) {
    client
        .send(&ClientMessage::Heartbeat { client_time_ms: 3 })
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .unwrap();
    assert_eq!(closed.map(|c| c.0), Some(CloseCode::ProtocolError.as_u32()));
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_server_shutdown() {
    let s = start(CLOCK_SKEW).await;
    let mut client = GameClient::connect(&s.url, vec![s.certs.current().sha256()])
        .await
        .unwrap();
    heartbeat_round_trip(&mut client).await;
    s.stop().await;
    let closed = tokio::time::timeout(Duration::from_secs(10), client.closed())
        .await
        .unwrap();
    assert_eq!(
        closed.map(|c| c.0),
        Some(CloseCode::ServerShutdown.as_u32())
    );
}
