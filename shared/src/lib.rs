//! driftloop's library crate.

pub mod metrics;
