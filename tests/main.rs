//! End-to-end tests: the real server on port 0 (HTTP and QUIC) against PostgreSQL.
#![allow(clippy::unwrap_used)]

mod admin_page;
mod assets;
mod auth;
mod bots;
mod browser;
mod client_transports;
mod content;
mod embedded_db;
mod errors;
mod game;
mod game_crash;
mod generations;
mod health;
mod input;
mod inspector;
mod lifecycle;
mod limits;
mod logs;
mod media;
mod metrics;
mod openapi;
mod play;
mod player;
mod providers;
mod quic;
mod register_storm;
mod revocation;
mod snapshot;
mod static_site;
mod transports;
mod ts_client;
mod upload_memory;
mod webtransport;
mod worlds;
mod ws;
