//! What the paths say (`docs/model.md#statistics`): moments, quantiles, VaR and expected shortfall with
//! their intervals, probabilities, distributions, the fan chart and the Euler allocation
//! of the loss to its sources.
//!
//! Levels are held in units of 1/10,000 (`myriad`), so that `n (1 - alpha)` and `n q` are
//! exact integers over 10,000 and no rounding decides which path is in a tail.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use crate::engine::{PathSet, RowLoss};
use crate::model::{ContributionKind, ContributionRow, Model};
use crate::path::PathOutcome;

/// Returns closer to zero than this fraction of principal count as zero in `prob_loss`
/// and `prob_underperform`: the value of a path is a sum of pools, so an exact zero can
/// come out as a rounding error of about 1e-16.
pub const ROUNDING_TOLERANCE: f64 = 1e-12;

/// Two-sided 95% standard normal quantile, `Phi^{-1}(0.975)`.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Confidence level of every interval.
pub const INTERVAL_LEVEL: f64 = 0.95;

/// Equal-width bins of `loss_distribution.csv` and `return_distribution.csv` (beside the
/// atom at 0 of the loss).
pub const HISTOGRAM_BINS: usize = 100;

/// Tail levels of VaR and ES, in 1/10,000: 0.95, 0.975 (Basel FRTB), 0.99, 0.999.
pub const TAIL_LEVELS: [u32; 4] = [9500, 9750, 9900, 9990];

/// Probability levels of `quantiles.csv`, in 1/10,000 (`docs/model.md#statistics`).
pub const QUANTILE_LEVELS: [u32; 13] = [
    10, 50, 100, 250, 500, 1000, 2500, 5000, 7500, 9000, 9500, 9900, 9990,
];

/// Fan-chart levels `p01 .. p99`, in 1/10,000.
pub const FAN_LEVELS: [u32; 7] = [100, 500, 2500, 5000, 7500, 9500, 9900];

/// Divisors of the path count in the convergence report: the headline metrics over the
/// first `N/16, N/8, N/4, N/2` and all `N` paths (in batch order, so the prefixes do not
/// depend on the thread count).
pub const CONVERGENCE_DIVISORS: [u64; 5] = [16, 8, 4, 2, 1];

/// Metrics of the convergence report, all rows of `summary.csv`.
pub const CONVERGENCE_METRICS: [MetricId; 12] = [
    MetricId::MeanNetReturn,
    MetricId::ProbLoss,
    MetricId::ProbUnderperform,
    MetricId::Var(9500),
    MetricId::Var(9750),
    MetricId::Var(9900),
    MetricId::Var(9990),
    MetricId::Es(9500),
    MetricId::Es(9750),
    MetricId::Es(9900),
    MetricId::Es(9990),
    MetricId::ExpectedSlashingLossEth,
];

/// A row of `summary.csv`, by what it measures; its name in the file is
/// [`MetricId::name`] (the names of the README's "Output files", never renamed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MetricId {
    /// `mean_net_return`: mean of `R = V/P - 1`, a fraction over the horizon.
    MeanNetReturn,
    /// `sd_net_return`.
    SdNetReturn,
    /// `mean_excess_return`: mean of `(V - V_plain) / P`.
    MeanExcessReturn,
    /// `sd_excess_return`.
    SdExcessReturn,
    /// `prob_loss`: `P(R < 0)`.
    ProbLoss,
    /// `prob_underperform`: `P(V < V_plain)`.
    ProbUnderperform,
    /// `var_<level>`: VaR of the loss at a level of [`TAIL_LEVELS`] (in 1/10,000).
    Var(u32),
    /// `es_<level>`: expected shortfall of the loss at a level of [`TAIL_LEVELS`].
    Es(u32),
    /// `expected_slashing_loss_eth`.
    ExpectedSlashingLossEth,
    /// `mean_base_income_eth`.
    MeanBaseIncomeEth,
    /// `mean_avs_fee_income_eth`.
    MeanAvsFeeIncomeEth,
    /// `mean_incentive_value_eth`.
    MeanIncentiveValueEth,
    /// `mean_depeg_loss_eth`.
    MeanDepegLossEth,
    /// `prob_slashing_loss`: share of paths with a positive slashing loss.
    ProbSlashingLoss,
    /// `prob_liquidation`: with leverage, the share of paths liquidated at least once.
    ProbLiquidation,
    /// `expected_liquidation_loss_eth`: with leverage, the mean loss to liquidations.
    ExpectedLiquidationLossEth,
    /// `mean_borrow_cost_eth`: with leverage, the mean interest on the debt.
    MeanBorrowCostEth,
    /// `expected_bad_debt_eth`: with leverage, the mean debt left unpaid when the
    /// collateral ran out (the lender's loss).
    ExpectedBadDebtEth,
    /// `prob_loss_gt_<x>`: `P(L > x)` for a `[report]` loss threshold `x`.
    ProbLossGt(f64),
}

impl MetricId {
    /// The row's name in `summary.csv`.
    pub fn name(&self) -> String {
        match self {
            Self::MeanNetReturn => "mean_net_return".into(),
            Self::SdNetReturn => "sd_net_return".into(),
            Self::MeanExcessReturn => "mean_excess_return".into(),
            Self::SdExcessReturn => "sd_excess_return".into(),
            Self::ProbLoss => "prob_loss".into(),
            Self::ProbUnderperform => "prob_underperform".into(),
            Self::Var(l) => format!("var_{}", level_label(*l)),
            Self::Es(l) => format!("es_{}", level_label(*l)),
            Self::ExpectedSlashingLossEth => "expected_slashing_loss_eth".into(),
            Self::MeanBaseIncomeEth => "mean_base_income_eth".into(),
            Self::MeanAvsFeeIncomeEth => "mean_avs_fee_income_eth".into(),
            Self::MeanIncentiveValueEth => "mean_incentive_value_eth".into(),
            Self::MeanDepegLossEth => "mean_depeg_loss_eth".into(),
            Self::ProbSlashingLoss => "prob_slashing_loss".into(),
            Self::ProbLiquidation => "prob_liquidation".into(),
            Self::ExpectedLiquidationLossEth => "expected_liquidation_loss_eth".into(),
            Self::MeanBorrowCostEth => "mean_borrow_cost_eth".into(),
            Self::ExpectedBadDebtEth => "expected_bad_debt_eth".into(),
            Self::ProbLossGt(x) => format!("prob_loss_gt_{x}"),
        }
    }

    /// Its unit.
    pub fn unit(&self) -> Unit {
        match self {
            Self::MeanNetReturn
            | Self::SdNetReturn
            | Self::MeanExcessReturn
            | Self::SdExcessReturn
            | Self::Var(_)
            | Self::Es(_) => Unit::Fraction,
            Self::ProbLoss
            | Self::ProbUnderperform
            | Self::ProbSlashingLoss
            | Self::ProbLiquidation
            | Self::ProbLossGt(_) => Unit::Probability,
            Self::ExpectedSlashingLossEth
            | Self::MeanBaseIncomeEth
            | Self::MeanAvsFeeIncomeEth
            | Self::MeanIncentiveValueEth
            | Self::MeanDepegLossEth
            | Self::ExpectedLiquidationLossEth
            | Self::MeanBorrowCostEth
            | Self::ExpectedBadDebtEth => Unit::Eth,
        }
    }
}

impl std::fmt::Display for MetricId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Fewer paths than this at or beyond a VaR level make that level's VaR and ES rest on
/// too few losses to trust; the command line warns.
pub const MIN_TAIL_PATHS: u64 = 1000;

/// Name suffix of a tail level: `95`, `975`, `99`, `999`.
pub fn level_label(myriad: u32) -> String {
    let s = format!("{}", f64::from(myriad) / 100.0);
    s.replace('.', "")
}

/// An estimate with its Monte Carlo standard error and 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub std_error: f64,
    /// Lower end of the 95% interval.
    pub ci_low: f64,
    /// Upper end of the 95% interval.
    pub ci_high: f64,
}

impl Estimate {
    /// `value ± 1.96 se`.
    pub fn normal(value: f64, std_error: f64) -> Self {
        Self {
            value,
            std_error,
            ci_low: value - Z_95 * std_error,
            ci_high: value + Z_95 * std_error,
        }
    }

    /// A proportion `k / n` with the Wilson score interval (Wilson 1927) and standard
    /// error `sqrt(p (1 - p) / n)`.
    pub fn proportion(k: u64, n: u64) -> Self {
        let nf = n as f64;
        let p = k as f64 / nf;
        let z2 = Z_95 * Z_95;
        let denom = 1.0 + z2 / nf;
        let center = (p + z2 / (2.0 * nf)) / denom;
        let half = Z_95 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
        Self {
            value: p,
            std_error: (p * (1.0 - p) / nf).sqrt(),
            ci_low: if k == 0 {
                0.0
            } else {
                (center - half).max(0.0)
            },
            ci_high: if k == n {
                1.0
            } else {
                (center + half).min(1.0)
            },
        }
    }
}

/// Unit of a summary metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// A fraction of principal (returns, VaR, ES).
    Fraction,
    /// A probability.
    Probability,
    /// ETH.
    Eth,
}

impl Unit {
    /// The `unit` column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fraction => "fraction",
            Self::Probability => "probability",
            Self::Eth => "eth",
        }
    }
}

/// A row of `summary.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// What it measures (its name and unit).
    pub id: MetricId,
    /// Value, standard error and interval.
    pub estimate: Estimate,
}

/// A row of `quantiles.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantileRow {
    /// Probability level `q`.
    pub probability: f64,
    /// The `q`-quantile of the net return (smallest `x` with `F(x) >= q`).
    pub net_return: f64,
    /// Lower end of its distribution-free 95% interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
}

/// A histogram bin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Lower edge.
    pub lower: f64,
    /// Upper edge.
    pub upper: f64,
    /// Paths in the bin.
    pub paths: u64,
}

/// A histogram over all paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bins in increasing order.
    pub bins: Vec<Bin>,
    /// Total paths.
    pub total: u64,
}

/// A row of `contributions.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Source and kind.
    pub row: ContributionRow,
    /// Share of paths on which the source slashed at least once (vetoed requests not
    /// counted); for `depeg`, the share with a depeg; for `income`, 1 where any accrued.
    pub event_probability: f64,
    /// Mean of the source's loss over all paths, ETH (negative for income).
    pub expected_loss_eth: f64,
    /// Euler allocation of `ES × P` at each of [`TAIL_LEVELS`], ETH.
    pub es_contribution_eth: [f64; 4],
}

/// A row of `fan_chart.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FanRow {
    /// Day of the checkpoint.
    pub day: f64,
    /// Quantiles of `V(t)/P` at [`FAN_LEVELS`].
    pub values: [f64; 7],
}

/// A row of `convergence.csv`: a headline metric over the first `paths` paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceRow {
    /// Paths used: `N / d` for a divisor `d` of [`CONVERGENCE_DIVISORS`].
    pub paths: u64,
    /// The metric over those paths, with its standard error and interval.
    pub metric: Metric,
}

/// Every statistic of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Paths simulated.
    pub paths: u64,
    /// `summary.csv`.
    pub summary: Vec<Metric>,
    /// `quantiles.csv`.
    pub quantiles: Vec<QuantileRow>,
    /// `loss_distribution.csv`: the slashing loss as a fraction of principal.
    pub loss_distribution: Histogram,
    /// `return_distribution.csv`: the net return.
    pub return_distribution: Histogram,
    /// `contributions.csv`: the risk sources, depeg and income; they add up to the loss.
    pub contributions: Vec<Contribution>,
    /// `contributions_by_avs.csv`: all slashing through each AVS.
    pub avs_contributions: Vec<Contribution>,
    /// `contributions_by_operator.csv`: all slashing of each operator's stake; with the
    /// depeg and income rows of `contributions` they add up to the loss.
    pub operator_contributions: Vec<Contribution>,
    /// `fan_chart.csv`.
    pub fan_chart: Vec<FanRow>,
    /// Paths whose loss is at or beyond the VaR at each level of [`TAIL_LEVELS`]; below
    /// [`MIN_TAIL_PATHS`] that level's VaR and ES rest on few losses.
    pub tail_paths: [u64; 4],
    /// `convergence.csv`: the headline metrics over growing prefixes of the paths.
    pub convergence: Vec<ConvergenceRow>,
    /// The relative resolution of the fan chart and the two distributions, read from
    /// sketches ([`crate::reduce`]); `None` when they are exact too ([`analyse`]).
    pub sketch_resolution: Option<f64>,
}

impl Results {
    /// The summary metric `id`.
    pub fn metric(&self, id: MetricId) -> Option<&Estimate> {
        self.summary
            .iter()
            .find(|m| m.id == id)
            .map(|m| &m.estimate)
    }
}

/// 1-based rank of the `q`-quantile among `n` sorted values: `ceil(n q)`, at least 1.
pub(crate) fn quantile_rank(n: usize, myriad: u32) -> usize {
    (n * myriad as usize).div_ceil(10_000).max(1)
}

/// Distribution-free 95% interval for the `q`-quantile (David and Nagaraja, *Order
/// Statistics*, §7.1): 1-based ranks `(r, s)` with `r` the 2.5% and `s - 1` the 97.5%
/// quantile of `Binomial(n, q)`, so that `P(X_(r) <= xi_q <= X_(s)) >= 0.95`, clamped to
/// `[1, n]`.
pub fn order_statistic_ranks(n: usize, q: f64) -> (usize, usize) {
    let b = Binomial::new(q, n as u64).expect("q in (0, 1)");
    let r = binomial_quantile(&b, n as u64, q, 0.025) as usize;
    let s = binomial_quantile(&b, n as u64, q, 0.975) as usize + 1;
    (r.clamp(1, n), s.clamp(1, n))
}

/// The smallest `k` in `[0, n]` with `P(Binomial(n, q) <= k) >= p`: a bisection on the
/// exact CDF, bracketed by the normal approximation (widened until it brackets), so
/// that it takes about a dozen CDF evaluations for any `n`.
fn binomial_quantile(b: &Binomial, n: u64, q: f64, p: f64) -> u64 {
    let (nf, sd) = (n as f64, (n as f64 * q * (1.0 - q)).sqrt());
    let guess = nf * q + if p < 0.5 { -Z_95 } else { Z_95 } * sd;
    let width = (sd + 2.0).ceil() as i64;
    // Invariant: F(lo) < p <= F(hi), with F(-1) = 0.
    let mut lo = (guess as i64 - width).clamp(-1, n as i64);
    let mut hi = (guess as i64 + width).clamp(0, n as i64);
    while lo >= 0 && b.cdf(lo as u64) >= p {
        lo = (lo - 4 * width).max(-1);
    }
    while (hi as u64) < n && b.cdf(hi as u64) < p {
        hi = (hi + 4 * width).min(n as i64);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if b.cdf(mid as u64) >= p {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi as u64
}

/// Count, mean and the central moment sums `M_p = sum (x - mean)^p`, `p = 2, 4`, of a
/// sample: what the mean, the standard deviation and their standard errors need.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
    m4: f64,
}

impl Moments {
    /// The moments of `xs` (two passes, in order; the first sums deviations from the first
    /// value, so that equal values give exactly that value and a zero spread).
    pub fn of(xs: impl Iterator<Item = f64> + Clone) -> Self {
        let mut first = xs.clone();
        let Some(shift) = first.next() else {
            return Self::default();
        };
        let (count, sum) = xs
            .clone()
            .fold((0.0, 0.0), |(c, s), x| (c + 1.0, s + (x - shift)));
        let mean = shift + sum / count;
        let (m2, m4) = xs.fold((0.0, 0.0), |(m2, m4), x| {
            let d = x - mean;
            let d2 = d * d;
            (m2 + d2, m4 + d2 * d2)
        });
        Self {
            n: count,
            mean,
            m2,
            m4,
        }
    }

    /// The moments of `n` values from their power sums about `shift`:
    /// `s[p - 1] = sum (x - shift)^p`, `p = 1..4` (central moments by the binomial
    /// expansion, the third power sum unused; with `shift` a value of the sample, equal values give exactly that
    /// value and a zero spread).
    pub fn from_power_sums(n: u64, shift: f64, s: [f64; 4]) -> Self {
        if n == 0 {
            return Self::default();
        }
        let nf = n as f64;
        let d = s[0] / nf;
        let d2 = d * d;
        Self {
            n: nf,
            mean: shift + d,
            m2: (s[1] - nf * d2).max(0.0),
            m4: (s[3] - 4.0 * d * s[2] + 6.0 * d2 * s[1] - 3.0 * nf * d2 * d2).max(0.0),
        }
    }

    /// The mean with its standard error `sd / sqrt(n)`, and the standard deviation with
    /// its standard error by the delta method: `Var(s^2) ~ (mu4 - sigma^4) / n`,
    /// `se(s) = se(s^2) / 2s`.
    pub fn estimates(&self) -> (Estimate, Estimate) {
        let nf = self.n;
        let var = if nf > 1.0 { self.m2 / (nf - 1.0) } else { 0.0 };
        let sd = var.sqrt();
        let mu4 = self.m4 / nf;
        let sd_se = if sd > 0.0 {
            ((mu4 - var * var).max(0.0) / nf).sqrt() / (2.0 * sd)
        } else {
            0.0
        };
        (
            Estimate::normal(self.mean, sd / nf.sqrt()),
            Estimate::normal(sd, sd_se),
        )
    }
}

/// What `summary.csv` is computed from besides the tails: moments and counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SummaryInputs {
    /// Paths.
    pub n: u64,
    /// Net return.
    pub net_return: Moments,
    /// Excess return over plain staking.
    pub excess_return: Moments,
    /// Slashing loss, base income, AVS fees, token value, depeg loss, and a levered
    /// position's liquidation loss, borrow cost and bad debt, ETH.
    pub eth: [Moments; 8],
    /// Paths with `net_return < -ROUNDING_TOLERANCE`.
    pub losses: u64,
    /// Paths with `excess_return < -ROUNDING_TOLERANCE`.
    pub underperforms: u64,
    /// Paths with a positive slashing loss.
    pub slashed: u64,
    /// Paths liquidated at least once.
    pub liquidated: u64,
    /// Paths with `L > x` for each `[report]` threshold `x`.
    pub beyond: Vec<u64>,
}

impl SummaryInputs {
    /// The inputs of `outcomes`, with the counts beyond each of `loss_thresholds`.
    pub fn of(outcomes: &[PathOutcome], loss_thresholds: &[f64]) -> Self {
        let count =
            |f: &dyn Fn(&PathOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
        let eth = |f: fn(&PathOutcome) -> f64| Moments::of(outcomes.iter().map(f));
        Self {
            n: outcomes.len() as u64,
            net_return: Moments::of(outcomes.iter().map(|o| o.net_return)),
            excess_return: Moments::of(outcomes.iter().map(|o| o.excess_return)),
            eth: [
                eth(|o| o.slashing_loss_eth),
                eth(|o| o.base_income_eth),
                eth(|o| o.avs_fee_income_eth),
                eth(|o| o.incentive_value_eth),
                eth(|o| o.depeg_loss_eth),
                eth(|o| o.liquidation_loss_eth),
                eth(|o| o.borrow_cost_eth),
                eth(|o| o.bad_debt_eth),
            ],
            losses: count(&|o| o.net_return < -ROUNDING_TOLERANCE),
            underperforms: count(&|o| o.excess_return < -ROUNDING_TOLERANCE),
            slashed: count(&|o| o.slashing_loss_eth > 0.0),
            liquidated: count(&|o| o.liquidations > 0),
            beyond: loss_thresholds
                .iter()
                .map(|x| count(&|o| -o.net_return > *x))
                .collect(),
        }
    }
}

/// Equal-width histogram over `[lo, hi]` of values `x` with their counts; a value is
/// counted in bin `floor((x - lo) / w)` (a value below `lo` in the first), the maximum in
/// the last bin.
pub(crate) fn equal_bins(xs: impl Iterator<Item = (f64, u64)>, lo: f64, hi: f64) -> Vec<Bin> {
    let width = (hi - lo) / HISTOGRAM_BINS as f64;
    let mut bins: Vec<Bin> = (0..HISTOGRAM_BINS)
        .map(|i| Bin {
            lower: lo + width * i as f64,
            upper: if i + 1 == HISTOGRAM_BINS {
                hi
            } else {
                lo + width * (i + 1) as f64
            },
            paths: 0,
        })
        .collect();
    for (x, count) in xs {
        // The cast saturates: a value below `lo` (a sketch bucket's middle) goes to bin 0.
        let i = (((x - lo) / width) as usize).min(HISTOGRAM_BINS - 1);
        bins[i].paths += count;
    }
    bins
}

/// Empirical VaR and ES at one level, with what the Euler allocation needs.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    pub(crate) var: Estimate,
    pub(crate) es: Estimate,
    /// The loss at the boundary rank `ceil(m)`.
    pub(crate) boundary: f64,
    /// Paths fully in the tail: the first `count_gt` of the descending order.
    pub(crate) count_gt: usize,
    /// Paths tied at the boundary value: the next `count_eq`.
    pub(crate) count_eq: usize,
    /// Weight of each tied path (their weights sum to `m - count_gt`).
    pub(crate) tied_weight: f64,
    /// `m = n (1 - alpha)`.
    pub(crate) m: f64,
}

/// What the tail of the loss at one level is estimated from: a sample of losses that can
/// tell the value at a rank (from the largest) and, of the losses above a value, their
/// count, sum and sum of squares, and the count equal to it.
pub(crate) trait TailSource {
    /// Why it cannot answer.
    type Error;
    /// The loss at 1-based `rank` from the largest.
    fn at(&self, rank: u64) -> Result<f64, Self::Error>;
    /// `(count above v, sum above, sum of squares above, count equal to v)`.
    fn around(&self, v: f64) -> Result<(u64, f64, f64, u64), Self::Error>;
}

/// The largest losses in descending order: all `n`, or as many as the ranks need.
impl TailSource for [f64] {
    type Error = std::convert::Infallible;

    fn at(&self, rank: u64) -> Result<f64, Self::Error> {
        Ok(self[rank as usize - 1])
    }

    fn around(&self, v: f64) -> Result<(u64, f64, f64, u64), Self::Error> {
        let gt = self.partition_point(|&x| x > v);
        let eq = self.partition_point(|&x| x >= v) - gt;
        let above = &self[..gt];
        Ok((
            gt as u64,
            above.iter().sum(),
            above.iter().map(|x| x * x).sum(),
            eq as u64,
        ))
    }
}

/// VaR and ES of the loss at `myriad / 10,000` over `n` paths of `source`
/// (`docs/model.md#statistics`).
///
/// ES is the Acerbi–Tasche tail mean: the worst `m = n (1 - alpha)` losses, the boundary
/// value weighted by its fraction; paths tied at the boundary share that weight equally.
/// Its standard error is the asymptotic one of Manistre and Hancock (2005, *North
/// American Actuarial Journal* 9(2)): `Var(ES^) ~ [Var(L | L >= VaR) + alpha (ES - VaR)^2]
/// / (n (1 - alpha))`, the tail variance from the sums above the boundary, and its
/// interval `ES ± 1.96 se`. VaR's interval is the distribution-free one of
/// [`order_statistic_ranks`].
///
/// # Errors
/// The source's, when it cannot tell a value the estimate needs.
pub(crate) fn tail<S: TailSource + ?Sized>(
    source: &S,
    n: u64,
    myriad: u32,
) -> Result<Tail, S::Error> {
    let nz = n as usize;
    let alpha = f64::from(myriad) / 10_000.0;
    let m_num = n * u64::from(10_000 - myriad);
    let m = m_num as f64 / 10_000.0;
    // The worst ceil(m) positions reach the boundary.
    let v = source.at(m_num.div_ceil(10_000).max(1))?;
    let (count_gt, sum_gt, sum_sq_gt, count_eq) = source.around(v)?;
    let tied_total = m - count_gt as f64;
    let es = (sum_gt + tied_total * v) / m;
    let k = count_gt as f64;
    let tail_var = ((sum_sq_gt - 2.0 * es * sum_gt + k * es * es).max(0.0)
        + tied_total * (v - es).powi(2))
        / m;
    // The k-th smallest of n is the (n - k + 1)-th largest.
    let from_top = |rank: usize| source.at(n + 1 - rank as u64);
    let var_value = from_top(quantile_rank(nz, myriad))?;
    let (r, s) = order_statistic_ranks(nz, alpha);
    let (var_lo, var_hi) = (from_top(r)?, from_top(s)?);
    let es_se = ((tail_var + alpha * (es - var_value).powi(2)) / m).sqrt();
    Ok(Tail {
        var: Estimate {
            value: var_value,
            std_error: (var_hi - var_lo) / (2.0 * Z_95),
            ci_low: var_lo,
            ci_high: var_hi,
        },
        es: Estimate::normal(es, es_se),
        boundary: v,
        count_gt: count_gt as usize,
        count_eq: count_eq as usize,
        tied_weight: tied_total / count_eq as f64,
        m,
    })
}

/// [`tail`] of the largest losses in descending order (they cannot fail to answer).
pub(crate) fn sorted_tail(desc: &[f64], n: usize, myriad: u32) -> Tail {
    match tail(desc, n as u64, myriad) {
        Ok(t) => t,
        Err(never) => match never {},
    }
}

/// Paths at or beyond the VaR of each tail (those within `desc` when ties run past it).
pub(crate) fn tail_paths(desc: &[f64], tails: &[Tail]) -> [u64; 4] {
    let counts: Vec<u64> = tails
        .iter()
        .map(|t| desc.partition_point(|&x| x >= t.var.value) as u64)
        .collect();
    counts.try_into().expect("four tail levels")
}

/// The `myriad / 10,000` quantiles of `xs` (consumed: reordered in place), by successive
/// selection; `levels` ascending.
fn select_quantiles(xs: &mut [f64], levels: &[u32]) -> Vec<f64> {
    let n = xs.len();
    let mut from = 0;
    levels
        .iter()
        .map(|&q| {
            let k = quantile_rank(n, q) - 1;
            let (_, x, _) = xs[from..].select_nth_unstable_by(k - from, f64::total_cmp);
            let x = *x;
            from = k;
            x
        })
        .collect()
}

/// The rows of `summary.csv` from its inputs and the tails of the loss at
/// [`TAIL_LEVELS`]; `loss_thresholds` name the `prob_loss_gt_<x>` rows; `leveraged`
/// adds the rows of a levered position.
pub(crate) fn summary_metrics(
    inputs: &SummaryInputs,
    tails: &[Tail],
    loss_thresholds: &[f64],
    leveraged: bool,
) -> Vec<Metric> {
    let nu = inputs.n;
    let mut summary = Vec::new();
    let mut push = |id: MetricId, estimate: Estimate| summary.push(Metric { id, estimate });
    let (mean_r, sd_r) = inputs.net_return.estimates();
    let (mean_x, sd_x) = inputs.excess_return.estimates();
    push(MetricId::MeanNetReturn, mean_r);
    push(MetricId::SdNetReturn, sd_r);
    push(MetricId::MeanExcessReturn, mean_x);
    push(MetricId::SdExcessReturn, sd_x);
    push(MetricId::ProbLoss, Estimate::proportion(inputs.losses, nu));
    push(
        MetricId::ProbUnderperform,
        Estimate::proportion(inputs.underperforms, nu),
    );
    for (l, t) in TAIL_LEVELS.iter().zip(tails) {
        push(MetricId::Var(*l), t.var);
    }
    for (l, t) in TAIL_LEVELS.iter().zip(tails) {
        push(MetricId::Es(*l), t.es);
    }
    for (id, m) in [
        MetricId::ExpectedSlashingLossEth,
        MetricId::MeanBaseIncomeEth,
        MetricId::MeanAvsFeeIncomeEth,
        MetricId::MeanIncentiveValueEth,
        MetricId::MeanDepegLossEth,
    ]
    .into_iter()
    .zip(&inputs.eth)
    {
        push(id, m.estimates().0);
    }
    push(
        MetricId::ProbSlashingLoss,
        Estimate::proportion(inputs.slashed, nu),
    );
    if leveraged {
        push(
            MetricId::ProbLiquidation,
            Estimate::proportion(inputs.liquidated, nu),
        );
        for (id, m) in [
            MetricId::ExpectedLiquidationLossEth,
            MetricId::MeanBorrowCostEth,
            MetricId::ExpectedBadDebtEth,
        ]
        .into_iter()
        .zip(&inputs.eth[5..])
        {
            push(id, m.estimates().0);
        }
    }
    for (x, k) in loss_thresholds.iter().zip(&inputs.beyond) {
        push(MetricId::ProbLossGt(*x), Estimate::proportion(*k, nu));
    }
    summary
}

/// The headline rows of [`CONVERGENCE_METRICS`] out of a summary, for `paths` paths.
pub(crate) fn convergence_rows(paths: u64, summary: &[Metric]) -> Vec<ConvergenceRow> {
    CONVERGENCE_METRICS
        .iter()
        .map(|id| ConvergenceRow {
            paths,
            metric: summary
                .iter()
                .find(|x| x.id == *id)
                .expect("convergence metrics are summary metrics")
                .clone(),
        })
        .collect()
}

/// The path counts of the convergence report for `n` paths: `n / d` for each divisor of
/// [`CONVERGENCE_DIVISORS`], without empty or repeated prefixes.
pub fn convergence_sizes(n: u64) -> Vec<u64> {
    let mut sizes: Vec<u64> = CONVERGENCE_DIVISORS
        .iter()
        .map(|d| n / d)
        .filter(|m| *m > 0)
        .collect();
    sizes.dedup();
    sizes
}

/// The convergence report: each metric of [`CONVERGENCE_METRICS`] over the first
/// `N / d` paths for each divisor `d` of [`CONVERGENCE_DIVISORS`]; the row for all `N`
/// paths is taken from `summary`.
fn convergence(outcomes: &[PathOutcome], summary: &[Metric]) -> Vec<ConvergenceRow> {
    let n = outcomes.len() as u64;
    let mut rows = Vec::new();
    for m in convergence_sizes(n) {
        if m == n {
            rows.extend(convergence_rows(m, summary));
        } else {
            let prefix = &outcomes[..m as usize];
            let mut desc: Vec<f64> = prefix.iter().map(|o| -o.net_return).collect();
            desc.par_sort_unstable_by(|a, b| b.total_cmp(a));
            let tails: Vec<Tail> = TAIL_LEVELS
                .iter()
                .map(|&l| sorted_tail(&desc, prefix.len(), l))
                .collect();
            let inputs = SummaryInputs::of(prefix, &[]);
            rows.extend(convergence_rows(
                m,
                &summary_metrics(&inputs, &tails, &[], false),
            ));
        }
    }
    rows
}

/// Computes every statistic of `docs/model.md#statistics` from every path of a run kept in memory,
/// by sorting: the brute-force reference that the validation tests hold
/// [`crate::reduce`] (what runs use) to.
///
/// `loss_thresholds` are the `[report]` levels `x` of `P(L > x)`.
///
/// # Panics
/// If `paths` is empty.
pub fn analyse(model: &Model, paths: &PathSet, loss_thresholds: &[f64]) -> Results {
    let outcomes = &paths.outcomes;
    let n = outcomes.len();
    assert!(n > 0, "a run has at least one path");
    let nu = n as u64;
    let principal = model.principal_eth;

    // Losses in descending order, with their path index (ties by ascending index).
    let mut order: Vec<(f64, u32)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (-o.net_return, i as u32))
        .collect();
    order.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let desc: Vec<f64> = order.iter().map(|p| p.0).collect();
    let tails: Vec<Tail> = TAIL_LEVELS
        .iter()
        .map(|&l| sorted_tail(&desc, n, l))
        .collect();
    let summary = summary_metrics(
        &SummaryInputs::of(outcomes, loss_thresholds),
        &tails,
        loss_thresholds,
        model.leverage.is_some(),
    );
    let tail_paths = tail_paths(&desc, &tails);
    let convergence = convergence(outcomes, &summary);

    // Quantiles of R = -L: the q-quantile of R is minus the loss at descending rank.
    let quantiles = QUANTILE_LEVELS
        .iter()
        .map(|&q| {
            let qf = f64::from(q) / 10_000.0;
            let k = quantile_rank(n, q);
            let (r, s) = order_statistic_ranks(n, qf);
            let r_at = |rank: usize| -desc[rank - 1];
            QuantileRow {
                probability: qf,
                net_return: r_at(k),
                ci_low: r_at(r),
                ci_high: r_at(s),
            }
        })
        .collect();

    // Distributions.
    let slash_frac = || outcomes.iter().map(|o| o.slashing_loss_eth / principal);
    let zero_paths = slash_frac().filter(|x| *x <= 0.0).count() as u64;
    let max_loss = slash_frac().fold(0.0, f64::max);
    let upper = if max_loss > 0.0 { max_loss } else { 0.01 };
    let mut loss_bins = vec![Bin {
        lower: 0.0,
        upper: 0.0,
        paths: zero_paths,
    }];
    loss_bins.extend(equal_bins(
        slash_frac().filter(|x| *x > 0.0).map(|x| (x, 1)),
        0.0,
        upper,
    ));
    let (r_lo, r_hi) = (-desc[0], -desc[n - 1]);
    let r_hi = if r_hi > r_lo { r_hi } else { r_lo + 1e-9 };
    let return_distribution = Histogram {
        bins: equal_bins(outcomes.iter().map(|o| (o.net_return, 1)), r_lo, r_hi),
        total: nu,
    };

    let (contributions, avs_contributions, operator_contributions) =
        split_rows(contributions(model, paths, &order, &tails));

    let fan_chart = model
        .checkpoints_days
        .par_iter()
        .enumerate()
        .map(|(c, &day)| {
            let mut column: Vec<f64> = paths
                .checkpoint_values
                .chunks_exact(paths.checkpoints)
                .map(|v| v[c])
                .collect();
            let q = select_quantiles(&mut column, &FAN_LEVELS);
            FanRow {
                day,
                values: q.try_into().expect("seven levels"),
            }
        })
        .collect();

    Results {
        paths: nu,
        summary,
        quantiles,
        loss_distribution: Histogram {
            bins: loss_bins,
            total: nu,
        },
        return_distribution,
        contributions,
        avs_contributions,
        operator_contributions,
        fan_chart,
        tail_paths,
        convergence,
        sketch_resolution: None,
    }
}

/// The contributions table split into the source rows, the AVS rows and the operator
/// rows.
pub(crate) fn split_rows(
    all: Vec<Contribution>,
) -> (Vec<Contribution>, Vec<Contribution>, Vec<Contribution>) {
    let of_kind = |pick: &dyn Fn(ContributionKind) -> bool| -> Vec<Contribution> {
        all.iter().filter(|c| pick(c.row.kind)).cloned().collect()
    };
    (
        of_kind(&|k| k != ContributionKind::Avs && k != ContributionKind::Operator),
        of_kind(&|k| k == ContributionKind::Avs),
        of_kind(&|k| k == ContributionKind::Operator),
    )
}

/// Start of each path's entries in `set.row_losses` (CSR index, one more than paths).
pub(crate) fn row_index(set: &PathSet) -> Vec<usize> {
    let n = set.outcomes.len();
    let mut start = vec![0usize; n + 1];
    for e in &set.row_losses {
        start[e.path as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    start
}

/// What a path adds to the non-slashing contribution rows: its depeg loss and its base
/// income, AVS fees and token value (ETH).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OtherRows {
    pub(crate) depeg: f64,
    pub(crate) income: [f64; 3],
}

impl OtherRows {
    pub(crate) fn of(o: &PathOutcome) -> Self {
        Self {
            depeg: o.depeg_loss_eth,
            income: [
                o.base_income_eth,
                o.avs_fee_income_eth,
                o.incentive_value_eth,
            ],
        }
    }
}

/// Adds one path's loss per contribution row, times `w`, into `acc`: its slashing rows
/// `(row, ETH)`, its depeg, and its three income streams as negative losses.
pub(crate) fn add_path_loss(
    model: &Model,
    acc: &mut [f64],
    rows: impl Iterator<Item = (u32, f64)>,
    other: OtherRows,
    w: f64,
) {
    for (row, loss) in rows {
        acc[row as usize] += w * loss;
    }
    acc[model.depeg_row] += w * other.depeg;
    for (k, income) in other.income.iter().enumerate() {
        acc[model.income_row + k] -= w * income;
    }
}

/// Total loss per contribution row over `outcomes`, in path order, and the number of
/// paths where each row had an event (a non-vetoed slash, a depeg, or any income).
/// `row_losses` are those paths' slashing rows, their path indices counting from
/// `first`.
pub(crate) fn row_totals(
    model: &Model,
    outcomes: &[PathOutcome],
    row_losses: &[RowLoss],
    first: usize,
) -> (Vec<f64>, Vec<u64>) {
    let rows = model.rows.len();
    let mut sums = vec![0.0; rows];
    let mut next = 0;
    for (p, o) in outcomes.iter().enumerate() {
        let mut end = next;
        while end < row_losses.len() && row_losses[end].path as usize == first + p {
            end += 1;
        }
        let path_rows = row_losses[next..end].iter().map(|e| (e.row, e.loss_eth));
        add_path_loss(model, &mut sums, path_rows, OtherRows::of(o), 1.0);
        next = end;
    }
    let mut events = vec![0u64; rows];
    for e in row_losses {
        events[e.row as usize] += 1;
    }
    let count = |f: &dyn Fn(&PathOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    events[model.depeg_row] = count(&|o| o.depeg_loss_eth > 0.0);
    events[model.income_row + Model::ROW_BASE_INCOME] = count(&|o| o.base_income_eth != 0.0);
    events[model.income_row + Model::ROW_AVS_FEES] = count(&|o| o.avs_fee_income_eth != 0.0);
    events[model.income_row + Model::ROW_TOKENS] = count(&|o| o.incentive_value_eth != 0.0);
    (sums, events)
}

/// The contributions table from each row's total loss and event count over `n` paths
/// and its ES allocation at each tail level (`es_rows[level][row]`).
pub(crate) fn contribution_rows(
    model: &Model,
    sums: &[f64],
    events: &[u64],
    n: u64,
    es_rows: &[Vec<f64>],
) -> Vec<Contribution> {
    model
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| Contribution {
            row: row.clone(),
            event_probability: events[r] as f64 / n as f64,
            expected_loss_eth: sums[r] / n as f64,
            es_contribution_eth: [es_rows[0][r], es_rows[1][r], es_rows[2][r], es_rows[3][r]],
        })
        .collect()
}

/// Expected loss and Euler ES allocation per contribution row (`docs/model.md#statistics`): the mean
/// of each row's loss over the same weighted worst paths that define ES, so that the
/// rows add up to `ES × P` (the accounting identity of §5).
fn contributions(
    model: &Model,
    paths: &PathSet,
    order: &[(f64, u32)],
    tails: &[Tail],
) -> Vec<Contribution> {
    let start = row_index(paths);
    let add = |acc: &mut [f64], p: usize, w: f64| {
        let path_rows = paths.row_losses[start[p]..start[p + 1]]
            .iter()
            .map(|e| (e.row, e.loss_eth));
        add_path_loss(model, acc, path_rows, OtherRows::of(&paths.outcomes[p]), w);
    };
    let (sums, events) = row_totals(model, &paths.outcomes, &paths.row_losses, 0);
    let es_rows: Vec<Vec<f64>> = tails
        .iter()
        .map(|t| {
            let mut acc = vec![0.0; model.rows.len()];
            for &(_, p) in order.iter().take(t.count_gt) {
                add(&mut acc, p as usize, 1.0);
            }
            for &(_, p) in order.iter().skip(t.count_gt).take(t.count_eq) {
                add(&mut acc, p as usize, t.tied_weight);
            }
            acc.iter().map(|x| x / t.m).collect()
        })
        .collect();
    contribution_rows(model, &sums, &events, paths.outcomes.len() as u64, &es_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_labels() {
        let labels: Vec<String> = TAIL_LEVELS.iter().map(|l| level_label(*l)).collect();
        assert_eq!(labels, ["95", "975", "99", "999"]);
    }

    #[test]
    fn tail_mean_weights_the_boundary_path() {
        // n = 10, alpha = 0.95: m = 0.5, the worst value weighted 1/2 → ES = worst value.
        let xs: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let t = sorted_tail(&xs, 10, 9500);
        assert_eq!(t.es.value, 10.0);
        assert_eq!(t.var.value, 10.0); // ceil(9.5) = 10th smallest
        // alpha = 0.75 on n = 10: m = 2.5 → (10 + 9 + 0.5 × 8) / 2.5 = 9.2
        let t = sorted_tail(&xs, 10, 7500);
        assert!((t.es.value - 9.2).abs() < 1e-12);
        assert_eq!(t.var.value, 8.0);
    }

    #[test]
    fn ties_at_the_boundary_share_the_weight() {
        // 0,0,...,0 (8 zeros), 5, 5: alpha = 0.85, m = 1.5 → (5 + 0.5 × 5) / 1.5 = 5.
        let mut xs = vec![5.0, 5.0];
        xs.extend([0.0; 8]);
        let t = sorted_tail(&xs, 10, 8500);
        assert_eq!(t.count_gt, 0);
        assert_eq!(t.count_eq, 2);
        assert!((t.tied_weight - 0.75).abs() < 1e-15);
        assert!((t.es.value - 5.0).abs() < 1e-15);
    }

    #[test]
    fn wilson_interval_contains_the_estimate() {
        let e = Estimate::proportion(0, 100);
        assert_eq!(e.value, 0.0);
        assert_eq!(e.ci_low, 0.0);
        assert!(e.ci_high > 0.03 && e.ci_high < 0.04); // Wilson upper for 0/100: 0.037
        let e = Estimate::proportion(50, 100);
        assert!((e.ci_low - 0.4038).abs() < 1e-3 && (e.ci_high - 0.5962).abs() < 1e-3);
    }

    #[test]
    fn binomial_quantiles_match_the_library_search() {
        for (n, q) in [
            (1usize, 0.5),
            (10, 0.95),
            (1000, 0.5),
            (20_000, 0.001),
            (3_000_000, 0.975),
        ] {
            let b = Binomial::new(q, n as u64).unwrap();
            for p in [0.025, 0.975] {
                assert_eq!(
                    binomial_quantile(&b, n as u64, q, p),
                    b.inverse_cdf(p),
                    "{n} {q} {p}"
                );
            }
        }
    }

    #[test]
    fn order_statistic_interval_covers_the_median_rank() {
        let (r, s) = order_statistic_ranks(1000, 0.5);
        // Binomial(1000, 0.5): 2.5% and 97.5% quantiles are 469 and 531.
        assert_eq!((r, s), (469, 532));
    }

    #[test]
    fn successive_selection_matches_sorting() {
        let mut xs: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        let q = select_quantiles(&mut xs, &FAN_LEVELS);
        for (l, v) in FAN_LEVELS.iter().zip(q) {
            assert_eq!(v, sorted[quantile_rank(1000, *l) - 1]);
        }
    }
}
