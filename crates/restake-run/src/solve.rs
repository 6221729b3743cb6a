//! Reverse stress (`restake-mc solve`, `docs/model.md#stress-tests`): the value of one
//! coupled parameter (an event or veto probability, or a loan's term such as its
//! leverage) at which a `summary.csv` metric reaches a target, by bisection on
//! common random numbers, with a 95% interval from the metric's own intervals.

use restake_core::reduce::reduce_range;
use restake_core::{Model, Results, RunConfig, Scenario};
use restake_report::Solution;

use crate::job::{Overrides, Source, check_threads, set_value, without_coupled_parameters};
use crate::{RunError, ShardPlan};

/// Default range of the parameter: probabilities from 0 to 0.99.
pub const DEFAULT_WITHIN: (f64, f64) = (0.0, 0.99);

/// Bisection stops when its bracket is narrower than this share of the range.
const RELATIVE_TOLERANCE: f64 = 1e-4;

/// What `solve` is asked.
#[derive(Debug, Clone)]
pub struct SolveSpec {
    /// The scenario.
    pub base: Source,
    /// The parameter, a field path as in `sweep --set`.
    pub vary: String,
    /// `METRIC=VALUE`.
    pub target: String,
    /// The parameter's range, [`DEFAULT_WITHIN`] when not given.
    pub within: Option<(f64, f64)>,
}

/// The metric of one evaluation: estimate and interval.
#[derive(Debug, Clone, Copy)]
struct Point {
    value: f64,
    std_error: f64,
    ci_low: f64,
    ci_high: f64,
}

/// Parses `LO:HI` for `--within`.
///
/// # Errors
/// [`RunError::BadInput`] unless two finite numbers with `LO < HI`.
pub fn parse_within(text: &str) -> Result<(f64, f64), RunError> {
    let bad = || {
        RunError::BadInput(format!(
            "--within {text}: expected LO:HI with LO < HI, e.g. 0:0.2"
        ))
    };
    let (lo, hi) = text.split_once(':').ok_or_else(bad)?;
    let (lo, hi): (f64, f64) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok((lo, hi))
    } else {
        Err(bad())
    }
}

/// Solves `spec` on `threads` threads; `progress` gets each evaluation's parameter
/// value. Every evaluation runs the scenario with the parameter set, coupled with the
/// two ends of the range (`docs/model.md#sweeps`), on the same seed: the metric is then
/// monotone in the parameter path by path, and bisection finds where it crosses the
/// target. The interval is where the metric's 95% interval contains the target: the
/// crossings of its two ends.
///
/// # Errors
/// [`RunError::BadInput`] for a parameter that is not an event or veto probability or a
/// loan's term, a range the scenario refuses, an unknown metric, or a target the metric
/// does not reach within the range (naming its values at both ends).
pub fn solve(
    spec: &SolveSpec,
    overrides: Overrides,
    threads: usize,
    progress: &dyn Fn(f64),
) -> Result<Solution, RunError> {
    check_threads(threads)?;
    let scenario = spec.base.scenario()?;
    let (metric, target) = spec
        .target
        .rsplit_once('=')
        .map(|(m, v)| (m.trim().to_string(), v.trim().parse::<f64>()))
        .and_then(|(m, v)| v.ok().filter(|v| v.is_finite()).map(|v| (m, v)))
        .ok_or_else(|| {
            RunError::BadInput(format!(
                "--target {}: expected METRIC=VALUE, e.g. es_99=0.25",
                spec.target
            ))
        })?;
    let (lo, hi) = spec.within.unwrap_or(DEFAULT_WITHIN);
    let at = |x: f64| -> Result<Scenario, RunError> {
        let s = set_value(scenario.spec(), &spec.vary, x)?;
        Scenario::try_from(s)
            .map_err(|e| RunError::BadInput(format!("--vary {} = {x}: {e}", spec.vary)))
    };
    let (s_lo, s_hi) = (at(lo)?, at(hi)?);
    let (m_lo, m_hi) = (Model::new(&s_lo), Model::new(&s_hi));
    if without_coupled_parameters(s_lo.spec()) != without_coupled_parameters(s_hi.spec()) {
        return Err(RunError::BadInput(format!(
            "--vary {}: solve varies an event or veto probability or a loan's term, which couple the runs path by path so that the metric is monotone in it (docs/model.md#sweeps); this field is not one",
            spec.vary
        )));
    }
    let sim = scenario.spec().simulation.clone();
    let config = RunConfig {
        paths: overrides.paths.unwrap_or(sim.paths),
        seed: overrides.seed.unwrap_or(sim.seed),
        threads,
    };
    restake_core::scenario::check_paths("--paths", config.paths)
        .map_err(|e| RunError::BadInput(e.to_string()))?;
    let thresholds = scenario.spec().report.loss_thresholds.clone();
    let evaluations = std::cell::Cell::new(0usize);
    let evaluate = |x: f64| -> Result<Point, RunError> {
        progress(x);
        evaluations.set(evaluations.get() + 1);
        let mut models = vec![Model::new(&at(x)?), m_lo.clone(), m_hi.clone()];
        if !Model::couple(&mut models) {
            return Err(RunError::BadInput(format!(
                "--vary {}: the runs cannot be coupled",
                spec.vary
            )));
        }
        let model = models.swap_remove(0);
        let fail = |e: restake_core::ScenarioError| RunError::BadInput(e.to_string());
        let partial = reduce_range(
            &model,
            &config,
            ShardPlan::WHOLE.range(config.paths),
            &thresholds,
            &|_| {},
        )
        .map_err(fail)?;
        let results: Results = partial.finish(&model, &thresholds).map_err(fail)?;
        let m = results
            .summary
            .iter()
            .find(|m| m.id.name() == metric)
            .ok_or_else(|| {
                let names: Vec<String> = results.summary.iter().map(|m| m.id.name()).collect();
                RunError::BadInput(format!(
                    "--target {}: no metric {metric:?} in summary.csv (one of {})",
                    spec.target,
                    names.join(", ")
                ))
            })?;
        let e = m.estimate;
        Ok(Point {
            value: e.value,
            std_error: e.std_error,
            ci_low: e.ci_low,
            ci_high: e.ci_high,
        })
    };
    let (f_lo, f_hi) = (evaluate(lo)?, evaluate(hi)?);
    let increasing = f_hi.value >= f_lo.value;
    let reached = |p: &Point| {
        if increasing {
            p.value >= target
        } else {
            p.value <= target
        }
    };
    if reached(&f_lo) || !reached(&f_hi) {
        return Err(RunError::BadInput(format!(
            "--target {}: not reached within {lo}:{hi}: {metric} is {} at {} = {lo} and {} at {hi} (widen --within, or choose another target)",
            spec.target, f_lo.value, spec.vary, f_hi.value
        )));
    }
    // The smallest x in [lo, hi] (to the tolerance) at which `crossed` holds, with the
    // metric there: `lo` when it holds already there, `hi` when it never does.
    let bisect = |crossed: &dyn Fn(&Point) -> bool, at_lo: &Point, at_hi: &Point| {
        if crossed(at_lo) {
            return Ok::<_, RunError>((lo, *at_lo));
        }
        if !crossed(at_hi) {
            return Ok((hi, *at_hi));
        }
        let (mut a, mut b, mut pb) = (lo, hi, *at_hi);
        while b - a > RELATIVE_TOLERANCE * (hi - lo) {
            let mid = 0.5 * (a + b);
            let p = evaluate(mid)?;
            if crossed(&p) {
                (b, pb) = (mid, p);
            } else {
                a = mid;
            }
        }
        Ok((b, pb))
    };
    let (value, point) = bisect(&reached, &f_lo, &f_hi)?;
    // Where the metric's interval first and last contains the target.
    let upper_reaches = |p: &Point| {
        if increasing {
            p.ci_high >= target
        } else {
            p.ci_low <= target
        }
    };
    let lower_reaches = |p: &Point| {
        if increasing {
            p.ci_low >= target
        } else {
            p.ci_high <= target
        }
    };
    let (ci_low, _) = bisect(&upper_reaches, &f_lo, &f_hi)?;
    let (ci_high, _) = bisect(&lower_reaches, &f_lo, &f_hi)?;
    Ok(Solution {
        parameter: spec.vary.clone(),
        value,
        ci_low: ci_low.min(value),
        ci_high: ci_high.max(value),
        metric,
        target,
        metric_at_value: point.value,
        metric_std_error: point.std_error,
        paths: config.paths,
        seed: config.seed,
        evaluations: evaluations.get(),
    })
}
