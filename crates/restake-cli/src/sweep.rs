//! What `restake-mc sweep` and `restake-mc stress` print: a line per grid point or
//! stress.

use std::path::Path;

use restake_core::Results;
use restake_core::stats::MetricId;
use restake_run::Job;

/// The lines printed after a sweep.
pub fn render(job: &Job, results: &[Results], written: &Path) -> String {
    let first = &job.members[0];
    let mut text = format!(
        "{} grid points of {}, seed {}{}:\n",
        job.members.len(),
        first.origin,
        first.config.seed,
        if job.coupled {
            ", coupled path by path"
        } else {
            ""
        }
    );
    for (m, r) in job.members.iter().zip(results) {
        let metric = |id: MetricId| r.metric(id).expect("summary metric").value;
        text.push_str(&format!(
            "  {:<40} VaR 99 {:>8.3}%  ES 99 {:>8.3}%  P(underperform) {:>7.3}%{}\n",
            job.grid_label(m),
            100.0 * metric(MetricId::Var(9900)),
            100.0 * metric(MetricId::Es(9900)),
            100.0 * metric(MetricId::ProbUnderperform),
            liquidation(r),
        ));
    }
    text.push_str(&format!("wrote {}", written.display()));
    if job.parameters.len() == 1 {
        text.push_str(" and its chart, sweep.png and sweep.svg");
    }
    text.push('\n');
    text
}

/// `  P(liquidation) x%` for a levered scenario's results, else nothing.
fn liquidation(r: &Results) -> String {
    r.metric(MetricId::ProbLiquidation)
        .map_or(String::new(), |e| {
            format!("  P(liquidation) {:>7.3}%", 100.0 * e.value)
        })
}

/// The lines printed after stress tests: each stress's headline figures beside the
/// base's, and the change of ES 99.
pub fn render_stress(job: &Job, results: &[Results], out: &Path) -> String {
    let first = &job.members[0];
    let metric = |r: &Results, id: MetricId| r.metric(id).expect("summary metric").value;
    let base_es = metric(&results[0], MetricId::Es(9900));
    let mut text = format!(
        "{} stress test(s) of {} on the base's random numbers, {} paths, seed {}:\n  {:<28} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
        job.members.len() - 1,
        first.origin,
        first.config.paths,
        first.config.seed,
        "stress",
        "mean",
        "P(loss)",
        "VaR 99",
        "ES 99",
        "ES 99 - base",
    );
    for (m, r) in job.members.iter().zip(results) {
        let es = metric(r, MetricId::Es(9900));
        text.push_str(&format!(
            "  {:<28} {:>8.3}% {:>8.3}% {:>8.3}% {:>8.3}% {:>+9.3}%{}\n",
            m.stress_name(),
            100.0 * metric(r, MetricId::MeanNetReturn),
            100.0 * metric(r, MetricId::ProbLoss),
            100.0 * metric(r, MetricId::Var(9900)),
            100.0 * es,
            100.0 * (es - base_es),
            liquidation(r),
        ));
    }
    text.push_str(&format!(
        "  (returns and losses are fractions of the principal over the horizon)\nwrote stress.csv and a folder per stress to {}\n",
        out.display()
    ));
    text
}
