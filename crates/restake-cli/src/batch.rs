//! What `restake-mc batch` prints: the comparison table of its scenarios.

use std::fmt::Write as _;
use std::path::Path;

use restake_core::Results;
use restake_core::stats::MetricId;
use restake_run::Job;

/// The comparison table printed after a batch.
pub fn render(job: &Job, results: &[Results], out: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<28} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "scenario", "paths", "mean return", "P(loss)", "P(under)", "VaR 99", "ES 99"
    );
    for (m, r) in job.members.iter().zip(results) {
        let pct = |id: MetricId| {
            format!(
                "{:.3}%",
                100.0 * r.metric(id).expect("summary metric").value
            )
        };
        let _ = writeln!(
            s,
            "{:<28} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}",
            m.scenario.spec().name,
            m.config.paths,
            pct(MetricId::MeanNetReturn),
            pct(MetricId::ProbLoss),
            pct(MetricId::ProbUnderperform),
            pct(MetricId::Var(9900)),
            pct(MetricId::Es(9900)),
        );
    }
    let _ = writeln!(
        s,
        "seed {} for every scenario; wrote {} scenario folders, batch_summary.csv, batch_metrics.csv and comparison.svg/.png to {}",
        job.members.first().map_or(0, |m| m.config.seed),
        job.members.len(),
        out.display()
    );
    s
}
