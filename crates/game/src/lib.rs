//! Game sessions between the network and the simulation tick.
//!
//! ```text
//!  QUIC / REST ──GameHandle──► inbound (bounded mpsc) ──PreUpdate──► sim::Inbox
//!                                                                      │ FixedUpdate
//!  clients ◄── forwarders ◄── session logs ◄── persister ◄── slot ◄──PostUpdate (events + saves)
//!                                   (after COMMIT)        (1 tx per batch)
//! ```
//!
//! * **Inbound**: [`GameHandle`] sends starts, resumes and commands over one bounded
//!   channel; a full channel or a persister that lags is reported as *busy*, never
//!   queued without bound. The tick takes at most one command per session per tick, so
//!   the events of that session in that tick are the command's answer.
//! * **Outbound**: in `PostUpdate` the bridge drains `sim::Outbox`, numbers events per
//!   session (its own dense sequence, stable across restarts), builds a save of every
//!   session that changed and appends everything to the pending batch (a mutex-guarded
//!   slot; the tick never awaits). Sessions whose command waited longest
//!   ([`GameConfig::urgent_wait`]) are handed over first, as a batch of their own,
//!   while the tick builds the rest. The persister takes what waits (that urgent part
//!   alone, else one or more ticks: group commit) and writes it in **one
//!   transaction**, in hand-over order. Only after `COMMIT`
//!   are the events published to the sessions' in-memory logs (bounded resend window)
//!   and the commands' acknowledgements released.
//! * **Snapshot**: a join asks the tick for the session's view ([`GameHandle::snapshot`]);
//!   the bridge takes it after the tick's events are numbered and hands it over with the
//!   tick's batch, released once that batch is committed: it reflects exactly the
//!   events below its `next_seq`, all durable.
//! * **Reload**: a session not in memory is loaded on join from its last committed
//!   save (or restarted from its seed when it never committed a tick), with the
//!   retained events for resend.
//! * **Eviction**: a sweeper drops ended sessions from memory
//!   [`GameConfig::evict_ended_after`] after their end was committed, and unloads
//!   sessions nobody follows (no event subscription) that were idle for
//!   [`GameConfig::evict_idle_after`]: the tick writes a fresh save and despawns the
//!   entity, and only once that save is committed is the session forgotten (a join
//!   meanwhile waits, then reloads it from the database).
//! * **Clock**: the bridge publishes the simulation's world clock after every tick;
//!   [`GameHandle::clock`] extrapolates it to "now" for time-sync replies.
//! * **Content**: [`ContentCell`] holds the content currently loaded; the narrative
//!   reload swaps it in the same place the simulation gets it from, so listing scenes
//!   and creating sessions follow hot reloads.
//!
//! Modules, one concept each: `config` (tunables), `handle` ([`GameHandle`]: commands,
//! shutdown, figures), `sessions` (create, join and reload; the per-user cap), `live`
//! (the registry's [`LiveSession`]s, their [`Subscription`]s and committed
//! [`Delivered`] events), `slot` (the tick → persister hand-over), `shared` (what the
//! handle, tick and persister share; the eviction sweep), `bridge` (the tick side),
//! `persist` (the persister), `snapshot` (a join's [`Joined`] snapshot), `clock`, `media`, `content`, `error`, `inbound`, and
//! [`events`] (sim ↔ protocol conversions). The QUIC adapter is not here: the server
//! plugs the handle into the `quic` endpoint.

mod bridge;
mod clock;
mod config;
mod content;
mod error;
pub mod events;
mod handle;
mod inbound;
mod live;
mod media;
mod persist;
mod sessions;
mod shared;
mod slot;
mod snapshot;

pub use bridge::{GamePlugin, GameSystems};
pub use clock::WorldTime;
pub use config::GameConfig;
pub use content::ContentCell;
pub use error::GameError;
pub use handle::{Game, GameHandle, SessionSummary};
pub use inbound::CommandOutcome;
pub use live::{Attachment, Delivered, Gap, LiveSession, Subscription};
pub use media::{MediaWanted, Whereabouts};
pub use persist::{Persister, PersisterTask};
pub use snapshot::{Joined, view_into_wire};

pub(crate) use clock::ClockSample;
pub(crate) use inbound::Inbound;
pub(crate) use shared::{DurabilityMetrics, Shared};
pub(crate) use slot::{Pending, Slot};
