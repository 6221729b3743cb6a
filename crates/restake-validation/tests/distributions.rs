//! Distribution tests of every sampler of the engine at 1e6 draws, against statrs's
//! distribution functions: Kolmogorov–Smirnov for continuous laws, chi-square for
//! discrete ones, each rejecting at p < 1e-3 with a fixed seed (as rand_distr's own
//! distribution tests do). Run in release mode: `cargo test --release -p
//! restake-validation`.

use restake_core::path::{PathScratch, simulate_path};
use restake_core::sampling::{Severity, batch_rng, truncated_normal};
use restake_core::{Model, SeveritySpec};
use restake_validation::harness::scenario;
use restake_validation::stat::{chi_square, ks_one_sample};
use statrs::distribution::{Beta, ContinuousCDF, Discrete, Normal, Poisson};

const DRAWS: usize = 1_000_000;

/// KS test of `DRAWS` severities of `spec` against the CDF of its law.
fn check_severity(spec: SeveritySpec, seed: u64) {
    let sampler = Severity::new(&spec);
    let mut rng = batch_rng(seed, 0);
    let mut xs: Vec<f64> = (0..DRAWS).map(|_| sampler.sample(&mut rng)).collect();
    let cdf: Box<dyn Fn(f64) -> f64> = match spec {
        SeveritySpec::Fixed { .. } => unreachable!("a fixed severity takes no draw"),
        SeveritySpec::Uniform { min, max } => {
            Box::new(move |x| ((x - min) / (max - min)).clamp(0.0, 1.0))
        }
        SeveritySpec::Beta {
            alpha,
            beta,
            min,
            max,
        } => {
            let (lo, hi) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
            let law = Beta::new(alpha, beta).unwrap();
            Box::new(move |x| law.cdf(((x - lo) / (hi - lo)).clamp(0.0, 1.0)))
        }
    };
    ks_one_sample(&mut xs, cdf).assert_accepts(&format!("{spec:?}"));
}

#[test]
fn severities_follow_their_laws() {
    check_severity(SeveritySpec::Uniform { min: 0.1, max: 0.5 }, 1);
    // The shapes of the presets (beta(2, 5), beta(2, 8), beta(2, 2)) and others the
    // order-statistic sampler takes (the larger shape first, the uniform, the largest
    // sum), then shapes that go to Cheng's algorithm (a large sum, U-shaped,
    // non-integer, a large smaller shape).
    for (seed, (alpha, beta)) in [
        (2.0, 5.0),
        (2.0, 8.0),
        (2.0, 2.0),
        (5.0, 2.0),
        (1.0, 1.0),
        (4.0, 9.0),
        (3.0, 62.0),
        (0.5, 0.5),
        (2.5, 3.0),
        (9.0, 9.0),
    ]
    .into_iter()
    .enumerate()
    {
        check_severity(
            SeveritySpec::Beta {
                alpha,
                beta,
                min: None,
                max: None,
            },
            10 + seed as u64,
        );
    }
    check_severity(
        SeveritySpec::Beta {
            alpha: 2.0,
            beta: 3.0,
            min: Some(0.2),
            max: Some(0.6),
        },
        20,
    );
    let fixed = Severity::new(&SeveritySpec::Fixed { value: 0.3 });
    assert_eq!(fixed.sample(&mut batch_rng(1, 0)), 0.3);
}

#[test]
fn depeg_discount_follows_its_law() {
    // The discount sampler the model builds for a market exit.
    let s = scenario(
        r#"
name = "depeg"
[position]
principal_eth = 1.0
route = "liquid"
horizon_days = 365
[base]
apr_mean = 0.03
[liquid]
exit = "market"
depeg_prob = 0.5
depeg_discount = { dist = "beta", alpha = 2.0, beta = 40.0, max = 0.78 }
[[operator]]
name = "op"
weight = 1.0
"#,
    );
    let model = Model::new(&s);
    let (prob, discount) = model.depeg.as_ref().expect("market exit with a depeg");
    assert_eq!(*prob, 0.5);
    let mut rng = batch_rng(3, 0);
    let mut xs: Vec<f64> = (0..DRAWS).map(|_| discount.sample(&mut rng)).collect();
    let law = Beta::new(2.0, 40.0).unwrap();
    ks_one_sample(&mut xs, |x| law.cdf((x / 0.78).clamp(0.0, 1.0)))
        .assert_accepts("depeg discount beta(2, 40) on [0, 0.78]");
}

#[test]
fn base_apr_is_a_normal_truncated_at_zero() {
    // Normal(0.01, 0.02) conditioned on >= 0: F(x) = (Phi((x - mu)/sd) - Phi(-mu/sd)) /
    // (1 - Phi(-mu/sd)).
    let (mu, sd) = (0.01, 0.02);
    let law = Normal::new(mu, sd).unwrap();
    let below = law.cdf(0.0);
    let mut rng = batch_rng(4, 0);
    let mut xs: Vec<f64> = (0..DRAWS)
        .map(|_| truncated_normal(mu, sd, &mut rng))
        .collect();
    ks_one_sample(&mut xs, |x| ((law.cdf(x) - below) / (1.0 - below)).max(0.0))
        .assert_accepts("truncated normal base APR");
}

/// Three sources over 200 days: AVS X and Y slashing of one operator, and an exploit.
const EVENTS: &str = r#"
name = "events"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 200
[base]
apr_mean = 0.0
[protocol]
exploit_prob = 0.2
exploit_severity = { dist = "fixed", value = 0.0 }
[[avs]]
name = "X"
slash_prob = 0.5
slash_severity = { dist = "fixed", value = 0.0 }
[[avs]]
name = "Y"
slash_prob = 0.3
slash_severity = { dist = "fixed", value = 0.0 }
[[operator]]
name = "op"
weight = 1.0
allocations = { X = 0.3, Y = 0.3 }
"#;

#[test]
fn event_counts_sources_and_times_follow_the_poisson_processes() {
    let s = scenario(EVENTS);
    let model = Model::new(&s);
    let horizon = 200.0 / 365.0;
    // Every structural source is listed: the two slashings, then the two AVS incidents,
    // the operator's fault and its beacon-chain slashing (all at p = 0), the exploit.
    let intensities: Vec<f64> = model.sources.iter().map(|x| x.intensity).collect();
    let lambda = |p: f64| -(-p).ln_1p();
    assert_eq!(
        intensities,
        vec![lambda(0.5), lambda(0.3), 0.0, 0.0, 0.0, 0.0, lambda(0.2)]
    );
    let total: f64 = intensities.iter().sum();

    let mut rng = batch_rng(5, 0);
    let mut scratch = PathScratch::new(&model);
    const COUNT_CATEGORIES: usize = 16;
    let mut counts = vec![0u64; COUNT_CATEGORIES];
    let mut marks = vec![0u64; intensities.len()];
    let mut times = Vec::new();
    for _ in 0..DRAWS {
        simulate_path(&model, &mut rng, &mut scratch);
        let events = scratch.events();
        counts[events.len().min(COUNT_CATEGORIES - 1)] += 1;
        for &(t, source, _) in events {
            marks[source as usize] += 1;
            times.push(t);
        }
        assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
        scratch.clear_rows();
    }

    // N ~ Poisson(Lambda T), the last category holding the tail.
    let law = Poisson::new(total * horizon).unwrap();
    let mut probs: Vec<f64> = (0..COUNT_CATEGORIES as u64 - 1)
        .map(|k| law.pmf(k))
        .collect();
    probs.push(1.0 - probs.iter().sum::<f64>());
    chi_square(&counts, &probs).assert_accepts("event count");

    // Each event's source with probability lambda_j / Lambda.
    let shares: Vec<f64> = intensities.iter().map(|l| l / total).collect();
    chi_square(&marks, &shares).assert_accepts("event sources");

    // Event times uniform on [0, T].
    ks_one_sample(&mut times, |t| (t / horizon).clamp(0.0, 1.0)).assert_accepts("event times");
}

#[test]
fn token_price_at_the_horizon_is_lognormal() {
    // Token incentives only, no base growth: the tokens' value is units × X(T) with
    // units = (1 - c) g P T / X0, so ln(value / (units X0)) ~ Normal((mu - sigma^2/2) T,
    // sigma^2 T) (`docs/model.md#a-path`).
    let s = scenario(
        r#"
name = "gbm"
[position]
principal_eth = 10.0
route = "native"
horizon_days = 300
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
    let t = 300.0 / 365.0;
    let value0 = 0.8 * 0.05 * 10.0 * t;
    let mut rng = batch_rng(6, 0);
    let mut scratch = PathScratch::new(&model);
    let mut logs: Vec<f64> = (0..DRAWS)
        .map(|_| (simulate_path(&model, &mut rng, &mut scratch).incentive_value_eth / value0).ln())
        .collect();
    let law = Normal::new((0.3 - 0.5 * 0.81) * t, 0.9 * t.sqrt()).unwrap();
    ks_one_sample(&mut logs, |x| law.cdf(x)).assert_accepts("ln X(T) / X(0)");
}
