//! Further checks of docs/model.md#independent-checks through the public API: event frequencies with vetoes,
//! the 0.15%-a-year rule of thumb, shared-stake slashing in closed form, the accounting
//! identity and contributions adding up, event-time valuation, and the fan chart's memory
//! bound. (The oracles of `oracles.rs` cover enumeration, mixtures and closed forms.)
//!
//! Statistical tolerances are 4 Monte Carlo standard errors (a false failure has
//! probability about 6e-5 per check), and every seed is fixed, so nothing can flake.

use restake_core::stats::MetricId;
use restake_core::{ContributionKind, Model, RunConfig, Scenario, analyse, simulate};
use restake_validation::harness::{metric, results, scenario};
use restake_validation::stat::assert_within;

#[test]
fn share_of_paths_with_an_event_is_p() {
    // One operator–AVS source with p = 0.1 over one year, and a veto of 0.25 on a second
    // AVS: the share of paths slashed by it is 1 - exp(-lambda (1 - v)).
    let s = scenario(
        r#"
name = "frequency"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.0
[[avs]]
name = "A"
slash_prob = 0.1
slash_severity = { dist = "uniform", min = 0.1, max = 0.2 }
[[avs]]
name = "V"
slash_prob = 0.2
slash_severity = { dist = "fixed", value = 0.1 }
veto_prob = 0.25
[[operator]]
name = "op"
weight = 1.0
allocations = { A = 0.5, V = 0.5 }
"#,
    );
    let n = 1_000_000;
    let r = results(&s, n, 7);
    let row = |name: &str| {
        r.contributions
            .iter()
            .find(|c| {
                c.row.source == name && c.row.kind == restake_core::ContributionKind::AvsSlashing
            })
            .unwrap()
    };
    let se = |p: f64| (p * (1.0 - p) / n as f64).sqrt();
    assert_within("P(event A)", row("A").event_probability, 0.1, se(0.1), 0.0);
    let lambda_v = -(0.8f64).ln();
    let pv = -(-lambda_v * 0.75).exp_m1();
    assert_within(
        "P(event V, vetoed 25%)",
        row("V").event_probability,
        pv,
        se(pv),
        0.0,
    );
}

#[test]
fn one_percent_with_fifteen_percent_penalty_loses_0_1506_percent() {
    // docs/model.md#independent-checks: p = 1%/yr, 15% of the whole stake per event: E[L] = 1 - exp(-0.15 lambda).
    let s = scenario(
        r#"
name = "rule-of-thumb"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.0
[protocol]
exploit_prob = 0.01
exploit_severity = { dist = "fixed", value = 0.15 }
[[operator]]
name = "op"
weight = 1.0
"#,
    );
    let exact = -(-0.15 * -(0.99f64).ln()).exp_m1();
    assert!((exact - 0.001506).abs() < 5e-7);
    let r = results(&s, 1_000_000, 3);
    let e = metric(&r, MetricId::ExpectedSlashingLossEth);
    assert_within("E[slashing loss]", e.value, exact, e.std_error, 0.0);
}

#[test]
fn shared_stake_slashes_the_allocated_share_of_the_whole_stake() {
    // Shared mode (`docs/model.md#a-path`): X slashes up to 1.0 x S with severity 0.5, Y up to
    // 0.5 x S with severity 0.2, so each event multiplies S by 0.5 or 0.9, and
    // E[V/P] = exp(-lambda_X 0.5) exp(-lambda_Y 0.1) (E[c^N] = exp(-lambda (1 - c))).
    let s = scenario(
        r#"
name = "shared"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
stake_mode = "shared"
[base]
apr_mean = 0.0
[[avs]]
name = "X"
slash_prob = 0.2
slash_severity = { dist = "fixed", value = 0.5 }
[[avs]]
name = "Y"
slash_prob = 0.3
slash_severity = { dist = "fixed", value = 0.2 }
[[operator]]
name = "op"
weight = 1.0
allocations = { X = 1.0, Y = 0.5 }
"#,
    );
    let r = results(&s, 1_000_000, 5);
    let (lx, ly) = (-(0.8f64).ln(), -(0.7f64).ln());
    let exact = (-lx * 0.5 - ly * 0.1).exp() - 1.0;
    let e = metric(&r, MetricId::MeanNetReturn);
    assert_within("E[R] shared", e.value, exact, e.std_error, 0.0);
}

#[test]
fn accounting_identity_and_contributions_add_up() {
    // docs/model.md#a-path and #statistics on the bundled weETH preset: every path's value is principal plus
    // income minus losses; the per-row slashing losses sum to the path's slashing loss;
    // the contributions add up to E[L] x P and to ES x P at every level.
    let s = scenario(include_str!("../../../data/scenarios/etherfi-weeth.toml"));
    let model = Model::new(&s);
    let set = simulate(
        &model,
        &RunConfig {
            paths: 100_000,
            seed: 8,
            threads: 0,
        },
        &|_| {},
    )
    .unwrap();
    let p = model.principal_eth;
    // Per path: the source rows, the AVS breakdown and the operator breakdown.
    let n = set.outcomes.len();
    let (mut sources, mut by_avs, mut by_operator, mut not_via_avs) =
        (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for e in &set.row_losses {
        let (i, l) = (e.path as usize, e.loss_eth);
        match model.rows[e.row as usize].kind {
            ContributionKind::Avs => by_avs[i] += l,
            ContributionKind::Operator => by_operator[i] += l,
            ContributionKind::Beacon | ContributionKind::ProtocolExploit => {
                sources[i] += l;
                not_via_avs[i] += l;
            }
            _ => sources[i] += l,
        }
    }
    for (i, o) in set.outcomes.iter().enumerate() {
        let v = (1.0 + o.net_return) * p;
        let identity = p + o.base_income_eth + o.avs_fee_income_eth + o.incentive_value_eth
            - o.slashing_loss_eth
            - o.depeg_loss_eth;
        assert!((v - identity).abs() <= 1e-9 * p, "{o:?}");
        let slash = o.slashing_loss_eth;
        assert!((sources[i] - slash).abs() <= 1e-12 * p);
        assert!((by_operator[i] - slash).abs() <= 1e-12 * p);
        assert!((by_avs[i] + not_via_avs[i] - slash).abs() <= 1e-12 * p);
    }
    let r = analyse(&model, &set, &[]);
    let total: f64 = r.contributions.iter().map(|c| c.expected_loss_eth).sum();
    assert!((total + metric(&r, MetricId::MeanNetReturn).value * p).abs() <= 1e-9 * p);
    for (j, label) in ["95", "975", "99", "999"].iter().enumerate() {
        let es = metric(&r, MetricId::Es(restake_core::stats::TAIL_LEVELS[j])).value * p;
        let sum: f64 = r
            .contributions
            .iter()
            .map(|c| c.es_contribution_eth[j])
            .sum();
        assert!((sum - es).abs() <= 1e-9 * p, "es_{label}: {sum} vs {es}");
        let var = metric(&r, MetricId::Var(restake_core::stats::TAIL_LEVELS[j])).value;
        assert!(es / p >= var, "ES {es} below VaR {var} at {label}");
        // Operators' rows with the depeg and income rows add up to ES x P as well.
        let by_operator: f64 = r
            .operator_contributions
            .iter()
            .chain(r.contributions.iter().filter(|c| {
                matches!(
                    c.row.kind,
                    ContributionKind::Depeg | ContributionKind::Income
                )
            }))
            .map(|c| c.es_contribution_eth[j])
            .sum();
        assert!(
            (by_operator - es).abs() <= 1e-9 * p,
            "es_{label} by operator"
        );
    }
}

#[test]
fn event_times_are_uniform_and_losses_are_valued_at_the_event() {
    // One whole-stake source (intensity lambda, severity s) on a stake growing at g:
    // E[S(t)] = P e^{(g - lambda s) t}, so the expected loss over [0, T] is
    // lambda s P (e^{(g - lambda s) T} - 1) / (g - lambda s). This holds only if event
    // times are uniform and each loss is the stake destroyed at the event's time.
    let s = scenario(
        r#"
name = "timing"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 730
[base]
apr_mean = 0.5
[protocol]
exploit_prob = 0.3
exploit_severity = { dist = "fixed", value = 0.2 }
[[operator]]
name = "op"
weight = 1.0
"#,
    );
    let lambda = -(0.7f64).ln();
    let (g, sev, t) = (0.5, 0.2, 2.0);
    let k = g - lambda * sev;
    let exact = lambda * sev * (k * t).exp_m1() / k;
    let r = results(&s, 1_000_000, 17);
    let e = metric(&r, MetricId::ExpectedSlashingLossEth);
    assert_within(
        "E[slashing loss] with growth",
        e.value,
        exact,
        e.std_error,
        0.0,
    );
}

#[test]
fn fan_chart_memory_is_bounded() {
    // 3,650 checkpoints would keep as many fan-chart sketches: refused by the scenario's
    // checks (so by `validate` too), before any run.
    let err = Scenario::from_toml(
        r#"
name = "many-checkpoints"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 3650
[base]
apr_mean = 0.03
[[operator]]
name = "op"
weight = 1.0
[simulation]
checkpoint_days = 1
"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("simulation.checkpoint_days") && err.contains("at most 400"),
        "{err}"
    );
}
