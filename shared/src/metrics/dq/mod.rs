//! Data quality: Deequ type inference, column statistics with a KLL sketch, baseline files, the six
//! checks, and baseline suggestion.

pub mod baseline;
pub mod checks;
pub mod drift;
pub mod kll;
pub mod naming;
pub mod sample;
pub mod stats;
pub mod suggest;
pub mod types;
