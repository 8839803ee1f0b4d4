//! Generation jobs, provider accounts, assets and lineage tables.
//!
//! Plain rows and inputs (enums travel as their text form); the `generation` crate
//! converts them into its typed model. The queue lives in [`jobs`]: claims use
//! `FOR UPDATE SKIP LOCKED`, every worker write is fenced by `(id, attempt, lease_owner)`,
//! and account slots are reserved atomically in [`accounts::reserve`].

pub mod accounts;
pub mod assets;
pub mod jobs;
pub mod metrics;
pub mod submissions;
