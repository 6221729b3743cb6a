//! # restake-validation
//!
//! What proves restake-mc's numbers, shared by its release-mode tests (`tests/`) and the
//! command line's tests:
//! - [`stat`]: Kolmogorov–Smirnov and chi-square tests, and tolerances stated in Monte
//!   Carlo standard errors;
//! - [`oracle`]: the exact enumeration of a fixed-severity loss distribution;
//! - [`reference`]: a slow, plain simulation of the model to compare the engine with;
//! - [`scenarios`]: random small scenarios for property tests, with fixed seeds;
//! - [`harness`]: parse a scenario, run it, read a metric.
//!
//! Run the tests with `cargo test --release -p restake-validation`.

pub mod harness;
pub mod oracle;
pub mod reference;
pub mod scenarios;
pub mod stat;
