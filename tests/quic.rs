use std::time::Duration;

use game_client::{Client, Trust};
use protocol::CloseCode;
use tests::TestServer;

#[tokio::test]
async fn ping_over_quic_with_a_pinned_certificate() {
    let t = TestServer::start().await;
    let fp = t.server.quic_fingerprint.clone();
    let mut c = Client::connect(t.server.quic_addr, "localhost", Trust::Fingerprint(fp))
        .await
        .unwrap();
    assert_eq!(
        c.server_version(),
        format!("pixsim-server {}", pixsim_server::VERSION)
    );
    assert_eq!(c.protocol_version(), protocol::PROTOCOL_VERSION);
    let rtt = c.ping().await.unwrap();
    assert!(rtt < Duration::from_secs(1));

    let wrong = "00:".repeat(31) + "00";
    let err = Client::connect(t.server.quic_addr, "localhost", Trust::Fingerprint(wrong)).await;
    assert!(err.is_err(), "a wrong pin must be refused");
    c.close().await;
    t.stop().await;
}

#[tokio::test]
async fn shutdown_closes_quic_connections_with_a_reason() {
    let t = TestServer::start().await;
    let c = Client::connect(
        t.server.quic_addr,
        "localhost",
        Trust::Fingerprint(t.server.quic_fingerprint.clone()),
    )
    .await
    .unwrap();
    let closed = tokio::spawn(async move { c.closed().await });
    t.stop().await;
    let err = tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(err.close_code(), Some(CloseCode::ServerShutdown), "{err}");
}
