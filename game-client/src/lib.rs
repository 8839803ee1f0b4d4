//! PixSim game client library: QUIC connection, version handshake, pings, authentication,
//! sessions (create, join with `last_seq`), commands and the event stream ([`Client`],
//! errors in [`ClientError`]). The client side of the transport is its own:
//! certificate trust in [`tls`], the quinn configuration and close codes in
//! [`transport`]; it depends on the `protocol` crate, never on server code. [`rest`]
//! has the few REST calls a client needs, [`play`] the terminal scene player of
//! `pixsim-client play`, [`bots`] the load bots of `pixsim-client bots`, and
//! [`timesync`] the estimate of the server's world clock.
//!
//! ```no_run
//! # async fn demo() -> Result<(), game_client::ClientError> {
//! use game_client::{Client, Trust};
//! let addr = "127.0.0.1:4433".parse().unwrap();
//! let mut client = Client::connect(addr, "localhost", Trust::Fingerprint("ab:cd:...".into())).await?;
//! let rtt = client.ping().await?;
//! println!("{} {rtt:?}", client.server_version());
//! client.close().await;
//! # Ok(()) }
//! ```

pub mod bots;
mod client;
mod error;
pub mod play;
pub mod rest;
pub mod timesync;
pub mod tls;
pub mod transport;
mod wire;

pub use client::{Client, ConnectOptions, Joined};
pub use error::ClientError;
pub use timesync::TimeSync;
pub use tls::{TlsError, Trust, fingerprint};
pub use transport::client_config;
pub use wire::{Target, Transport, WS_PATH, WsEncoding, websocket_url, ws_close_code};
