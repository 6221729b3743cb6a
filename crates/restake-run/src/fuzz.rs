//! The bodies of the fuzz targets under `fuzz/` (cargo fuzz, libFuzzer), shared with the
//! fixed-seed mutation test of the ordinary test suite, so that both run exactly what a
//! user's input goes through. Each returns normally for any input; a panic is a finding.

use crate::job::{DEFAULT_SCENARIO, Job, JobSpec, Overrides, Source};
use crate::shard::ShardPlan;
use crate::tables::{export_tables, import_tables};

/// Paths a fuzzed scenario that checks out is run with.
const FUZZ_PATHS: u64 = 64;

/// `text` as a scenario file, as `restake-mc run` takes it: parsed, checked, compiled
/// with the run's own checks ([`Job::build`]), then, when it checks out, [`FUZZ_PATHS`]
/// paths simulated, reduced and finished, and its TOML (as `import` writes it) parsed
/// back. Returns whether it checked out.
///
/// # Panics
/// When the engine panics, or when the TOML of a scenario that checked out does not
/// parse back to the same scenario.
pub fn scenario(text: &str) -> bool {
    let source = Source {
        text: text.to_string(),
        origin: "fuzz.toml".into(),
    };
    let overrides = Overrides {
        paths: Some(FUZZ_PATHS),
        seed: None,
    };
    let Ok(job) = Job::build(JobSpec::Run(source), overrides, 1) else {
        return false;
    };
    for m in &job.members {
        if let Ok(partial) = m.simulate(ShardPlan::WHOLE, &|_| {}) {
            let _ = m.finish(partial);
        }
        let written = toml::to_string(m.scenario.spec()).expect("a checked scenario serialises");
        let back = restake_core::Scenario::from_toml(&written)
            .unwrap_or_else(|e| panic!("written scenario does not read back: {e}\n{written}"));
        assert_eq!(back.spec(), m.scenario.spec(), "written scenario differs");
    }
    true
}

/// `data` as the two tables of `restake-mc import` (split at the first NUL byte:
/// `avs.csv`, then `operators.csv`) over the bundled scenario; a scenario that checks
/// out is exported and imported again. Returns whether the tables checked out.
///
/// # Panics
/// When the import panics, or when export then import does not give the scenario back.
pub fn import(data: &[u8]) -> bool {
    let (avs, operators) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let base = restake_core::Scenario::from_toml(DEFAULT_SCENARIO).expect("bundled scenario");
    let Ok(scenario) = import_tables(base.spec(), ("avs.csv", avs), ("operators.csv", operators))
    else {
        return false;
    };
    let (avs, operators) = export_tables(scenario.spec());
    let back = import_tables(
        scenario.spec(),
        ("avs.csv", &avs),
        ("operators.csv", &operators),
    )
    .unwrap_or_else(|e| panic!("exported tables do not import: {e}"));
    assert_eq!(back.spec(), scenario.spec(), "export then import differs");
    true
}
