//! The small steps every validation test takes: parse a scenario, run it, read a metric.

use restake_core::stats::MetricId;
use restake_core::{Estimate, Results, RunConfig, Scenario, run};

/// A checked scenario from its TOML text.
///
/// # Panics
/// With the scenario's error, if it does not check out (a bug in the test).
pub fn scenario(text: &str) -> Scenario {
    Scenario::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The results of `paths` paths of `s` with `seed`, on every core.
///
/// # Panics
/// If the engine refuses the run (a bug in the test).
pub fn results(s: &Scenario, paths: u64, seed: u64) -> Results {
    let config = RunConfig {
        paths,
        seed,
        threads: 0,
    };
    run(s, &config, &|_| {}).unwrap()
}

/// The summary metric `id` of `r`.
///
/// # Panics
/// If there is no such metric.
pub fn metric(r: &Results, id: MetricId) -> Estimate {
    *r.metric(id).unwrap_or_else(|| panic!("no metric {id}"))
}
