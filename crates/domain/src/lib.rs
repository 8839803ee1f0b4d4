//! Domain types shared by the simulation, the generation pipeline and the API.
//! Pure data and rules: no I/O.

pub mod narrative;
pub mod user;
