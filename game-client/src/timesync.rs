//! Time sync with the server's simulation clock, NTP style: over QUIC datagrams
//! ([`Client::time_sync`]), or with pings on a transport without datagrams
//! (WebSocket: `Pong.world_time_ms`); [`Client::sync_clock`] picks the way.
//!
//! Reflex mini-game inputs carry the claimed press time in the server's **world
//! time** (the simulation clock, in ms, that prompt windows are expressed in), so a
//! client needs an estimate of that clock. [`Client::time_sync`] sends `samples`
//! time-sync datagrams one after the other; each reply carries the request's send
//! stamp back with the server's world time and tick. For a sample sent at local time
//! `t0` and answered at `t3`, `rtt = t3 - t0` and `offset = world - (t0 + t3) / 2`;
//! the sample with the smallest round trip wins (its midpoint error is at most
//! `rtt / 2`). A lost datagram costs one per-sample timeout, never a hang.
//!
//! ```no_run
//! # async fn demo(client: &game_client::Client) -> Result<(), game_client::ClientError> {
//! let sync = client.time_sync(8).await?;
//! // Later, on a key press during a reflex round:
//! let claimed_ms = sync.server_now_ms();
//! # let _ = claimed_ms; Ok(()) }
//! ```
//!
//! The estimate assumes world time runs at real speed: after a pause or a time-scale
//! change on the server, sync again.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use protocol::v2::{ClientDatagram, ClientMessage, ServerDatagram, ServerMessage};
use protocol::{decode_datagram, encode_datagram};

use crate::{Client, ClientError};

/// Longest wait for one sample's reply (bounded further by the client's timeout).
const SAMPLE_TIMEOUT: Duration = Duration::from_millis(500);

/// The result of [`Client::time_sync`]: server world time ≈ local monotonic time +
/// `offset_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeSync {
    /// Server world time minus local monotonic time (this process's clock), in ms.
    pub offset_ms: f64,
    /// Round-trip time of the sample the offset comes from, in ms.
    pub rtt_ms: f64,
}

/// The local monotonic clock's origin, fixed on first use in this process.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` on the local monotonic clock, in ms (negative before [`epoch`]).
fn local_ms(at: Instant) -> f64 {
    let origin = epoch();
    if at >= origin {
        (at - origin).as_secs_f64() * 1000.0
    } else {
        -((origin - at).as_secs_f64() * 1000.0)
    }
}

impl TimeSync {
    /// The server's world time now (ms), estimated from the local monotonic clock.
    pub fn server_now_ms(&self) -> i64 {
        self.server_ms_at(Instant::now())
    }

    /// The server's world time (ms) at the local instant `at`, e.g. when a key was
    /// pressed. Rounded down, so a claim made with it is not pushed ahead of the
    /// server's clock by rounding.
    pub fn server_ms_at(&self, at: Instant) -> i64 {
        (local_ms(at) + self.offset_ms).floor() as i64
    }
}

impl Client {
    /// Estimates the server's world clock by the transport's means: datagrams on
    /// QUIC ([`Client::time_sync`]), pings elsewhere ([`Client::ping_sync`]).
    pub async fn sync_clock(&mut self, samples: usize) -> Result<TimeSync, ClientError> {
        if self.wire.quic_connection().is_some() {
            self.time_sync(samples).await
        } else {
            self.ping_sync(samples).await
        }
    }

    /// Estimates the server's world clock from `samples` pings, keeping the sample
    /// with the smallest round trip (`Pong.world_time_ms`, stamped when the server
    /// answered). Messages that arrive meanwhile (events of a joined session) are kept
    /// for [`Client::recv`]. Fails with [`ClientError::Timeout`] when no pong came
    /// back, or [`ClientError::Unsupported`] when the server runs no simulation.
    pub async fn ping_sync(&mut self, samples: usize) -> Result<TimeSync, ClientError> {
        let mut best: Option<TimeSync> = None;
        for _ in 0..samples.max(1) {
            let sample = self.ping_sample().await?;
            if best.is_none_or(|b| sample.rtt_ms < b.rtt_ms) {
                best = Some(sample);
            }
        }
        best.ok_or(ClientError::Timeout(self.timeout))
    }

    /// One ping and its pong, within the client's timeout.
    async fn ping_sample(&mut self) -> Result<TimeSync, ClientError> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let sent = Instant::now();
        self.send(&ClientMessage::Ping {
            nonce,
            client_time_us: (local_ms(sent) * 1000.0).max(0.0) as u64,
        })
        .await?;
        let deadline = tokio::time::Instant::from_std(sent + self.timeout);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.wire.recv())
                .await
                .map_err(|_| ClientError::Timeout(self.timeout))??;
            let received = Instant::now();
            match msg {
                ServerMessage::Pong {
                    nonce: n,
                    world_time_ms,
                    ..
                } if n == nonce => {
                    let Some(world_time_ms) = world_time_ms else {
                        return Err(ClientError::Unsupported(
                            "the server runs no simulation clock",
                        ));
                    };
                    let rtt_ms = (received - sent).as_secs_f64() * 1000.0;
                    let midpoint = local_ms(sent) + rtt_ms / 2.0;
                    return Ok(TimeSync {
                        offset_ms: world_time_ms as f64 - midpoint,
                        rtt_ms,
                    });
                }
                ServerMessage::Error { code, message } => {
                    return Err(self.rejected(code, message).await);
                }
                // Another ping's pong; anything else is the application's.
                ServerMessage::Pong { .. } => continue,
                other @ (ServerMessage::Welcome { .. }
                | ServerMessage::Authenticated { .. }
                | ServerMessage::SessionJoined { .. }
                | ServerMessage::Event { .. }
                | ServerMessage::Ack { .. }
                | ServerMessage::Rejected { .. }
                | ServerMessage::Heartbeat { .. }) => self.defer(other),
            }
        }
    }

    /// Estimates the server's world clock from `samples` time-sync datagrams (at
    /// least one is sent), keeping the sample with the smallest round trip. Each
    /// sample waits at most 500 ms (and at most the client's timeout) for its reply;
    /// lost samples are skipped. Fails with [`ClientError::Timeout`] when no reply
    /// came back at all, or with the connection's error if it closed.
    ///
    /// Datagram replies are read here, so run one time sync at a time per
    /// connection. Only over QUIC ([`ClientError::Unsupported`] elsewhere; see
    /// [`Client::sync_clock`]).
    pub async fn time_sync(&self, samples: usize) -> Result<TimeSync, ClientError> {
        let per_sample = SAMPLE_TIMEOUT.min(self.timeout);
        let mut best: Option<TimeSync> = None;
        for _ in 0..samples.max(1) {
            if let Some(sample) = self.time_sample(per_sample).await?
                && best.is_none_or(|b| sample.rtt_ms < b.rtt_ms)
            {
                best = Some(sample);
            }
        }
        best.ok_or(ClientError::Timeout(per_sample))
    }

    /// One request and its reply; `None` when no reply came within `wait`.
    async fn time_sample(&self, wait: Duration) -> Result<Option<TimeSync>, ClientError> {
        let sent = Instant::now();
        let client_send_us = (local_ms(sent) * 1000.0).max(0.0) as u64;
        let request = encode_datagram(&ClientDatagram::TimeSyncRequest { client_send_us })?;
        let Some(conn) = self.wire.quic_connection() else {
            return Err(ClientError::Unsupported("time-sync datagrams need QUIC"));
        };
        conn.send_datagram(request.into()).map_err(|e| match e {
            quinn::SendDatagramError::ConnectionLost(e) => ClientError::from(e),
            other => ClientError::Io(std::io::Error::other(format!(
                "cannot send a time-sync datagram: {other}"
            ))),
        })?;
        let deadline = tokio::time::Instant::from_std(sent + wait);
        loop {
            let bytes = match tokio::time::timeout_at(deadline, conn.read_datagram()).await {
                Err(_) => return Ok(None),
                Ok(r) => r?,
            };
            let received = Instant::now();
            match decode_datagram::<ServerDatagram>(&bytes)? {
                ServerDatagram::TimeSyncReply {
                    client_send_us: echoed,
                    world_time_ms,
                    ..
                } if echoed == client_send_us => {
                    let rtt_ms = (received - sent).as_secs_f64() * 1000.0;
                    let midpoint = local_ms(sent) + rtt_ms / 2.0;
                    return Ok(Some(TimeSync {
                        offset_ms: world_time_ms as f64 - midpoint,
                        rtt_ms,
                    }));
                }
                // A late reply to an earlier sample that timed out.
                ServerDatagram::TimeSyncReply { .. } => continue,
            }
        }
    }
}
