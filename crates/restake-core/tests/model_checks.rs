//! The independent checks of MODEL.md §7, through the public API: exact enumeration of a
//! fixed-severity loss distribution, event frequencies, the 0.15%-a-year rule of thumb,
//! closed-form growth without risk, GBM moments, and bit-identical results for any thread
//! count.
//!
//! Statistical tolerances are 4 Monte Carlo standard errors (a false failure has
//! probability about 6e-5 per check), and every seed is fixed, so nothing can flake.

use restake_core::{ContributionKind, Model, Results, RunConfig, Scenario, analyse, run, simulate};

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml(text).unwrap_or_else(|e| panic!("{e}"))
}

fn results(s: &Scenario, paths: u64, seed: u64) -> Results {
    run(
        s,
        &RunConfig {
            paths,
            seed,
            threads: 0,
        },
        &|_| {},
    )
    .unwrap()
}

fn metric(r: &Results, name: &str) -> restake_core::Estimate {
    *r.metric(name).unwrap_or_else(|| panic!("no metric {name}"))
}

fn assert_within(name: &str, estimate: f64, exact: f64, se: f64) {
    assert!(
        (estimate - exact).abs() <= 4.0 * se,
        "{name}: estimate {estimate} vs exact {exact}, 4 se = {}",
        4.0 * se
    );
}

/// Poisson source for the enumeration: intensity a year, and its effect on the state.
struct Source {
    intensity: f64,
    apply: fn(&mut [f64; 5]),
}

/// Pools of the enumeration scenario in ETH: operator A's (X, Y, remainder), then
/// operator B's (X, remainder).
fn value(s: &[f64; 5]) -> f64 {
    s.iter().sum()
}

const ENUMERATION: &str = r#"
name = "enumeration"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
stake_mode = "unique"
[base]
apr_mean = 0.0
slash_prob = 0.01
slash_severity = { dist = "fixed", value = 0.25 }
[protocol]
exploit_prob = 0.005
exploit_severity = { dist = "fixed", value = 0.4 }
[[avs]]
name = "X"
slash_prob = 0.02
slash_severity = { dist = "fixed", value = 0.5 }
incident_prob = 0.01
incident_severity = { dist = "fixed", value = 0.3 }
[[avs]]
name = "Y"
slash_prob = 0.03
slash_severity = { dist = "fixed", value = 0.2 }
[[operator]]
name = "A"
weight = 0.6
fault_prob = 0.01
allocations = { X = 0.3, Y = 0.2 }
[[operator]]
name = "B"
weight = 0.4
allocations = { X = 0.5 }
"#;

/// The exact loss distribution of [`ENUMERATION`] as (loss, probability) atoms, by
/// enumerating the event counts of its 8 independent Poisson sources (events compound
/// multiplicatively, so only the counts matter). Branches below 1e-16 are dropped.
fn exact_atoms() -> Vec<(f64, f64)> {
    let p = |q: f64| -(-q).ln_1p();
    // Pools: [A.X, A.Y, A.rest, B.X, B.rest] at 0.6*0.3, 0.6*0.2, 0.6*0.5, 0.4*0.5, 0.4*0.5
    let sources = [
        Source {
            intensity: p(0.02),
            apply: |s| s[0] *= 0.5,
        }, // (A, X)
        Source {
            intensity: p(0.03),
            apply: |s| s[1] *= 0.8,
        }, // (A, Y)
        Source {
            intensity: p(0.02),
            apply: |s| s[3] *= 0.5,
        }, // (B, X)
        Source {
            intensity: p(0.01), // incident X: one severity for A and B
            apply: |s| {
                s[0] *= 0.7;
                s[3] *= 0.7;
            },
        },
        Source {
            intensity: p(0.01), // fault A: X and Y each with its own severity
            apply: |s| {
                s[0] *= 0.5;
                s[1] *= 0.8;
            },
        },
        Source {
            intensity: p(0.01), // beacon A
            apply: |s| {
                s[0] *= 0.75;
                s[1] *= 0.75;
                s[2] *= 0.75;
            },
        },
        Source {
            intensity: p(0.01), // beacon B
            apply: |s| {
                s[3] *= 0.75;
                s[4] *= 0.75;
            },
        },
        Source {
            intensity: p(0.005), // exploit
            apply: |s| s.iter_mut().for_each(|x| *x *= 0.6),
        },
    ];
    let start = [0.18, 0.12, 0.30, 0.20, 0.20];
    let mut atoms = Vec::new();
    fn walk(sources: &[Source], i: usize, state: [f64; 5], prob: f64, atoms: &mut Vec<(f64, f64)>) {
        if prob < 1e-16 {
            return;
        }
        if i == sources.len() {
            atoms.push((1.0 - value(&state), prob));
            return;
        }
        let lambda = sources[i].intensity;
        let mut s = state;
        let mut pk = (-lambda).exp();
        for k in 0..40 {
            walk(sources, i + 1, s, prob * pk, atoms);
            (sources[i].apply)(&mut s);
            pk *= lambda / f64::from(k + 1);
        }
    }
    walk(&sources, 0, start, 1.0, &mut atoms);
    atoms.sort_by(|a, b| a.0.total_cmp(&b.0));
    atoms
}

/// VaR and ES of a discrete law: VaR the smallest x with F(x) >= alpha; ES the
/// integral of VaR_u over [alpha, 1] / (1 - alpha) (MODEL.md §6).
fn exact_var_es(atoms: &[(f64, f64)], alpha: f64) -> (f64, f64, f64) {
    let total: f64 = atoms.iter().map(|a| a.1).sum();
    let mut cdf = 0.0;
    let mut var = None;
    let mut integral = 0.0;
    let mut jump_distance = f64::INFINITY;
    for &(x, p) in atoms {
        let lo = cdf;
        cdf += p / total;
        jump_distance = jump_distance.min((cdf - alpha).abs());
        if var.is_none() && cdf >= alpha {
            var = Some(x);
        }
        let overlap = (cdf.min(1.0) - lo.max(alpha)).max(0.0);
        integral += x * overlap;
    }
    (var.unwrap(), integral / (1.0 - alpha), jump_distance)
}

#[test]
fn exact_enumeration_of_fixed_severity_losses() {
    let atoms = exact_atoms();
    let mass: f64 = atoms.iter().map(|a| a.1).sum();
    assert!(
        (mass - 1.0).abs() < 1e-12,
        "enumeration lost mass {}",
        1.0 - mass
    );
    let n = 1_000_000u64;
    let r = results(&scenario(ENUMERATION), n, 20_261_121);

    let prob_loss: f64 = atoms.iter().filter(|a| a.0 > 1e-15).map(|a| a.1).sum();
    let e = metric(&r, "prob_loss");
    assert_within("prob_loss", e.value, prob_loss, e.std_error);
    let mean_loss: f64 = atoms.iter().map(|a| a.0 * a.1).sum();
    let e = metric(&r, "mean_net_return");
    assert_within("E[L]", -e.value, mean_loss, e.std_error);

    for (label, alpha) in [("95", 0.95), ("975", 0.975), ("99", 0.99), ("999", 0.999)] {
        let (var, es, jump) = exact_var_es(&atoms, alpha);
        // The level must be clear of a jump of the CDF by many sd of the empirical CDF,
        // or the sample VaR may fall on the neighbouring atom.
        let cdf_sd = (alpha * (1.0 - alpha) / n as f64).sqrt();
        assert!(
            jump > 6.0 * cdf_sd,
            "level {alpha} too close to a jump ({jump})"
        );
        let v = metric(&r, &format!("var_{label}"));
        assert!(
            (v.value - var).abs() < 1e-12 && v.ci_low <= var + 1e-12 && var <= v.ci_high + 1e-12,
            "var_{label}: {v:?} vs exact {var}"
        );
        let s = metric(&r, &format!("es_{label}"));
        assert_within(&format!("es_{label}"), s.value, es, s.std_error);
    }
}

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
    assert_within("P(event A)", row("A").event_probability, 0.1, se(0.1));
    let lambda_v = -(0.8f64).ln();
    let pv = -(-lambda_v * 0.75).exp_m1();
    assert_within(
        "P(event V, vetoed 25%)",
        row("V").event_probability,
        pv,
        se(pv),
    );
}

#[test]
fn one_percent_with_fifteen_percent_penalty_loses_0_1506_percent() {
    // MODEL.md §7: p = 1%/yr, 15% of the whole stake per event: E[L] = 1 - exp(-0.15 lambda).
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
    let e = metric(&r, "expected_slashing_loss_eth");
    assert_within("E[slashing loss]", e.value, exact, e.std_error);
}

#[test]
fn without_risk_every_path_is_the_closed_form() {
    let s = scenario(
        r#"
name = "no-risk"
[position]
principal_eth = 64.0
route = "liquid"
horizon_days = 200
[base]
apr_mean = 0.035
fee = 0.1
[liquid]
reward_fee = 0.1
[[avs]]
name = "A"
fee_apr = 0.004
[[operator]]
name = "a"
weight = 0.25
commission = 0.05
allocations = { A = 0.6 }
[[operator]]
name = "b"
weight = 0.75
commission = 0.1
allocations = { A = 0.2 }
[simulation]
checkpoint_days = 50
"#,
    );
    let model = Model::new(&s);
    let set = simulate(
        &model,
        &RunConfig {
            paths: 10_000,
            seed: 1,
            threads: 2,
        },
        &|_| {},
    )
    .unwrap();
    let t: f64 = 200.0 / 365.0;
    let g = 0.035 * 0.9;
    // Stake: P e^{g T}; fees: sum_k (1 - c_k)(1 - phi_r) f a_k w_k P (e^{g T} - 1) / g.
    let stake = 64.0 * (g * t).exp();
    let fee_rate = 0.9 * 0.004 * 64.0 * (0.95 * 0.6 * 0.25 + 0.9 * 0.2 * 0.75);
    let fees = fee_rate * (g * t).exp_m1() / g;
    let v = stake + fees;
    for o in &set.outcomes {
        assert!(
            ((1.0 + o.net_return) * 64.0 - v).abs() <= 1e-12 * v,
            "{o:?}"
        );
        assert!((o.avs_fee_income_eth - fees).abs() <= 1e-12 * fees);
    }
    // Checkpoints at days 50, 100, 150 and the horizon 200.
    assert_eq!(model.checkpoints_days, vec![50.0, 100.0, 150.0, 200.0]);
    for (c, day) in model.checkpoints_days.iter().enumerate() {
        let tc = day / 365.0;
        let vc = (64.0 * (g * tc).exp() + fee_rate * (g * tc).exp_m1() / g) / 64.0;
        assert!((set.checkpoint_values[c] - vc).abs() <= 1e-12 * vc);
    }
    let r = analyse(&model, &set, &[]);
    assert_eq!(metric(&r, "sd_net_return").value, 0.0);
}

#[test]
fn gbm_token_has_lognormal_moments() {
    // Token incentives only, no base growth: units = net g P T / X0, value = units X(T).
    // E[X(T)] = X0 e^{mu T}; ln X(T) ~ Normal with variance sigma^2 T (MODEL.md §7).
    let s = scenario(
        r#"
name = "gbm"
[position]
principal_eth = 10.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.0
[[token]]
name = "T"
price_eth = 0.002
drift = 0.3
volatility = 0.9
[[incentive]]
token = "T"
apr = 0.05
[[operator]]
name = "op"
weight = 1.0
commission = 0.2
[simulation]
checkpoint_days = 73
"#,
    );
    let model = Model::new(&s);
    let n = 400_000;
    let set = simulate(
        &model,
        &RunConfig {
            paths: n,
            seed: 11,
            threads: 0,
        },
        &|_| {},
    )
    .unwrap();
    let value0 = 0.8 * 0.05 * 10.0; // tokens valued at the start price
    let values: Vec<f64> = set.outcomes.iter().map(|o| o.incentive_value_eth).collect();
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
    assert_within("E[value]", mean, value0 * 0.3f64.exp(), sd / nf.sqrt());
    let logs: Vec<f64> = values.iter().map(|v| (v / value0).ln()).collect();
    let lm = logs.iter().sum::<f64>() / nf;
    let lv = logs.iter().map(|x| (x - lm).powi(2)).sum::<f64>() / (nf - 1.0);
    let sigma2 = 0.81;
    assert_within(
        "E[ln X(T)/X0]",
        lm,
        0.3 - 0.5 * sigma2,
        (sigma2 / nf).sqrt(),
    );
    // Var of the sample variance of a normal: 2 sigma^4 / (n - 1).
    assert_within(
        "Var[ln X(T)]",
        lv,
        sigma2,
        sigma2 * (2.0 / (nf - 1.0)).sqrt(),
    );
}

#[test]
fn identical_for_any_thread_count() {
    let s = scenario(ENUMERATION);
    let model = Model::new(&s);
    // Not a multiple of the batch size, so the last batch is partial.
    let config = |threads| RunConfig {
        paths: 50_001,
        seed: 99,
        threads,
    };
    let one = simulate(&model, &config(1), &|_| {}).unwrap();
    let two = simulate(&model, &config(2), &|_| {}).unwrap();
    let eight = simulate(&model, &config(8), &|_| {}).unwrap();
    assert!(one == two && two == eight);
    assert_eq!(
        analyse(&model, &one, &[0.1]),
        analyse(&model, &eight, &[0.1])
    );
    let other_seed = simulate(
        &model,
        &RunConfig {
            seed: 100,
            ..config(2)
        },
        &|_| {},
    )
    .unwrap();
    assert!(one != other_seed);
}

#[test]
fn shared_stake_slashes_the_allocated_share_of_the_whole_stake() {
    // Shared mode (MODEL.md §2): X slashes up to 1.0 x S with severity 0.5, Y up to
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
    let e = metric(&r, "mean_net_return");
    assert_within("E[R] shared", e.value, exact, e.std_error);
}

#[test]
fn accounting_identity_and_contributions_add_up() {
    // MODEL.md §5–§6 on the bundled weETH preset: every path's value is principal plus
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
    assert!((total + metric(&r, "mean_net_return").value * p).abs() <= 1e-9 * p);
    for (j, label) in ["95", "975", "99", "999"].iter().enumerate() {
        let es = metric(&r, &format!("es_{label}")).value * p;
        let sum: f64 = r
            .contributions
            .iter()
            .map(|c| c.es_contribution_eth[j])
            .sum();
        assert!((sum - es).abs() <= 1e-9 * p, "es_{label}: {sum} vs {es}");
        let var = metric(&r, &format!("var_{label}")).value;
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
    let e = metric(&r, "expected_slashing_loss_eth");
    assert_within("E[slashing loss] with growth", e.value, exact, e.std_error);
}

#[test]
fn fan_chart_memory_is_bounded() {
    let s = scenario(
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
    );
    let err = run(
        &s,
        &RunConfig {
            paths: 1_000_000,
            seed: 1,
            threads: 1,
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("simulation.checkpoint_days"),
        "{err}"
    );
}
