//! The generation pipeline: jobs in a durable PostgreSQL queue, provider accounts,
//! providers (`local`, `pixverse`, `openai`), completion into content-addressed assets
//! with lineage, and events.
//!
//! Entry points:
//! - `GenerationService`: create/validate/list/get/cancel/pause/resume/retry/delete
//!   jobs, provider account CRUD, assets (list/get/file/lineage/upload), events
//!   (`GenerationService::subscribe`).
//! - `Worker` (from `GenerationService::worker`): `Worker::run` until shutdown, or
//!   `Worker::try_execute_once` in tests.
//! - `PipelineConfig`: settings; `PipelineConfig::providers` holds each provider's
//!   entry, keyed by id, which that provider parses itself.
//!
//! Adding a provider: a module under `provider/` (adapter, config struct, rules, price,
//! `build`) and one line in `provider::registry::BUILT_IN`.
//!
//! Wiring (server):
//!
//! ```text
//! let svc = GenerationService::new(pool, PipelineConfig::new(state_dir.join("media")))?;
//! for _ in 0..n { tokio::spawn(svc.worker().run(shutdown.clone())); }  // or `pixsim-server worker`
//! let _bridge = svc.connect_redis(url, shutdown)?; // optional: wake-ups, events, cancels across nodes
//! let mut events = svc.subscribe();            // → /api/v1/ws/generations, sim bridge
//! // REST handlers: svc.create/validate/list/get/cancel/pause/resume/retry/delete(actor, …),
//! // svc.*_account(…), svc.list_assets/get_asset/asset_file/asset_lineage/upload_asset(…);
//! // map GenerationError::code()/http_status() to the answer.
//! ```

mod batch;
mod convert;

pub mod cluster;
pub mod config;
pub mod download;
pub mod embed;
pub mod error;
pub mod events;
pub mod guard;
pub mod incoming;
pub mod media;
pub mod model;
mod outbox;
pub mod params;
pub mod provider;
pub mod render;
pub mod secrets;
pub mod service;
mod shared;
pub mod thumbnail;
pub mod webhooks;
pub mod worker;

#[cfg(feature = "fakes")]
pub mod fakes;

/// The queue priority of a job that names none (0–10, higher first).
pub const DEFAULT_PRIORITY: i16 = 5;

pub use cluster::RedisBridge;
pub use config::PipelineConfig;
pub use error::GenerationError;
pub use events::GenerationEvent;
pub use service::{AssetFile, GenerationService, ProviderReachability, check_spec, spec_request};
pub use worker::{ClaimedJob, Executed, Outcome, Worker};
