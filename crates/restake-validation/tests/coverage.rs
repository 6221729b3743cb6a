//! Coverage study: do the reported 95% intervals contain the truth 95% of the time?
//!
//! On three scenarios whose law is known exactly (the third with a systematic factor), `REPS` independent runs (seeds 0 ..
//! `REPS`) of `PATHS` paths each; for each interval, the share of runs whose
//! `[ci_low, ci_high]` contains the exact value must lie in [0.93, 0.97]. With 1,000 runs
//! the share of a correct 95% interval has standard deviation 0.0069, so the band is
//! ±2.9 sd (a correct interval fails it with probability 0.4%); seeds are fixed.
//!
//! Intervals covered: the mean (normal, `se = sd / sqrt(n)`), `prob_loss` (Wilson), a
//! low and the middle quantile of the return and VaR 95 (distribution-free order
//! statistics), and ES 95 / 97.5 (delta method of Manistre and Hancock, 2005: see
//! `restake_core::stats`).

use restake_core::stats::MetricId;
use restake_core::{Results, RunConfig, Scenario, run};
use restake_validation::oracle::{
    ENUMERATION_SCENARIO, LOGNORMAL_SCENARIO, LognormalReturn, enumeration_atoms,
    enumeration_factor_atoms, enumeration_factor_scenario,
};

const REPS: u64 = 1000;
const PATHS: u64 = 20_000;

/// What one run's interval is compared with: a name, how to read `[lo, hi]` from the
/// results, and the exact value.
type Target = (&'static str, fn(&Results) -> (f64, f64), f64);

fn summary_ci(r: &Results, id: MetricId) -> (f64, f64) {
    let e = r.metric(id).unwrap_or_else(|| panic!("no metric {id}"));
    (e.ci_low, e.ci_high)
}

fn quantile_ci(r: &Results, probability: f64) -> (f64, f64) {
    let q = r
        .quantiles
        .iter()
        .find(|q| (q.probability - probability).abs() < 1e-12)
        .expect("a reported quantile level");
    (q.ci_low, q.ci_high)
}

/// Runs the study on `text`; returns each target's coverage, after printing it.
fn coverage(text: &str, targets: &[Target]) -> Vec<f64> {
    let scenario = Scenario::from_toml(text).unwrap();
    let hits: Vec<Vec<bool>> = (0..REPS)
        .map(|seed| {
            // Each run uses all cores itself (runs nested in a rayon pool would nest pools).
            let config = RunConfig {
                paths: PATHS,
                seed,
                threads: 0,
            };
            let r = run(&scenario, &config, &|_| {}).unwrap();
            targets
                .iter()
                .map(|(_, ci, exact)| {
                    let (lo, hi) = ci(&r);
                    lo <= *exact && *exact <= hi
                })
                .collect()
        })
        .collect();
    targets
        .iter()
        .enumerate()
        .map(|(i, (name, _, exact))| {
            let share = hits.iter().filter(|h| h[i]).count() as f64 / REPS as f64;
            println!("coverage of {name} (exact {exact}): {share}");
            share
        })
        .collect()
}

fn assert_band(targets: &[Target], shares: &[f64]) {
    for ((name, _, _), share) in targets.iter().zip(shares) {
        assert!(
            (0.93..=0.97).contains(share),
            "coverage of {name}: {share} outside [0.93, 0.97]"
        );
    }
}

#[test]
fn intervals_cover_the_lognormal_truth() {
    let law = LognormalReturn::default();
    let targets: [Target; 6] = [
        (
            "mean_net_return",
            |r| summary_ci(r, MetricId::MeanNetReturn),
            law.mean(),
        ),
        (
            "quantile 0.05",
            |r| quantile_ci(r, 0.05),
            law.quantile(0.05),
        ),
        ("quantile 0.5", |r| quantile_ci(r, 0.5), law.quantile(0.5)),
        (
            "var_95",
            |r| summary_ci(r, MetricId::Var(9500)),
            -law.quantile(0.05),
        ),
        ("es_95", |r| summary_ci(r, MetricId::Es(9500)), law.es(0.95)),
        (
            "es_975",
            |r| summary_ci(r, MetricId::Es(9750)),
            law.es(0.975),
        ),
    ];
    let shares = coverage(LOGNORMAL_SCENARIO, &targets);
    assert_band(&targets, &shares);
}

#[test]
fn intervals_cover_the_enumerated_truth() {
    cover_enumerated(ENUMERATION_SCENARIO, &enumeration_atoms());
}

/// With a factor the paths are still independent, each with its own `Z`: the intervals
/// must cover the law mixed over the factor.
#[test]
fn intervals_cover_the_enumerated_truth_with_a_factor() {
    cover_enumerated(&enumeration_factor_scenario(), &enumeration_factor_atoms());
}

/// The coverage of `prob_loss`, `mean_net_return` and ES 95 on `text`, whose exact law
/// is `atoms`.
fn cover_enumerated(text: &str, atoms: &[(f64, f64)]) {
    let prob_loss: f64 = atoms.iter().filter(|a| a.0 > 1e-15).map(|a| a.1).sum();
    let mean_return: f64 = -atoms.iter().map(|a| a.0 * a.1).sum::<f64>();
    let es_95 = restake_validation::oracle::discrete_var_es(atoms, 0.95).1;
    let targets: [Target; 3] = [
        (
            "prob_loss",
            |r| summary_ci(r, MetricId::ProbLoss),
            prob_loss,
        ),
        (
            "mean_net_return",
            |r| summary_ci(r, MetricId::MeanNetReturn),
            mean_return,
        ),
        ("es_95", |r| summary_ci(r, MetricId::Es(9500)), es_95),
    ];
    let shares = coverage(text, &targets);
    assert_band(&targets, &shares);
}
