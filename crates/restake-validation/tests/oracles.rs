//! Exact and semi-analytic oracles: the engine's outputs, read through the public library
//! API, against values computed here independently of it. Tolerances are 4 Monte Carlo
//! standard errors of the engine's estimate (plus a stated bound on any truncation of
//! the exact value); seeds are fixed. Run with `--nocapture` to see each comparison.

use restake_core::stats::MetricId;
use restake_core::{Model, RunConfig, analyse, simulate};
use restake_validation::harness::{metric, results, scenario};
use restake_validation::oracle::{
    ENUMERATION_SCENARIO, LOGNORMAL_SCENARIO, LognormalReturn, Reported, check_atoms,
    check_enumeration, enumeration_atoms, enumeration_factor_atoms, enumeration_factor_scenario,
};
use restake_validation::stat::assert_within;
use statrs::distribution::{Beta, Continuous, ContinuousCDF};

const PATHS: u64 = 1_000_000;

/// Checks that the exact CDF `cdf` at an estimated `level`-quantile `q` is within
/// 4 binomial standard errors of `level` (the empirical quantile's CDF
/// value is asymptotically Normal(level, level (1 - level) / n)), plus `slack`.
fn assert_quantile(what: &str, q: f64, level: f64, cdf: &dyn Fn(f64) -> f64, slack: f64) {
    let se = (level * (1.0 - level) / PATHS as f64).sqrt();
    println!("{what}: engine {q}, exact CDF there {}", cdf(q));
    assert_within(what, cdf(q), level, se, slack);
}

/// A summary metric of `r` by its `summary.csv` name, as the oracle reads it.
fn reported(r: &restake_core::Results, name: &str) -> Reported {
    let e = r
        .summary
        .iter()
        .find(|m| m.id.name() == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
        .estimate;
    Reported {
        value: e.value,
        std_error: e.std_error,
        ci_low: e.ci_low,
        ci_high: e.ci_high,
    }
}

#[test]
fn fixed_severities_match_the_exact_enumeration() {
    let r = results(&scenario(ENUMERATION_SCENARIO), PATHS, 20_261_121);
    let lines = check_enumeration(PATHS, &|name| reported(&r, name));
    println!("{}", lines.join("\n"));
}

/// With a systematic factor on three kinds of sources the loss law is the
/// enumeration given `Z` mixed over `Z`; the sources' correlation moves it visibly from
/// the independent one (checked here, so that the test can tell them apart).
#[test]
fn fixed_severities_with_a_factor_match_the_enumeration_mixed_over_the_factor() {
    let atoms = enumeration_factor_atoms();
    let r = results(&scenario(&enumeration_factor_scenario()), PATHS, 20_261_202);
    let lines = check_atoms(&atoms, 1e-9, PATHS, &|name| reported(&r, name));
    println!("{}", lines.join("\n"));
    // The ES 99 of the independent law is outside the factor run's interval.
    let independent = restake_validation::oracle::discrete_var_es(&enumeration_atoms(), 0.99).1;
    let es = reported(&r, "es_99");
    assert!(
        (independent - es.value).abs() > 6.0 * es.std_error,
        "the factor does not move ES 99: {independent} vs {es:?}"
    );
}

/// Composite Simpson's rule of `f` over `[a, b]` with `m` (even) intervals.
fn simpson(f: &dyn Fn(f64) -> f64, a: f64, b: f64, m: usize) -> f64 {
    let h = (b - a) / m as f64;
    let inner: f64 = (1..m)
        .map(|i| f(a + h * i as f64) * if i % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    (f(a) + f(b) + inner) * h / 3.0
}

/// `P(1 - prod_{i <= n} (1 - s_i) <= x)` for i.i.d. `s_i ~ law`: `F_0 = 1` and
/// `F_n(x) = integral_0^x f(s) F_{n-1}(1 - (1 - x) / (1 - s)) ds` (condition on the first
/// severity), by Simpson's rule.
fn compound_cdf(law: &Beta, n: usize, x: f64) -> f64 {
    match n {
        0 => 1.0,
        1 => law.cdf(x),
        _ => simpson(
            &|s| law.pdf(s) * compound_cdf(law, n - 1, 1.0 - (1.0 - x) / (1.0 - s)),
            0.0,
            x,
            if n == 2 { 400 } else { 200 },
        ),
    }
}

#[test]
fn beta_severity_matches_the_poisson_beta_mixture() {
    // One exploit source on the whole stake, p = 0.2 a year, severity beta(2, 5), no
    // income: L = 1 - prod (1 - s_i) over N ~ Poisson(lambda) events, and
    // P(L <= x) = sum_n P(N = n) F_n(x). The series stops at n = 3; P(N >= 4) bounds
    // what it leaves out.
    let s = scenario(
        r#"
name = "poisson-beta"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.0
[protocol]
exploit_prob = 0.2
exploit_severity = { dist = "beta", alpha = 2.0, beta = 5.0 }
[[operator]]
name = "op"
weight = 1.0
[report]
loss_thresholds = [0.05, 0.1, 0.2, 0.3, 0.5]
"#,
    );
    let lambda = -(0.8f64).ln();
    let law = Beta::new(2.0, 5.0).unwrap();
    let pn = |n: i32| (-lambda).exp() * lambda.powi(n) / (1..=n).map(f64::from).product::<f64>();
    let truncation = 1.0 - (0..=3).map(pn).sum::<f64>();
    assert!(truncation < 2e-4);
    let slack = truncation + 1e-7; // the series' tail and the quadrature
    let cdf = |x: f64| {
        if x < 0.0 {
            0.0
        } else {
            (0..=3)
                .map(|n| pn(n) * compound_cdf(&law, n as usize, x))
                .sum()
        }
    };
    let r = results(&s, PATHS, 31);
    for x in [0.05, 0.1, 0.2, 0.3, 0.5] {
        let e = metric(&r, MetricId::ProbLossGt(x));
        let exact = 1.0 - cdf(x);
        println!(
            "P(L > {x}): engine {} ± {} [{}, {}], exact {exact}",
            e.value, e.std_error, e.ci_low, e.ci_high
        );
        assert_within(&format!("P(L > {x})"), e.value, exact, e.std_error, slack);
    }
    for (label, level) in [("95", 0.95), ("975", 0.975), ("99", 0.99), ("999", 0.999)] {
        let v = metric(&r, MetricId::Var((level * 10_000.0_f64).round() as u32));
        assert_quantile(&format!("var_{label}"), v.value, level, &cdf, slack);
    }
}

#[test]
fn token_incentive_alone_gives_a_lognormal_return() {
    let law = LognormalReturn::default();
    let r = results(&scenario(LOGNORMAL_SCENARIO), PATHS, 41);
    let e = metric(&r, MetricId::MeanNetReturn);
    println!(
        "mean_net_return: engine {} ± {}, exact {}",
        e.value,
        e.std_error,
        law.mean()
    );
    assert_within("mean_net_return", e.value, law.mean(), e.std_error, 0.0);
    let cdf = |x: f64| law.cdf(x);
    for q in &r.quantiles {
        assert_quantile(
            &format!("quantile {}", q.probability),
            q.net_return,
            q.probability,
            &cdf,
            0.0,
        );
    }
    // VaR of the loss is minus the (1 - alpha)-quantile of the return.
    for (label, alpha) in [("95", 0.95), ("975", 0.975), ("99", 0.99), ("999", 0.999)] {
        let myriad = (alpha * 10_000.0_f64).round() as u32;
        let v = metric(&r, MetricId::Var(myriad));
        assert_quantile(&format!("var_{label}"), -v.value, 1.0 - alpha, &cdf, 0.0);
        let e = metric(&r, MetricId::Es(myriad));
        let es = law.es(alpha);
        println!(
            "es_{label}: engine {} ± {}, exact {es}",
            e.value, e.std_error
        );
        assert_within(&format!("es_{label}"), e.value, es, e.std_error, 0.0);
    }
}

/// Probability of `h` non-vetoed hits on one AVS given `m` operator faults: its own
/// slashing requests, thinned by the veto, are Poisson(`lambda (1 - v)`); each fault
/// makes one request, kept with probability `1 - v`: Binomial(`m`, `1 - v`). Their sum.
fn hits_pmf(lambda: f64, v: f64, m: usize, max_hits: usize) -> Vec<f64> {
    let own_mean = lambda * (1.0 - v);
    let mut own = vec![(-own_mean).exp()];
    for h in 1..=max_hits {
        own.push(own[h - 1] * own_mean / h as f64);
    }
    let mut binom = vec![0.0; m + 1];
    for (j, b) in binom.iter_mut().enumerate() {
        let choose: f64 = (0..j).map(|i| (m - i) as f64 / (i + 1) as f64).product();
        *b = choose * (1.0 - v).powi(j as i32) * v.powi((m - j) as i32);
    }
    (0..=max_hits)
        .map(|h| (0..=h.min(m)).map(|j| binom[j] * own[h - j]).sum())
        .collect()
}

#[test]
fn operator_fault_across_avss_matches_conditioning_on_the_fault() {
    // One operator in unique-stake mode with X = 0.4, Y = 0.3, Z = 0.2 of its stake;
    // own slashing of X (p 0.05) and Y (p 0.03, veto 0.25); Z is reached only by the
    // operator's fault (p 0.1), which makes one request to each AVS. Fixed severities
    // 0.5, 0.3 and 1; no income. Given the fault count m, the hits H_i of the three AVSs
    // are independent, and L = sum_i a_i (1 - (1 - s_i)^{H_i}). So
    // P(L > x) = sum_m P(F = m) P(L > x | F = m).
    let s = scenario(
        r#"
name = "fault"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
stake_mode = "unique"
[base]
apr_mean = 0.0
[[avs]]
name = "X"
slash_prob = 0.05
slash_severity = { dist = "fixed", value = 0.5 }
[[avs]]
name = "Y"
slash_prob = 0.03
slash_severity = { dist = "fixed", value = 0.3 }
veto_prob = 0.25
[[avs]]
name = "Z"
slash_severity = { dist = "fixed", value = 1.0 }
[[operator]]
name = "op"
weight = 1.0
fault_prob = 0.1
allocations = { X = 0.4, Y = 0.3, Z = 0.2 }
[report]
loss_thresholds = [0.1, 0.17, 0.26, 0.33, 0.52]
"#,
    );
    let lambda = |p: f64| -(-p).ln_1p();
    let avs = [
        (lambda(0.05), 0.0, 0.4, 0.5),
        (lambda(0.03), 0.25, 0.3, 0.3),
        (0.0, 0.0, 0.2, 1.0),
    ];
    let lambda_f = lambda(0.1);
    const MAX: usize = 12; // counts beyond have probability < 1e-12 here
    let mut atoms: Vec<(f64, f64)> = Vec::new();
    let mut pf = (-lambda_f).exp();
    for m in 0..=MAX {
        let pmfs: Vec<Vec<f64>> = avs
            .iter()
            .map(|&(l, v, _, _)| hits_pmf(l, v, m, MAX))
            .collect();
        for hx in 0..=MAX {
            for hy in 0..=MAX {
                for hz in 0..=MAX {
                    let p = pf * pmfs[0][hx] * pmfs[1][hy] * pmfs[2][hz];
                    let loss: f64 = [hx, hy, hz]
                        .iter()
                        .zip(&avs)
                        .map(|(&h, &(_, _, a, sev))| a * (1.0 - (1.0f64 - sev).powi(h as i32)))
                        .sum();
                    atoms.push((loss, p));
                }
            }
        }
        pf *= lambda_f / (m + 1) as f64;
    }
    let mass: f64 = atoms.iter().map(|a| a.1).sum();
    assert!((mass - 1.0).abs() < 1e-10, "lost mass {}", 1.0 - mass);

    let r = results(&s, PATHS, 51);
    for x in [0.1, 0.17, 0.26, 0.33, 0.52] {
        // No atom may sit at a threshold, or rounding would decide on which side it falls.
        let gap = atoms
            .iter()
            .filter(|a| a.1 > 1e-12)
            .map(|a| (a.0 - x).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(gap > 1e-6, "an atom sits at {x}");
        let exact: f64 = atoms.iter().filter(|a| a.0 > x).map(|a| a.1).sum();
        let e = metric(&r, MetricId::ProbLossGt(x));
        println!(
            "P(L > {x}): engine {} ± {} [{}, {}], exact {exact}",
            e.value, e.std_error, e.ci_low, e.ci_high
        );
        assert_within(&format!("P(L > {x})"), e.value, exact, e.std_error, 0.0);
    }
    let exact_mean: f64 = atoms.iter().map(|a| a.0 * a.1).sum();
    let e = metric(&r, MetricId::ExpectedSlashingLossEth);
    println!(
        "E[L]: engine {} ± {}, exact {exact_mean}",
        e.value, e.std_error
    );
    assert_within("E[L]", e.value, exact_mean, e.std_error, 0.0);
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
        for values in set.checkpoint_values.chunks_exact(set.checkpoints) {
            assert!((values[c] - vc).abs() <= 1e-12 * vc);
        }
    }
    let r = analyse(&model, &set, &[]);
    assert_eq!(metric(&r, MetricId::SdNetReturn).value, 0.0);
}
