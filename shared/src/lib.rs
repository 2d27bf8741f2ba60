//! driftloop's library crate: domain logic, the ports it talks to AWS through, one adapter per
//! AWS service, and the metrics engine.
//!
//! The `aws` feature (on by default) brings the SDK adapters, configuration, tracing and Lambda
//! glue. The metrics engine ([`metrics`]) needs none of it: `cargo test -p driftloop
//! --no-default-features` builds and tests it without compiling any AWS SDK crate.

pub mod metrics;

#[cfg(feature = "aws")]
pub mod adapters;
#[cfg(feature = "aws")]
pub mod aws;
pub mod catalogue;
pub mod clock;
#[cfg(feature = "aws")]
pub mod config;
#[cfg(feature = "aws")]
pub mod contract;
#[cfg(feature = "aws")]
pub mod control;
#[cfg(feature = "aws")]
pub mod deploy;
#[cfg(feature = "aws")]
pub mod doubles;
pub mod error;
#[cfg(feature = "aws")]
pub mod events;
#[cfg(feature = "aws")]
pub mod monitoring;
#[cfg(feature = "aws")]
pub mod pipelines;
#[cfg(feature = "aws")]
pub mod publish;
#[cfg(feature = "aws")]
pub mod registry;
#[cfg(feature = "aws")]
pub mod retrain;
#[cfg(feature = "aws")]
pub mod retry;
pub mod spelling;
#[cfg(feature = "aws")]
pub mod storage;
#[cfg(feature = "aws")]
pub mod telemetry;
