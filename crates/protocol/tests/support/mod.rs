//! Shared test support: the sample messages of the golden vectors.
#![allow(dead_code)]

pub mod event_samples;
pub mod revision1;
pub mod revision2;
pub mod samples;
