//! Generation jobs, provider accounts, assets and lineage tables.
//!
//! Rows and inputs; the closed sets stored as text are the enums of [`kinds`], decoded
//! and bound directly. The `generation` crate turns rows into its REST model. The queue lives in [`jobs`]: claims use
//! `FOR UPDATE SKIP LOCKED`, every worker write is fenced by `(id, attempt, lease_owner)`,
//! and account slots are reserved atomically in [`accounts::reserve`].

pub mod accounts;
pub mod assets;
pub mod budgets;
pub mod embeddings;
pub mod jobs;
pub mod kinds;
pub mod library;
pub mod metrics;
pub mod submissions;
