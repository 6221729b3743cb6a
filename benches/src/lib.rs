//! Shared inputs of the benchmarks in `benches/benches`: the scenarios they run, each
//! preset of `data/scenarios/` and the stress scenario of `benches/scenarios/`.

use restake_core::Scenario;

/// `(name, TOML text)` of every benchmarked scenario: the three presets, the peers'
/// 5-AVS × 3-operator scenario with every source on (about 0.7 events a path, no
/// factor), then a stress case of 10 AVSs × 5 operators with events on most paths.
pub const SCENARIOS: [(&str, &str); 5] = [
    (
        "etherfi-weeth",
        include_str!("../../data/scenarios/etherfi-weeth.toml"),
    ),
    (
        "eigenlayer-native",
        include_str!("../../data/scenarios/eigenlayer-native.toml"),
    ),
    (
        "renzo-ezeth",
        include_str!("../../data/scenarios/renzo-ezeth.toml"),
    ),
    (
        "every-source-5avs-3ops",
        include_str!("../scenarios/every-source-5avs-3ops.toml"),
    ),
    (
        "stress-10avs-5ops",
        include_str!("../scenarios/stress-10avs-5ops.toml"),
    ),
];

/// The scenario called `name` in [`SCENARIOS`], parsed.
///
/// # Panics
/// If there is no such scenario or it does not parse (a bug in the benchmarks).
pub fn scenario(name: &str) -> Scenario {
    let (_, text) = SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no benchmark scenario {name}"));
    Scenario::from_toml(text).expect("benchmark scenarios parse")
}
