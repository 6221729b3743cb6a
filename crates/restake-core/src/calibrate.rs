//! Which parameter values the real data imply: the estimators behind the presets in
//! `data/scenarios/`, over plain slices (the file reading is the CLI's).
//!
//! Every estimator returns the sample window it used, so that the printed calibration
//! says what it is based on.

use statrs::distribution::{Beta, ContinuousCDF};

use crate::DAYS_PER_YEAR;

/// Seconds in the model's 365-day year.
pub const SECONDS_PER_YEAR: f64 = DAYS_PER_YEAR * 86_400.0;

/// A geometric Brownian motion fitted to a price series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GbmFit {
    /// Annual volatility `sigma`: the sample sd of the log returns over `sqrt(dt)`.
    pub volatility: f64,
    /// Annual drift `mu = mean(log return) / dt + sigma^2 / 2`, so that
    /// `E[X(T)] = X(0) e^{mu T}`.
    pub drift: f64,
    /// Standard error of `drift`, `sigma / sqrt(years)`: the drift of a one-year sample
    /// is barely identified.
    pub drift_std_error: f64,
    /// Last price of the series.
    pub last_price: f64,
    /// Number of log returns used.
    pub returns: usize,
    /// Years covered by the series.
    pub years: f64,
}

/// Fits a GBM to prices observed at `times_s` (seconds, increasing, evenly spaced) by
/// maximum likelihood on the log returns (Campbell, Lo and MacKinlay, *The Econometrics
/// of Financial Markets*, §9.3). Returns `None` with fewer than 3 prices, a non-positive
/// price or non-increasing times.
pub fn fit_gbm(times_s: &[f64], prices: &[f64]) -> Option<GbmFit> {
    let n = prices.len();
    if n < 3 || times_s.len() != n || prices.iter().any(|p| p.is_nan() || *p <= 0.0) {
        return None;
    }
    if times_s.windows(2).any(|w| w[1] <= w[0]) {
        return None;
    }
    let years = (times_s[n - 1] - times_s[0]) / SECONDS_PER_YEAR;
    let dt = years / (n - 1) as f64;
    let r: Vec<f64> = prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let m = r.len() as f64;
    let mean = r.iter().sum::<f64>() / m;
    let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1.0);
    let volatility = (var / dt).sqrt();
    Some(GbmFit {
        volatility,
        drift: mean / dt + 0.5 * volatility * volatility,
        drift_std_error: volatility / years.sqrt(),
        last_price: prices[n - 1],
        returns: r.len(),
        years,
    })
}

/// A continuously compounded growth rate read off an exchange-rate series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowthFit {
    /// `ln(X_end / X_start) / years` over the whole series.
    pub rate: f64,
    /// Sample sd of the same rate over non-overlapping blocks of `block_days`.
    pub block_sd: f64,
    /// Number of whole blocks.
    pub blocks: usize,
    /// Lag-1 autocorrelation of the block rates.
    pub block_autocorrelation: f64,
    /// Sd of the mean rate over a year of blocks, `block_sd sqrt((1 + r1) / (1 - r1)) /
    /// sqrt(blocks a year)`: the long-run variance of an AR(1) sequence of block rates
    /// with lag-1 autocorrelation `r1` (clamped to [-0.9, 0.9]), the uncertainty of the
    /// coming year's mean APR rather than the spread of one block's.
    pub year_mean_sd: f64,
    /// Years covered.
    pub years: f64,
}

/// Growth rate of an exchange rate `values` at `times_s` (seconds, increasing): the
/// whole-window rate, and the spread of the rate over non-overlapping blocks of
/// `block_days` days (the last, partial block dropped). Returns `None` with fewer than
/// two whole blocks or a non-positive value.
pub fn fit_growth(times_s: &[f64], values: &[f64], block_days: f64) -> Option<GrowthFit> {
    let n = values.len();
    if n < 2 || times_s.len() != n || values.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    let years = (times_s[n - 1] - times_s[0]) / SECONDS_PER_YEAR;
    let rate = (values[n - 1] / values[0]).ln() / years;
    let block_s = block_days * 86_400.0;
    let mut rates = Vec::new();
    let mut start = 0;
    for i in 1..n {
        if times_s[i] - times_s[start] >= block_s {
            let span = (times_s[i] - times_s[start]) / SECONDS_PER_YEAR;
            rates.push((values[i] / values[start]).ln() / span);
            start = i;
        }
    }
    if rates.len() < 2 {
        return None;
    }
    let m = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / m;
    let ss: f64 = rates.iter().map(|x| (x - mean).powi(2)).sum();
    let block_sd = (ss / (m - 1.0)).sqrt();
    let lagged: f64 = rates
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum();
    let r1 = if ss > 0.0 { lagged / ss } else { 0.0 };
    let per_year = crate::DAYS_PER_YEAR / block_days;
    let year_mean_sd = block_sd
        * ((1.0 + r1.clamp(-0.9, 0.9)) / (1.0 - r1.clamp(-0.9, 0.9))).sqrt()
        / per_year.sqrt();
    Some(GrowthFit {
        rate,
        block_sd,
        blocks: rates.len(),
        years,
        block_autocorrelation: r1,
        year_mean_sd,
    })
}

/// A reward distribution period: tokens paid for a stake over `days` days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardPeriod {
    /// Length of the period in days (inclusive of both ends).
    pub days: f64,
    /// Tokens paid out.
    pub tokens: f64,
    /// Stake that earned them, ETH.
    pub stake_eth: f64,
}

/// Tokens paid per ETH of stake per year over `periods`: total tokens over total
/// ETH-days, times 365 (a stake- and time-weighted mean). `None` without stake.
pub fn token_rate_per_eth_year(periods: &[RewardPeriod]) -> Option<f64> {
    let tokens: f64 = periods.iter().map(|p| p.tokens).sum();
    let eth_days: f64 = periods.iter().map(|p| p.stake_eth * p.days).sum();
    (eth_days > 0.0).then(|| tokens / eth_days * DAYS_PER_YEAR)
}

/// Annual probability of at least one event from `events` seen over `exposure` units
/// (validator-years, or years): `p = 1 - exp(-events / exposure)`, the Poisson rate's
/// maximum-likelihood estimate turned into a probability (`docs/model.md#a-path`).
pub fn annual_probability(events: f64, exposure: f64) -> f64 {
    -(-events / exposure).exp_m1()
}

/// A beta distribution on `[0, max]` fitted to two figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledBetaFit {
    /// First shape.
    pub alpha: f64,
    /// Second shape.
    pub beta: f64,
    /// Upper end of the support.
    pub max: f64,
}

/// The beta law on `[0, max]` with mean `mean` whose `level`-quantile is `quantile`
/// (all as fractions). With `m = mean / max` the shapes are `alpha` and
/// `alpha (1 - m) / m`; for a fixed mean the quantile rises with `alpha` from 0 (all mass
/// at the ends) to a peak, then falls towards `m` (all mass at the mean). The fit takes
/// the peak from a log-spaced scan of [1e-3, 1e4] and bisects on the falling side, so it
/// returns the least skewed law that fits. `None` when no alpha fits.
pub fn fit_scaled_beta(mean: f64, quantile: f64, level: f64, max: f64) -> Option<ScaledBetaFit> {
    let m = mean / max;
    let target = quantile / max;
    if !(0.0 < m && m < target && target < 1.0 && 0.0 < level && level < 1.0) {
        return None;
    }
    let q_at = |alpha: f64| {
        Beta::new(alpha, alpha * (1.0 - m) / m)
            .ok()
            .map(|b| b.inverse_cdf(level))
    };
    let grid = |i: i32| 10f64.powf(-3.0 + 7.0 * f64::from(i) / 280.0);
    let mut peak = (grid(0), q_at(grid(0))?);
    for i in 1..=280 {
        let q = q_at(grid(i))?;
        if q > peak.1 {
            peak = (grid(i), q);
        }
    }
    let (mut lo, mut hi) = (peak.0, 1e4_f64);
    if !(peak.1 > target && q_at(hi)? < target) {
        return None;
    }
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if q_at(mid)? > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let alpha = (lo * hi).sqrt();
    Some(ScaledBetaFit {
        alpha,
        beta: alpha * (1.0 - m) / m,
        max,
    })
}

/// Weights proportional to `stakes`, summing to 1 (`None` if they sum to 0).
pub fn weights(stakes: &[f64]) -> Option<Vec<f64>> {
    let total: f64 = stakes.iter().sum();
    (total > 0.0).then(|| stakes.iter().map(|s| s / total).collect())
}

/// Share of its balance a slashed validator loses: the initial penalty `1 /
/// initial_quotient` (4096 since Electra, 32 before Bellatrix's change... 32 when the
/// Launchnodes incident happened), the correlation penalty, and `exit_loss`, the
/// penalties and missed rewards until it is withdrawable. The correlation penalty
/// follows the consensus specifications' integer arithmetic in gwei: with
/// `slashed_eth` slashed in the 36-day window and `total_eth` staked, each 1-ETH
/// increment of the balance pays `floor(min(3 slashed, total) / floor(total))` gwei
/// (PROPORTIONAL_SLASHING_MULTIPLIER = 3), for a balance of `balance_eth`.
pub fn slashed_validator_loss(
    balance_eth: f64,
    initial_quotient: f64,
    slashed_eth: f64,
    total_eth: f64,
    exit_loss: f64,
) -> f64 {
    let adjusted_gwei = (3.0 * slashed_eth).min(total_eth) * 1e9;
    let per_increment_gwei = (adjusted_gwei / total_eth.floor()).floor();
    let correlation_eth = per_increment_gwei * balance_eth.floor() / 1e9;
    1.0 / initial_quotient + correlation_eth / balance_eth + exit_loss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbm_fit_recovers_a_deterministic_path() {
        // X(t) = e^{0.1 t} sampled daily: zero volatility, drift 0.1.
        let times: Vec<f64> = (0..=365).map(|d| f64::from(d) * 86_400.0).collect();
        let prices: Vec<f64> = times
            .iter()
            .map(|t| (0.1 * t / SECONDS_PER_YEAR).exp())
            .collect();
        let fit = fit_gbm(&times, &prices).unwrap();
        assert!(fit.volatility < 1e-6);
        assert!((fit.drift - 0.1).abs() < 1e-9);
        assert!((fit.years - 1.0).abs() < 1e-12);
    }

    #[test]
    fn growth_fit_reads_the_rate() {
        let times: Vec<f64> = (0..=730).map(|d| f64::from(d) * 86_400.0).collect();
        let values: Vec<f64> = times
            .iter()
            .map(|t| (0.03 * t / SECONDS_PER_YEAR).exp())
            .collect();
        let fit = fit_growth(&times, &values, 30.0).unwrap();
        assert!((fit.rate - 0.03).abs() < 1e-12);
        assert!(fit.block_sd < 1e-12);
        assert_eq!(fit.blocks, 24);
    }

    #[test]
    fn token_rate_weights_by_stake_and_time() {
        let periods = [
            RewardPeriod {
                days: 7.0,
                tokens: 70.0,
                stake_eth: 100.0,
            },
            RewardPeriod {
                days: 14.0,
                tokens: 0.0,
                stake_eth: 100.0,
            },
        ];
        // 70 tokens over 2100 ETH-days → 1/30 a day → 365/30 a year.
        assert!((token_rate_per_eth_year(&periods).unwrap() - 365.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn scaled_beta_fit_hits_both_figures() {
        let fit = fit_scaled_beta(0.0375, 0.13, 0.95, 0.78).unwrap();
        let mean = fit.max * fit.alpha / (fit.alpha + fit.beta);
        let q = fit.max * Beta::new(fit.alpha, fit.beta).unwrap().inverse_cdf(0.95);
        assert!((mean - 0.0375).abs() < 1e-12);
        assert!((q - 0.13).abs() < 1e-9);
        assert!(fit_scaled_beta(0.2, 0.1, 0.95, 0.78).is_none());
    }

    #[test]
    fn annual_probability_inverts_the_intensity() {
        assert!((annual_probability(1.0, 1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-15);
        assert_eq!(annual_probability(0.0, 5.0), 0.0);
    }

    /// The Launchnodes incident (October 2023, docs/model.md#calibration-references): 20
    /// validators of 32 ETH, about 27.5M ETH staked, pre-Electra initial penalty 1/32:
    /// 20.04 ETH of initial penalties were reported, and the correlation penalty of the
    /// specifications' arithmetic brings 20 ETH there.
    #[test]
    fn slashing_penalties_reproduce_the_launchnodes_incident() {
        let per_validator = slashed_validator_loss(32.0, 32.0, 640.0, 27.5e6, 0.0) * 32.0;
        let total = 20.0 * per_validator;
        assert!((total - 20.04).abs() < 0.02, "{total}");
        // Without the correlation penalty it would be 20 ETH exactly.
        assert!(total > 20.03);
        // Electra's initial penalty is 128 times smaller.
        let electra = slashed_validator_loss(32.0, 4096.0, 32.0, 34e6, 0.0);
        assert!(
            (electra - 1.0 / 4096.0 - 3.0 * 32.0 / 34e6).abs() < 1e-7,
            "{electra}"
        );
    }
}
