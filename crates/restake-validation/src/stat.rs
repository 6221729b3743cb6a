//! Goodness-of-fit tests and Monte Carlo tolerances used by the validation tests.
//!
//! Every test here has a stated false-failure probability: a tolerance of
//! [`TOLERANCE_SE`] standard errors (two-sided normal tail 6.3e-5), or a p-value
//! threshold of [`SIGNIFICANCE`] for Kolmogorov–Smirnov and chi-square tests. Seeds are
//! fixed in every test, so a test that passes once passes every time.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Tolerance of an estimate against an exact value, in Monte Carlo standard errors.
pub const TOLERANCE_SE: f64 = 4.0;

/// Smallest p-value a goodness-of-fit test accepts.
pub const SIGNIFICANCE: f64 = 1e-3;

/// Mean of `xs` and its standard error `sd / sqrt(n)`.
///
/// # Panics
/// If `xs` has fewer than two values.
pub fn mean_se(xs: &[f64]) -> (f64, f64) {
    assert!(xs.len() >= 2, "a standard error needs two values");
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Panics unless `|estimate - exact| <= TOLERANCE_SE × se` (plus `slack`, a bound on any
/// known non-random error of the exact value, such as a truncated series).
///
/// # Panics
/// When the estimate is outside the tolerance; the message names `what`.
pub fn assert_within(what: &str, estimate: f64, exact: f64, se: f64, slack: f64) {
    let tolerance = TOLERANCE_SE * se + slack;
    assert!(
        (estimate - exact).abs() <= tolerance,
        "{what}: estimate {estimate} vs exact {exact}: off by {}, tolerance {tolerance} ({TOLERANCE_SE} se = {}, slack {slack})",
        (estimate - exact).abs(),
        TOLERANCE_SE * se
    );
}

/// A test statistic and its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// The statistic: `D` for Kolmogorov–Smirnov, `X^2` for chi-square.
    pub statistic: f64,
    /// Its p-value under the null hypothesis.
    pub p_value: f64,
}

impl TestResult {
    /// Panics unless the p-value is at least [`SIGNIFICANCE`]; prints the statistic and
    /// the p-value (shown with `--nocapture`).
    ///
    /// # Panics
    /// When the test rejects; the message names `what`.
    pub fn assert_accepts(&self, what: &str) {
        println!(
            "{what}: statistic {}, p-value {}",
            self.statistic, self.p_value
        );
        assert!(
            self.p_value >= SIGNIFICANCE,
            "{what}: rejected at {SIGNIFICANCE}: statistic {}, p-value {}",
            self.statistic,
            self.p_value
        );
    }
}

/// `P(K > lambda)` for the Kolmogorov distribution:
/// `2 sum_{k >= 1} (-1)^{k-1} exp(-2 k^2 lambda^2)` (Kolmogorov 1933).
pub fn kolmogorov_survival(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0; // the series converges slowly there, and the value is 1 to 1e-12
    }
    let mut sum = 0.0;
    for k in 1..=100u32 {
        let kf = f64::from(k);
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        sum += if k % 2 == 1 { term } else { -term };
        if term < 1e-17 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// p-value of a KS statistic `d` with effective sample size `n_e`, with Stephens' (1970)
/// finite-sample correction `lambda = (sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)) d`
/// (Numerical Recipes, 3rd ed., §14.3.3).
fn ks_p_value(d: f64, n_e: f64) -> f64 {
    let s = n_e.sqrt();
    kolmogorov_survival((s + 0.12 + 0.11 / s) * d)
}

/// One-sample Kolmogorov–Smirnov test of `xs` (sorted in place) against a continuous
/// `cdf`.
///
/// # Panics
/// If `xs` is empty or holds a NaN.
pub fn ks_one_sample(xs: &mut [f64], cdf: impl Fn(f64) -> f64) -> TestResult {
    assert!(!xs.is_empty(), "KS needs a sample");
    xs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in a KS sample"));
    let n = xs.len() as f64;
    let d = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max);
    TestResult {
        statistic: d,
        p_value: ks_p_value(d, n),
    }
}

/// Two-sample Kolmogorov–Smirnov test of `a` against `b`. Values closer than `tie_tol`
/// count as tied (two implementations of the same closed form differ in the last bits,
/// and an atom split by a rounding error is no difference in distribution). With atoms
/// the test is conservative.
///
/// # Panics
/// If a sample is empty or holds a NaN.
pub fn ks_two_sample(a: &[f64], b: &[f64], tie_tol: f64) -> TestResult {
    assert!(!a.is_empty() && !b.is_empty(), "KS needs two samples");
    let mut merged: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    merged.sort_by(|x, y| x.0.partial_cmp(&y.0).expect("no NaN in a KS sample"));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut ca, mut cb) = (0.0, 0.0);
    let mut d: f64 = 0.0;
    for (i, &(x, from_a)) in merged.iter().enumerate() {
        if from_a {
            ca += 1.0;
        } else {
            cb += 1.0;
        }
        // Compare the two empirical CDFs only between clusters of tied values.
        if merged.get(i + 1).is_none_or(|next| next.0 - x > tie_tol) {
            d = d.max((ca / na - cb / nb).abs());
        }
    }
    TestResult {
        statistic: d,
        p_value: ks_p_value(d, na * nb / (na + nb)),
    }
}

/// Pearson's chi-square test of `observed` counts against category probabilities
/// `probs` (summing to 1). Neighbouring categories are pooled, from the first, until
/// each pooled category expects at least 5 counts; a short remainder joins the last
/// pool. Degrees of freedom: pooled categories - 1.
///
/// # Panics
/// If the lengths differ or fewer than two pools remain.
pub fn chi_square(observed: &[u64], probs: &[f64]) -> TestResult {
    assert_eq!(observed.len(), probs.len(), "one probability per category");
    let n: u64 = observed.iter().sum();
    let n = n as f64;
    let mut pools: Vec<(f64, f64)> = Vec::new(); // (observed, expected)
    let (mut o, mut e) = (0.0, 0.0);
    for (&obs, &p) in observed.iter().zip(probs) {
        o += obs as f64;
        e += p * n;
        if e >= 5.0 {
            pools.push((o, e));
            (o, e) = (0.0, 0.0);
        }
    }
    if let Some(last) = pools.last_mut() {
        last.0 += o;
        last.1 += e;
    }
    assert!(pools.len() >= 2, "chi-square needs two categories");
    let statistic: f64 = pools.iter().map(|(o, e)| (o - e).powi(2) / e).sum();
    let df = (pools.len() - 1) as f64;
    let law = ChiSquared::new(df).expect("df >= 1");
    TestResult {
        statistic,
        p_value: law.sf(statistic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolmogorov_survival_matches_tabled_values() {
        // Smirnov's table: P(K > 1.36) = 0.0494, P(K > 1.63) = 0.0098.
        assert!((kolmogorov_survival(1.36) - 0.0494).abs() < 2e-4);
        assert!((kolmogorov_survival(1.63) - 0.0098).abs() < 2e-4);
        assert_eq!(kolmogorov_survival(0.1), 1.0);
    }

    #[test]
    fn ks_one_sample_rejects_a_shifted_sample() {
        let mut xs: Vec<f64> = (0..1000).map(|i| (f64::from(i) + 0.5) / 1000.0).collect();
        assert!(ks_one_sample(&mut xs, |x| x.clamp(0.0, 1.0)).p_value > 0.99);
        let mut shifted: Vec<f64> = xs.iter().map(|x| x * 0.9).collect();
        assert!(ks_one_sample(&mut shifted, |x| x.clamp(0.0, 1.0)).p_value < 1e-6);
    }

    #[test]
    fn ks_two_sample_treats_near_ties_as_ties() {
        let a = vec![0.0; 500];
        let b: Vec<f64> = vec![1e-15; 500];
        assert_eq!(ks_two_sample(&a, &b, 1e-9).statistic, 0.0);
        assert_eq!(ks_two_sample(&a, &b, 0.0).statistic, 1.0);
    }

    #[test]
    fn chi_square_pools_small_categories() {
        // 100 draws over {0, 1, 2+} with probabilities 0.9, 0.08, 0.02: the last two pool.
        let r = chi_square(&[90, 8, 2], &[0.9, 0.08, 0.02]);
        assert!(r.statistic.abs() < 1e-12 && r.p_value > 0.99);
        let r = chi_square(&[50, 40, 10], &[0.9, 0.08, 0.02]);
        assert!(r.p_value < 1e-10);
    }
}
