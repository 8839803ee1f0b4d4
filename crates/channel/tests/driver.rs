//! The driver over an in-memory byte stream (`drive_stream` on a `tokio::io::duplex`):
//! handshake, pings with the world time, heartbeats, and the close flow for bad input
//! (the `Error`, then the end of the stream and the link closed with the code).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use channel::{
    BasicHandler, Channel, ChannelConfig, ClockReading, CloseSignal, ConnectionHandler,
    ConnectionStats, Link, StreamConnection, drive_stream,
};
use protocol::v2::{ClientMessage, ErrorCode, ServerMessage};
use protocol::{CloseCode, FrameDecoder, PROTOCOL_VERSION, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

struct Clocked;

impl ConnectionHandler for Clocked {
    fn clock(&self) -> Option<ClockReading> {
        Some(ClockReading {
            world_time_ms: 4242,
            tick: 7,
        })
    }
}

struct Client {
    io: DuplexStream,
    decoder: FrameDecoder<ServerMessage>,
    link: Arc<CloseSignal>,
    task: JoinHandle<Option<CloseCode>>,
    stats: ConnectionStats,
    channel: Channel,
}

fn start(handler: Arc<dyn ConnectionHandler>, handshake: Duration) -> Client {
    let mut cfg = ChannelConfig::new("test 0");
    cfg.handshake_timeout = handshake;
    let stats = ConnectionStats::default();
    let channel = Channel::new(cfg, handler, stats.clone()).unwrap();
    let (client, server) = tokio::io::duplex(1 << 16);
    let (recv, send) = tokio::io::split(server);
    let link = Arc::new(CloseSignal::new());
    let driven = channel.clone();
    let conn = StreamConnection {
        recv,
        send,
        link: link.clone(),
        remote: SocketAddr::from(([127, 0, 0, 1], 1)),
        handshake_deadline: Instant::now() + handshake,
    };
    let task = tokio::spawn(async move {
        let _admission = driven.admit().unwrap();
        drive_stream(&driven, conn).await
    });
    Client {
        io: client,
        decoder: FrameDecoder::new(),
        link,
        task,
        stats,
        channel,
    }
}

impl Client {
    async fn send(&mut self, msg: &ClientMessage) {
        let mut bytes = Vec::new();
        encode_frame(msg, &mut bytes).unwrap();
        self.io.write_all(&bytes).await.unwrap();
    }

    /// The next message, or `None` at the end of the stream.
    async fn recv(&mut self) -> Option<ServerMessage> {
        let mut byte = [0u8; 1];
        loop {
            let n = self.io.read(&mut byte).await.unwrap();
            if n == 0 {
                return None;
            }
            let mut input = &byte[..];
            if let Some(msg) = self.decoder.decode(&mut input).unwrap() {
                return Some(msg);
            }
        }
    }

    async fn hello(&mut self) {
        self.send(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            client: "test".into(),
        })
        .await;
        match self.recv().await {
            Some(ServerMessage::Welcome {
                protocol_version,
                server_version,
                ..
            }) => {
                assert_eq!(protocol_version, PROTOCOL_VERSION);
                assert_eq!(server_version, "test 0");
            }
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// The `Error` closing the connection, the end of the stream, the code.
    async fn expect_close(mut self, code: CloseCode) {
        match self.recv().await {
            Some(ServerMessage::Error { code: got, .. }) => assert_eq!(got, ErrorCode::from(code)),
            other => panic!("expected Error, got {other:?}"),
        }
        assert_eq!(self.recv().await, None);
        assert_eq!(self.task.await.unwrap(), Some(code));
        assert_eq!(self.link.close_code(), Some(code));
        assert_eq!(self.stats.connections(), 0);
    }
}

#[tokio::test]
async fn ping_carries_the_world_time_and_heartbeat_is_answered() {
    let mut c = start(Arc::new(Clocked), Duration::from_secs(10));
    c.hello().await;
    c.send(&ClientMessage::Ping {
        nonce: 9,
        client_time_us: 1,
    })
    .await;
    match c.recv().await {
        Some(ServerMessage::Pong {
            nonce,
            world_time_ms,
            ..
        }) => {
            assert_eq!(nonce, 9);
            assert_eq!(world_time_ms, Some(4242));
        }
        other => panic!("expected Pong, got {other:?}"),
    }
    c.send(&ClientMessage::Heartbeat { client_time_ms: 1 })
        .await;
    assert!(matches!(
        c.recv().await,
        Some(ServerMessage::Heartbeat { .. })
    ));
    assert_eq!(c.stats.connections(), 1);
    assert_eq!(c.stats.total_accepted(), 1);
    // The client ends its stream: a normal close, nothing said.
    c.io.shutdown().await.unwrap();
    assert_eq!(c.recv().await, None);
    assert_eq!(c.task.await.unwrap(), Some(CloseCode::Normal));
}

#[tokio::test]
async fn without_a_clock_pong_has_no_world_time() {
    let mut c = start(Arc::new(BasicHandler), Duration::from_secs(10));
    c.hello().await;
    c.send(&ClientMessage::Ping {
        nonce: 1,
        client_time_us: 1,
    })
    .await;
    assert!(matches!(
        c.recv().await,
        Some(ServerMessage::Pong {
            world_time_ms: None,
            ..
        })
    ));
}

#[tokio::test]
async fn command_before_authenticate_is_unauthenticated() {
    let mut c = start(Arc::new(BasicHandler), Duration::from_secs(10));
    c.hello().await;
    c.send(&ClientMessage::CreateSession {
        scene: None,
        world: None,
    })
    .await;
    c.expect_close(CloseCode::Unauthenticated).await;
}

#[tokio::test]
async fn message_before_hello_and_old_version_are_refused() {
    let mut c = start(Arc::new(BasicHandler), Duration::from_secs(10));
    c.send(&ClientMessage::Heartbeat { client_time_ms: 1 })
        .await;
    c.expect_close(CloseCode::ProtocolError).await;

    let mut c = start(Arc::new(BasicHandler), Duration::from_secs(10));
    c.send(&ClientMessage::Hello {
        protocol_version: 1,
        client: "old".into(),
    })
    .await;
    c.expect_close(CloseCode::VersionMismatch).await;
}

#[tokio::test]
async fn bad_frames_close_with_their_code() {
    let mut c = start(Arc::new(BasicHandler), Duration::from_secs(10));
    c.hello().await;
    c.io.write_all(&[0xFF, 0xFF, 0xFF, 0xFF]).await.unwrap();
    c.expect_close(CloseCode::FrameTooLarge).await;

    let mut c = start(Arc::new(BasicHandler), Duration::from_secs(10));
    c.hello().await;
    c.io.write_all(&[0, 0, 0, 1, 99]).await.unwrap();
    c.expect_close(CloseCode::ProtocolError).await;
}

#[tokio::test(start_paused = true)]
async fn no_hello_in_time_is_a_handshake_timeout() {
    let c = start(Arc::new(BasicHandler), Duration::from_secs(2));
    c.expect_close(CloseCode::HandshakeTimeout).await;
}

#[tokio::test]
async fn a_stopped_channel_closes_its_connections() {
    let mut c = start(Arc::new(BasicHandler), Duration::from_secs(10));
    c.hello().await;
    c.channel.stop();
    c.expect_close(CloseCode::ServerShutdown).await;
}

#[tokio::test]
async fn admission_counts_up_to_max_connections() {
    let mut cfg = ChannelConfig::new("test 0");
    cfg.max_connections = 1;
    let channel = Channel::new(cfg, Arc::new(BasicHandler), ConnectionStats::default()).unwrap();
    let first = channel.admit().unwrap();
    assert_eq!(channel.admit().unwrap_err(), CloseCode::ServerFull);
    drop(first);
    let _again = channel.admit().unwrap();
    assert_eq!(channel.stats().connections(), 1);
    assert_eq!(channel.stats().total_accepted(), 2);
}
