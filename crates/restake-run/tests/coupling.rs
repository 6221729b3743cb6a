//! A sweep's `coupled` flag is true exactly when its points are coupled path by path
//! (`docs/model.md#sweeps`), for each kind of parameter. Where it is true, the points are
//! simulated on one seed and the riskier point's value at the horizon is checked to be
//! never higher, path by path; for the depeg probability of a scenario without a
//! systematic factor, which is not coupled, such a path is shown to exist (with a factor
//! the depeg draws from the path's own generator, and it is coupled).

use std::path::Path;

use restake_core::{PathOutcome, RunConfig, simulate};
use restake_run::{Job, JobSpec, Overrides, Source};

const PATHS: u64 = 8192;

fn sweep(preset: &str, sets: &[&str]) -> Job {
    sweep_source(Source::read(Some(Path::new(preset))).unwrap(), sets)
}

/// `preset` without its `[systematic]` table.
fn without_factor(preset: &str) -> Source {
    let mut source = Source::read(Some(Path::new(preset))).unwrap();
    source.text = source
        .text
        .lines()
        .filter(|l| !l.starts_with("[systematic]") && !l.starts_with("rho ="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(source.scenario().unwrap().spec().systematic.is_none());
    source
}

fn sweep_source(base: Source, sets: &[&str]) -> Job {
    Job::build(
        JobSpec::Sweep {
            base,
            sets: sets.iter().map(|s| s.to_string()).collect(),
        },
        Overrides {
            paths: Some(PATHS),
            seed: Some(7),
        },
        1,
    )
    .unwrap()
}

/// Every path of each grid point, all on the sweep's seed.
fn outcomes(job: &Job) -> Vec<Vec<PathOutcome>> {
    job.members
        .iter()
        .map(|m| {
            let config = RunConfig {
                threads: 1,
                ..m.config
            };
            simulate(&m.model, &config, &|_| {}).unwrap().outcomes
        })
        .collect()
}

/// Paths where `riskier` ends with more than `safer`, and paths where it ends with less.
fn compare(safer: &[PathOutcome], riskier: &[PathOutcome]) -> (usize, usize) {
    let mut above = 0;
    let mut below = 0;
    for (s, r) in safer.iter().zip(riskier) {
        if r.net_return > s.net_return + 1e-12 {
            above += 1;
        } else if r.net_return < s.net_return - 1e-12 {
            below += 1;
        }
    }
    (above, below)
}

#[test]
fn event_and_veto_probabilities_are_coupled_path_by_path() {
    // (preset, axis with the safer value first, whether the second value is riskier)
    let cases = [
        ("etherfi-weeth", "avs.EigenDA.slash_prob=0.01,0.05", true),
        ("etherfi-weeth", "avs.EigenDA.incident_prob=0,0.05", true),
        (
            "etherfi-weeth",
            "operator.\"ether.fi-1 - Pier Two\".fault_prob=0.001,0.05",
            true,
        ),
        // An override the file does not have.
        (
            "etherfi-weeth",
            "operator.\"ether.fi-1 - Pier Two\".slash_probs.bridge-avs=0.001,0.1",
            true,
        ),
        ("etherfi-weeth", "base.slash_prob=0.0001,0.05", true),
        ("etherfi-weeth", "protocol.exploit_prob=0.005,0.05", true),
        // From no veto (no veto draw at all in a plain run) to one: more vetoes, and the
        // severities of the requests that go through are the same draws.
        ("etherfi-weeth", "avs.EigenDA.veto_prob=0,0.5", false),
        (
            "etherfi-weeth",
            "avs.coprocessor-avs.veto_prob=0.5,0.9",
            false,
        ),
        // With a systematic factor the depeg is coupled too.
        ("renzo-ezeth", "liquid.depeg_prob=0.2,0.6", true),
    ];
    for (preset, set, second_riskier) in cases {
        let job = sweep(preset, &[set]);
        assert!(job.coupled, "{set}: not coupled");
        assert!(job.warnings.is_empty(), "{set}: {:?}", job.warnings);
        let points = outcomes(&job);
        let (safer, riskier) = if second_riskier {
            (&points[0], &points[1])
        } else {
            (&points[1], &points[0])
        };
        let (above, below) = compare(safer, riskier);
        assert_eq!(
            above, 0,
            "{set}: riskier point ends higher on {above} paths"
        );
        assert!(
            below > 10,
            "{set}: only {below} paths differ, the check is empty"
        );
    }
    // A grid of several probabilities is coupled too.
    let job = sweep(
        "etherfi-weeth",
        &[
            "avs.EigenDA.slash_prob=0.01,0.03",
            "avs.bridge-avs.veto_prob=0,0.2",
        ],
    );
    assert!(job.coupled);
}

#[test]
fn every_other_kind_of_parameter_is_not_coupled() {
    let cases = [
        ("etherfi-weeth", "base.apr_mean=0.025,0.035"),
        ("etherfi-weeth", "base.apr_sd=0.001,0.01"),
        ("etherfi-weeth", "base.fee=0.05,0.1"),
        ("etherfi-weeth", "avs.EigenDA.fee_apr=0.0005,0.002"),
        ("etherfi-weeth", "avs.EigenDA.slash_severity.alpha=2,3"),
        (
            "etherfi-weeth",
            "operator.\"ether.fi-1 - Pier Two\".commission=0.05,0.1",
        ),
        (
            "etherfi-weeth",
            "operator.\"ether.fi-1 - Pier Two\".allocations.EigenDA=0.1,0.2",
        ),
        ("etherfi-weeth", "position.principal_eth=10,100"),
        ("etherfi-weeth", "position.horizon_days=180,365"),
        ("etherfi-weeth", "token.EIGEN.volatility=0.5,1"),
        ("etherfi-weeth", "incentive.EIGEN.apr=0.001,0.01"),
        ("renzo-ezeth", "liquid.reward_fee=0.05,0.1"),
        ("etherfi-weeth", "systematic.rho=0.1,0.2"),
        // A probability and anything else.
        (
            "etherfi-weeth",
            "avs.EigenDA.slash_prob=0.01,0.05;base.apr_mean=0.03,0.035",
        ),
    ];
    for (preset, sets) in cases {
        let sets: Vec<&str> = sets.split(';').collect();
        let job = sweep(preset, &sets);
        assert!(!job.coupled, "{sets:?}: claimed coupled");
    }
    // Without a factor the depeg is not: its draw and its discount's come from the
    // path's generator, so a riskier point's later paths are other draws, and some end
    // higher.
    let job = sweep_source(
        without_factor("renzo-ezeth"),
        &["liquid.depeg_prob=0.2,0.6"],
    );
    assert!(!job.coupled);
    let points = outcomes(&job);
    let (above, below) = compare(&points[0], &points[1]);
    assert!(above > 0 && below > 0, "above {above}, below {below}");
}

/// A loan's terms draw nothing, so a grid over them is coupled: its points take the same
/// random numbers, and a path liquidated at the lower leverage (or borrow rate) is
/// liquidated at the higher one. The depeg probability is not coupled once a market
/// oracle's depeg episodes are drawn, whose count it sets, even with a factor.
#[test]
fn a_loans_terms_are_coupled() {
    for set in ["leverage.leverage=5,17", "leverage.borrow_apr=0.02,0.08"] {
        let job = sweep("weeth-seamless-17x", &[set]);
        assert!(job.coupled, "{set}: not coupled");
        let points = outcomes(&job);
        let (mut low, mut high) = (0, 0);
        for (a, b) in points[0].iter().zip(&points[1]) {
            assert!(
                a.liquidations == 0 || b.liquidations > 0,
                "{set}: {a:?} vs {b:?}"
            );
            low += usize::from(a.liquidations > 0);
            high += usize::from(b.liquidations > 0);
        }
        assert!(
            low > 0 && high > low,
            "{set}: {low} then {high} liquidated paths"
        );
    }
    let mut source = Source::read(Some(Path::new("renzo-ezeth"))).unwrap();
    source.text = source
        .text
        .lines()
        .map(|l| {
            if l.starts_with("depeg_prob =") {
                format!("{l}\ndepeg_days = 3\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>()
        + "[leverage]\nleverage = 5.0\nliquidation_threshold = 0.9\nliquidation_bonus = 0.05\nborrow_apr = 0.02\noracle = \"market\"\n";
    assert!(source.scenario().unwrap().spec().systematic.is_some());
    let job = sweep_source(source, &["liquid.depeg_prob=0.2,0.6"]);
    assert!(!job.coupled);
}
