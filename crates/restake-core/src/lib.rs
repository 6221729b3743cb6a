//! # restake-core
//!
//! The sampling core of restake-mc: a Monte Carlo engine for the yield and the loss of a
//! restaked ETH position, as specified in the project's `docs/model.md`.
//!
//! A run goes scenario → model → paths → statistics:
//! 1. [`Scenario::from_toml`] parses and checks a scenario file's text;
//! 2. [`Model::new`] compiles it: stake pools, risk sources with their Poisson
//!    intensities, income rates;
//! 3. [`simulate`] samples the paths in parallel, batch by batch, reproducibly;
//! 4. [`reduce`] reduces them, batch by batch in path order, to a mergeable
//!    [`reduce::Partial`] state whose [`reduce::Partial::finish`] gives the statistics
//!    of the output files ([`analyse`] computes the same from every path kept in
//!    memory: the reference the validation tests hold the reduction to).
//!
//! [`run`] does all four. The crate does no file or terminal I/O.
//!
//! ```
//! use restake_core::{RunConfig, Scenario, run};
//! let scenario = Scenario::from_toml(r#"
//!     name = "solo"
//!     [position]
//!     principal_eth = 32.0
//!     route = "native"
//!     horizon_days = 365
//!     [base]
//!     apr_mean = 0.03
//!     [[operator]]
//!     name = "me"
//!     weight = 1.0
//! "#).unwrap();
//! let config = RunConfig { paths: 1000, seed: 1, threads: 1 };
//! let results = run(&scenario, &config, &|_| {}).unwrap();
//! let mean = results.metric(restake_core::stats::MetricId::MeanNetReturn).unwrap().value;
//! assert!((mean - (0.03f64.exp() - 1.0)).abs() < 1e-12);
//! ```

pub mod block;
pub mod calibrate;
pub mod engine;
pub mod error;
pub mod exact;
pub mod exp;
pub mod leverage;
pub mod model;
pub mod normal;
pub mod order;
pub mod path;
pub mod reduce;
pub mod sampling;
pub mod scenario;
pub mod sketch;
pub mod stats;
pub mod stress;
mod ziggurat_tables;

pub use engine::{BATCH_PATHS, PathSet, RowLoss, RunConfig, simulate};
pub use error::ScenarioError;
pub use model::{ContributionKind, ContributionRow, Model};
pub use path::PathOutcome;
pub use scenario::{MAX_PATHS, Scenario, ScenarioSpec, SeveritySpec};
pub use stats::{Estimate, Results, analyse};

/// Days in a year: the model's time unit is the 365-day year (`docs/model.md#a-path`).
pub const DAYS_PER_YEAR: f64 = 365.0;

/// Compiles `scenario`, simulates `config.paths` paths and computes their statistics
/// through the one reduction of [`reduce`] (exact but for the fan chart and the
/// distribution files, whatever the path count, in memory that does not grow with it
/// but for the square root in the tails).
/// `progress` is called after each batch with the paths done so far.
///
/// # Errors
/// As [`reduce::reduce_range`] and [`reduce::Partial::finish`]: a path count outside
/// [1, [`MAX_PATHS`]], too many checkpoints, or no thread pool.
pub fn run(
    scenario: &Scenario,
    config: &RunConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Results, ScenarioError> {
    run_model(
        &Model::new(scenario),
        config,
        &scenario.spec().report.loss_thresholds,
        progress,
    )
}

/// As [`run`], for a compiled (possibly coupled, [`Model::couple`]) model, with the
/// `[report]` loss thresholds given.
///
/// # Errors
/// As [`run`].
pub fn run_model(
    model: &Model,
    config: &RunConfig,
    loss_thresholds: &[f64],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Results, ScenarioError> {
    reduce::reduce_range(model, config, 0..config.paths, loss_thresholds, progress)?
        .finish(model, loss_thresholds)
}
