//! What `restake-mc sweep` prints: a line per grid point.

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
            "  {:<40} VaR 99 {:>8.3}%  ES 99 {:>8.3}%  P(underperform) {:>7.3}%\n",
            job.grid_label(m),
            100.0 * metric(MetricId::Var(9900)),
            100.0 * metric(MetricId::Es(9900)),
            100.0 * metric(MetricId::ProbUnderperform),
        ));
    }
    text.push_str(&format!("wrote {}\n", written.display()));
    text
}
