//! The systematic factor and stress tests (`docs/model.md#systematic-factor`,
//! `docs/model.md#stress-tests`), read from the engine's paths:
//! - a source's marginal frequency stays `p` with a factor, and two sources' joint
//!   frequency is the bivariate normal law `Phi_2(Phi^-1(p_i), Phi^-1(p_j);
//!   sqrt(rho_i rho_j))`, computed by Plackett's identity, not by the Vasicek formula;
//! - with the factor held at `z`, each source's frequency is `p(z)`;
//! - a forced event's arithmetic is exact, with no randomness left;
//! - "k of N" picks follow the hypergeometric law exactly;
//! - a stress runs on the base's random numbers: forced slashings on top of the random
//!   ones never leave a path higher.
//!
//! Frequencies are compared within 4 binomial standard errors; seeds are fixed.

use restake_core::engine::PathSet;
use restake_core::{ContributionKind, Model, RunConfig, Scenario, simulate};
use restake_validation::harness::scenario;
use restake_validation::oracle::bivariate_normal_cdf;
use restake_validation::reference::vasicek;
use restake_validation::stat::{assert_within, chi_square};
use statrs::distribution::{ContinuousCDF, Normal};

const PATHS: u64 = 400_000;

/// One operator on AVSs A, B and C (unique stake, 30% each: 27 ETH pools), incidents with fixed
/// severities, a protocol exploit, no income; one year. `extra` is appended.
fn three_avs(extra: &str) -> Scenario {
    scenario(&format!(
        r#"
name = "factor"
[position]
principal_eth = 90.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.0
[protocol]
exploit_prob = 0.1
exploit_severity = {{ dist = "fixed", value = 0.1 }}
[[avs]]
name = "A"
incident_prob = 0.05
incident_severity = {{ dist = "fixed", value = 0.2 }}
slash_severity = {{ dist = "fixed", value = 0.3 }}
[[avs]]
name = "B"
incident_prob = 0.02
incident_severity = {{ dist = "fixed", value = 0.4 }}
[[avs]]
name = "C"
incident_prob = 0.08
incident_severity = {{ dist = "fixed", value = 0.5 }}
[[operator]]
name = "op"
weight = 1.0
allocations = {{ A = 0.3, B = 0.3, C = 0.3 }}
{extra}
"#
    ))
}

fn run(model: &Model, seed: u64) -> PathSet {
    let config = RunConfig {
        paths: PATHS,
        seed,
        threads: 0,
    };
    simulate(model, &config, &|_| {}).unwrap()
}

/// Per path, whether each contribution row was hit (`rows.len()` flags a path).
fn hit_rows(model: &Model, set: &PathSet) -> Vec<Vec<bool>> {
    let mut hits = vec![vec![false; model.rows.len()]; set.outcomes.len()];
    for r in &set.row_losses {
        hits[r.path as usize][r.row as usize] = true;
    }
    hits
}

/// The row of `kind` for `source`.
fn row(model: &Model, kind: ContributionKind, source: &str) -> usize {
    model
        .rows
        .iter()
        .position(|r| r.kind == kind && r.source == source)
        .unwrap()
}

/// Checks a frequency against `p` within 4 binomial standard errors.
fn assert_frequency(what: &str, count: usize, p: f64) {
    let n = PATHS as f64;
    let share = count as f64 / n;
    println!("{what}: {share} against {p}");
    assert_within(what, share, p, (p * (1.0 - p) / n).sqrt(), 0.0);
}

#[test]
fn marginals_stay_p_and_pairs_follow_the_bivariate_normal_law() {
    let (rho_incident, rho_exploit): (f64, f64) = (0.4, 0.2);
    let s = three_avs(&format!(
        "[systematic]\nrho = 0.0\navs_incident = {rho_incident}\nprotocol_exploit = {rho_exploit}\n"
    ));
    let model = Model::new(&s);
    let hits = hit_rows(&model, &run(&model, 11));
    let (a, c) = (
        row(&model, ContributionKind::AvsIncident, "A"),
        row(&model, ContributionKind::AvsIncident, "C"),
    );
    let exploit = row(&model, ContributionKind::ProtocolExploit, "protocol");
    let count = |f: &dyn Fn(&[bool]) -> bool| hits.iter().filter(|h| f(h)).count();
    for (name, r, p) in [("A", a, 0.05), ("C", c, 0.08), ("exploit", exploit, 0.1)] {
        assert_frequency(&format!("P({name})"), count(&|h| h[r]), p);
    }
    let q = |p: f64| Normal::standard().inverse_cdf(p);
    for (name, (r1, p1, rho1), (r2, p2, rho2)) in [
        ("A and C", (a, 0.05, rho_incident), (c, 0.08, rho_incident)),
        (
            "A and exploit",
            (a, 0.05, rho_incident),
            (exploit, 0.1, rho_exploit),
        ),
    ] {
        let joint = bivariate_normal_cdf(q(p1), q(p2), (rho1 * rho2).sqrt());
        let observed = count(&|h| h[r1] && h[r2]);
        assert_frequency(&format!("P({name})"), observed, joint);
        // Power: independence is far outside the band.
        let se = (joint / PATHS as f64).sqrt();
        assert!(
            (joint - p1 * p2) > 8.0 * se,
            "{name}: the factor hardly moves the joint law ({joint} vs {})",
            p1 * p2
        );
    }
    // Without [systematic], the same pair is independent.
    let plain = Model::new(&three_avs(""));
    let hits = hit_rows(&plain, &run(&plain, 11));
    let both = hits.iter().filter(|h| h[a] && h[c]).count();
    assert_frequency("P(A and C), independent", both, 0.05 * 0.08);
}

#[test]
fn with_the_factor_held_each_source_has_its_conditional_probability() {
    let rho = 0.3;
    for z in [-1.0, 2.33, 3.09] {
        let s = three_avs(&format!(
            "[systematic]\nrho = {rho}\n[[stress]]\nname = \"z\"\nfactor_z = {z}\n"
        ));
        let model = Model::for_stress(&s, 0);
        let hits = hit_rows(&model, &run(&model, 12));
        for (name, kind, p) in [
            ("A", ContributionKind::AvsIncident, 0.05),
            ("B", ContributionKind::AvsIncident, 0.02),
            ("protocol", ContributionKind::ProtocolExploit, 0.1),
        ] {
            let r = row(&model, kind, name);
            let count = hits.iter().filter(|h| h[r]).count();
            assert_frequency(&format!("P({name} | z = {z})"), count, vasicek(p, rho, z));
        }
    }
}

/// Forced events with `random = false`: every path ends at the value computed here by
/// hand, to rounding.
#[test]
fn a_forced_events_arithmetic_is_exact() {
    let g: f64 = 0.03 * 0.9; // base growth a year
    let grow = |days: f64| (g * days / 365.0).exp();
    let plain = 90.0 * grow(365.0);
    // (stress events, expected V at the horizon, expected slashing loss, plain-staking
    // value)
    let cases: Vec<(&str, f64, f64, f64)> = vec![
        (
            // An incident of A at day 73: its pool (27 ETH) loses 20%.
            r#"{ kind = "avs_incident", avs = "A", day = 73 }"#,
            (90.0 - 5.4) * grow(365.0),
            5.4 * grow(73.0),
            plain,
        ),
        (
            // An operator fault at day 0 with a given 50%: the pools of A, B, C halve.
            r#"{ kind = "operator_fault", operator = "op", day = 0, severity = { dist = "fixed", value = 0.5 } }"#,
            (90.0 - 40.5) * grow(365.0),
            40.5,
            plain,
        ),
        (
            // A slashes op at day 200 with its own law (a fixed 30% of its 27 ETH
            // pool), then the exploit's own 10% at day 300 on everything left.
            r#"{ kind = "avs_slashing", avs = "A", operator = "op", day = 200 }, { kind = "protocol_exploit", day = 300 }"#,
            (90.0 - 8.1) * 0.9 * grow(365.0),
            8.1 * grow(200.0) + 0.1 * 81.9 * grow(300.0),
            plain,
        ),
        (
            // A beacon-chain slashing of 1% at day 50 cuts the plain benchmark too.
            r#"{ kind = "beacon", operator = "op", day = 50, severity = { dist = "fixed", value = 0.01 } }"#,
            0.99 * 90.0 * grow(365.0),
            0.9 * grow(50.0),
            0.99 * plain,
        ),
    ];
    for (events, value, loss, plain_value) in cases {
        let s = three_avs(&format!(
            "[[stress]]\nname = \"forced\"\nrandom = false\nevents = [{events}]\n"
        ))
        .spec()
        .clone();
        let mut spec = s;
        spec.base.apr_mean = 0.03;
        spec.base.fee = 0.1;
        let s = Scenario::try_from(spec).unwrap();
        let model = Model::for_stress(&s, 0);
        let config = RunConfig {
            paths: 1000,
            seed: 3,
            threads: 0,
        };
        for o in simulate(&model, &config, &|_| {}).unwrap().outcomes {
            let v = (o.net_return + 1.0) * 90.0;
            assert!(
                (v - value).abs() < 1e-10,
                "{events}: V = {v}, expected {value}"
            );
            assert!(
                (o.slashing_loss_eth - loss).abs() < 1e-10,
                "{events}: loss {} expected {loss}",
                o.slashing_loss_eth
            );
            let excess = (value - plain_value) / 90.0;
            assert!((o.excess_return - excess).abs() < 1e-12, "{events}: excess");
        }
    }
}

#[test]
fn k_of_n_picks_follow_the_hypergeometric_law() {
    // 2 of the 3 AVSs on every path, no random events: each pair has probability 1/3,
    // so A is hit on 2/3 of the paths, and exactly two incidents happen on each.
    let s = three_avs(
        "[[stress]]\nname = \"two\"\nrandom = false\n[[stress.pick]]\nkind = \"avs_incident\"\ncount = 2\n",
    );
    let model = Model::for_stress(&s, 0);
    let hits = hit_rows(&model, &run(&model, 13));
    let rows: Vec<usize> = ["A", "B", "C"]
        .iter()
        .map(|n| row(&model, ContributionKind::AvsIncident, n))
        .collect();
    let mut pairs = [0u64; 3]; // {A,B}, {A,C}, {B,C}
    for h in &hits {
        let picked: Vec<bool> = rows.iter().map(|r| h[*r]).collect();
        assert_eq!(picked.iter().filter(|x| **x).count(), 2, "exactly 2 of 3");
        let index = match (picked[0], picked[1], picked[2]) {
            (true, true, false) => 0,
            (true, false, true) => 1,
            _ => 2,
        };
        pairs[index] += 1;
    }
    chi_square(&pairs, &[1.0 / 3.0; 3]).assert_accepts("pairs of 2 of 3");
    // 3 of 5 among a group: how many of a given 2 are picked is hypergeometric
    // (N = 5, K = 2, n = 3): P(0) = 1/10, P(1) = 6/10, P(2) = 3/10.
    let names = ["A", "B", "C", "D", "E", "F"];
    let avs: String = names
        .iter()
        .map(|n| {
            format!(
                "[[avs]]\nname = \"{n}\"\nincident_severity = {{ dist = \"fixed\", value = 0.1 }}\n"
            )
        })
        .collect();
    let allocations: Vec<String> = names.iter().map(|n| format!("{n} = 0.1")).collect();
    let five = scenario(&format!(
        r#"
name = "five"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.0
{avs}[[operator]]
name = "op"
weight = 1.0
allocations = {{ {} }}
[[stress]]
name = "three"
[[stress.pick]]
kind = "avs_incident"
among = ["A", "B", "C", "D", "E"]
count = 3
"#,
        allocations.join(", ")
    ));
    let model = Model::for_stress(&five, 0);
    let hits = hit_rows(&model, &run(&model, 14));
    let r = |n: &str| row(&model, ContributionKind::AvsIncident, n);
    let mut counts = [0u64; 3];
    for h in &hits {
        assert!(!h[r("F")], "F is outside the group");
        let group = ["A", "B", "C", "D", "E"].iter().filter(|n| h[r(n)]).count();
        assert_eq!(group, 3);
        counts[usize::from(h[r("A")]) + usize::from(h[r("B")])] += 1;
    }
    chi_square(&counts, &[0.1, 0.6, 0.3]).assert_accepts("hypergeometric (5, 2, 3)");
}

#[test]
fn a_stress_runs_on_the_base_scenarios_random_numbers() {
    for systematic in ["", "[systematic]\nrho = 0.2\n"] {
        let s = three_avs(&format!(
            "{systematic}[[stress]]\nname = \"extra\"\nevents = [{{ kind = \"avs_incident\", avs = \"B\" }}]\n"
        ));
        let base = run(&Model::new(&s), 21);
        let stressed = run(&Model::for_stress(&s, 0), 21);
        let mut lower = 0;
        for (b, x) in base.outcomes.iter().zip(&stressed.outcomes) {
            assert!(
                x.net_return <= b.net_return + 1e-12,
                "a path ends higher with a forced slashing: {b:?} vs {x:?}"
            );
            lower += usize::from(x.net_return < b.net_return);
        }
        // Every path is hit by B's incident (27 ETH x 40%).
        assert_eq!(lower, PATHS as usize, "{systematic}");
        // Paths without any random event lose exactly the forced 10.8 ETH.
        let quiet = base
            .outcomes
            .iter()
            .zip(&stressed.outcomes)
            .find(|(b, _)| b.slashing_loss_eth == 0.0)
            .unwrap();
        assert!((quiet.1.slashing_loss_eth - 10.8).abs() < 1e-12);
    }
}
