//! The short human summary of a run, for the terminal.

use std::fmt::Write as _;

use restake_core::stats::{Contribution, MetricId};
use restake_core::{ContributionKind, Estimate, Results, RunConfig, Scenario};

fn pct(x: f64) -> String {
    format!("{:.3}%", 100.0 * x)
}

fn with_ci(e: &Estimate) -> String {
    format!(
        "{}  [95% CI {} .. {}]",
        pct(e.value),
        pct(e.ci_low),
        pct(e.ci_high)
    )
}

/// Renders the summary: headline metrics with intervals, and the 3 largest
/// contributors to ES 99 among the risk sources, the AVSs and the operators.
pub fn render(
    origin: &str,
    scenario: &Scenario,
    config: &RunConfig,
    threads: usize,
    elapsed_seconds: f64,
    results: &Results,
) -> String {
    let spec = scenario.spec();
    let mut s = String::new();
    let metric = |id: MetricId| results.metric(id).expect("summary metric present");
    let _ = writeln!(
        s,
        "{} ({origin}): {} paths, seed {}, {} thread(s), {:.2} s",
        spec.name, config.paths, config.seed, threads, elapsed_seconds
    );
    let _ = writeln!(
        s,
        "  principal {} ETH, {:?}, {} days",
        spec.position.principal_eth, spec.position.route, spec.position.horizon_days
    );
    let rows = [
        ("mean net return", MetricId::MeanNetReturn),
        ("mean excess over plain staking", MetricId::MeanExcessReturn),
        ("P(loss)", MetricId::ProbLoss),
        ("P(underperform plain staking)", MetricId::ProbUnderperform),
        ("VaR 99 (loss, of principal)", MetricId::Var(9900)),
        ("ES 99 (loss, of principal)", MetricId::Es(9900)),
        ("VaR 99.9", MetricId::Var(9990)),
        ("ES 99.9", MetricId::Es(9990)),
    ];
    for (label, id) in rows {
        let _ = writeln!(s, "  {label:<32} {}", with_ci(metric(id)));
    }
    let slashing = metric(MetricId::ExpectedSlashingLossEth);
    let _ = writeln!(
        s,
        "  {:<32} {:.6} ETH ± {:.6}",
        "expected slashing loss", slashing.value, slashing.std_error
    );
    let sources: Vec<&Contribution> = results
        .contributions
        .iter()
        .filter(|c| c.row.kind != ContributionKind::Income)
        .collect();
    let groups = [
        ("top loss contributors", sources),
        ("by AVS", results.avs_contributions.iter().collect()),
        (
            "by operator",
            results.operator_contributions.iter().collect(),
        ),
    ];
    let _ = writeln!(
        s,
        "  {:<58} {:>16} {:>16}",
        "where the loss comes from", "ES 99 share", "expected loss"
    );
    for (title, mut rows) in groups {
        rows.sort_by(|a, b| b.es_contribution_eth[2].total_cmp(&a.es_contribution_eth[2]));
        let _ = writeln!(s, "  {title}:");
        for c in rows.iter().take(3) {
            let _ = writeln!(
                s,
                "    {:<56} {:>12.6} ETH {:>12.6} ETH",
                format!("{} {}", c.row.kind.as_str(), c.row.source),
                c.es_contribution_eth[2],
                c.expected_loss_eth
            );
        }
    }
    s
}
