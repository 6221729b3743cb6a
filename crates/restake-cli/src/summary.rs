//! The short human summary of a run, for the terminal: what was run, the headline
//! metrics with their 95% intervals in % and in ETH, and where the tail loss comes from,
//! with rows that add up to ES 99.

use std::fmt::Write as _;

use restake_core::scenario::Route;
use restake_core::stats::{Contribution, MetricId, TAIL_LEVELS};
use restake_core::{ContributionKind, DAYS_PER_YEAR, Estimate, Results, RunConfig, Scenario};
use restake_report::{contribution_label as label, metric_label};

fn pct(x: f64) -> String {
    format!("{:.3}%", 100.0 * x)
}

/// An estimate in % with its 95% interval.
fn pct_ci(e: &Estimate) -> String {
    format!(
        "{}  [95% CI {} .. {}]",
        pct(e.value),
        pct(e.ci_low),
        pct(e.ci_high)
    )
}

/// An estimate in ETH with its 95% interval.
fn eth_ci(e: &Estimate, scale: f64) -> String {
    format!(
        "{:.4} ETH  [95% CI {:.4} .. {:.4}]",
        scale * e.value,
        scale * e.ci_low,
        scale * e.ci_high
    )
}

/// Index of ES 99 in the contributions' `es_contribution_eth` (TAIL_LEVELS order).
const ES_99: usize = 2;

/// Renders the summary: what was run, the headline metrics, and the contributions to
/// ES 99 (in ETH): the three largest sources, the rest and the income, which add up to
/// ES 99 × principal; the three largest AVSs and operators.
pub fn render(
    origin: &str,
    scenario: &Scenario,
    config: &RunConfig,
    threads: usize,
    elapsed_seconds: f64,
    results: &Results,
) -> String {
    let spec = scenario.spec();
    let pos = &spec.position;
    let principal = pos.principal_eth;
    let mut s = String::new();
    let metric = |id: MetricId| results.metric(id).expect("summary metric present");
    let route = match pos.route {
        Route::Native => "native",
        Route::Liquid => "liquid",
    };
    let _ = writeln!(
        s,
        "{} ({origin}): {} paths, seed {}, {} thread(s), {:.2} s",
        spec.name, config.paths, config.seed, threads, elapsed_seconds
    );
    let _ = writeln!(
        s,
        "  position: {principal} ETH, route = \"{route}\", horizon {} days",
        pos.horizon_days
    );
    if let Some(lev) = &spec.leverage {
        let _ = writeln!(
            s,
            "  loan: {}x leverage, so {} ETH of collateral and {} ETH of debt at {} a year; returns are on the {principal} ETH of equity",
            lev.leverage,
            lev.leverage * pos.principal_eth,
            (lev.leverage - 1.0) * pos.principal_eth,
            pct(lev.borrow_apr)
        );
    }
    let _ = writeln!(
        s,
        "  returns and losses are over the {}-day horizon, as fractions of the principal; \"a year\" scales a mean by 365 / {} (simple, like the APRs it comes from)",
        pos.horizon_days, pos.horizon_days
    );
    let per_year = DAYS_PER_YEAR / pos.horizon_days;
    for id in [MetricId::MeanNetReturn, MetricId::MeanExcessReturn] {
        let e = metric(id);
        let _ = writeln!(
            s,
            "  {:<34} {}  = {} a year",
            metric_label(&id),
            pct_ci(e),
            pct(e.value * per_year)
        );
    }
    for id in [
        MetricId::ProbLoss,
        MetricId::ProbSlashingLoss,
        MetricId::ProbUnderperform,
    ] {
        let _ = writeln!(s, "  {:<34} {}", metric_label(&id), pct_ci(metric(id)));
    }
    let _ = writeln!(
        s,
        "    (a path underperforms when it ends below the same path staked plainly: same base APR, no AVS, no LRT)"
    );
    let _ = writeln!(
        s,
        "  loss at a level (VaR) and mean loss beyond it (ES), of principal and in ETH (negative: a gain):"
    );
    for level in TAIL_LEVELS {
        for id in [MetricId::Var(level), MetricId::Es(level)] {
            let e = metric(id);
            let _ = writeln!(
                s,
                "    {:<32} {}  = {}",
                metric_label(&id),
                pct_ci(e),
                eth_ci(e, principal)
            );
        }
    }
    let id = MetricId::ExpectedSlashingLossEth;
    let _ = writeln!(s, "  {:<34} {}", metric_label(&id), eth_ci(metric(id), 1.0));
    if spec.leverage.is_some() {
        let id = MetricId::ProbLiquidation;
        let _ = writeln!(s, "  {:<34} {}", metric_label(&id), pct_ci(metric(id)));
        for id in [
            MetricId::ExpectedLiquidationLossEth,
            MetricId::MeanBorrowCostEth,
            MetricId::ExpectedBadDebtEth,
        ] {
            let _ = writeln!(s, "  {:<34} {}", metric_label(&id), eth_ci(metric(id), 1.0));
        }
    }

    // Contributions to ES 99: the largest sources, the rest, the income: they add up.
    let es99 = metric(MetricId::Es(9900)).value * principal;
    let mut sources: Vec<&Contribution> = results
        .contributions
        .iter()
        .filter(|c| c.row.kind != ContributionKind::Income)
        .collect();
    sources.sort_by(|a, b| b.es_contribution_eth[ES_99].total_cmp(&a.es_contribution_eth[ES_99]));
    let _ = writeln!(
        s,
        "  where the ES 99 loss comes from (ETH; income counts against it):"
    );
    let row = |s: &mut String, text: &str, es: f64, expected: Option<f64>| {
        let expected = expected.map_or(String::new(), |x| format!("   expected loss {x:.6} ETH"));
        let _ = writeln!(s, "    {text:<56} {es:>12.6} ETH{expected}");
    };
    for c in sources.iter().take(3) {
        row(
            &mut s,
            &label(c),
            c.es_contribution_eth[ES_99],
            Some(c.expected_loss_eth),
        );
    }
    if sources.len() > 3 {
        let rest = &sources[3..];
        row(
            &mut s,
            &format!("the other {} sources", rest.len()),
            rest.iter().map(|c| c.es_contribution_eth[ES_99]).sum(),
            Some(rest.iter().map(|c| c.expected_loss_eth).sum()),
        );
    }
    for c in results
        .contributions
        .iter()
        .filter(|c| c.row.kind == ContributionKind::Income)
    {
        row(&mut s, &label(c), c.es_contribution_eth[ES_99], None);
    }
    row(&mut s, "total = ES 99 x principal", es99, None);
    for (title, rows) in [
        ("by AVS (slashing only)", &results.avs_contributions),
        (
            "by operator (slashing only)",
            &results.operator_contributions,
        ),
    ] {
        let mut rows: Vec<&Contribution> = rows.iter().collect();
        rows.sort_by(|a, b| b.es_contribution_eth[ES_99].total_cmp(&a.es_contribution_eth[ES_99]));
        let _ = writeln!(s, "  {title}, the largest three:");
        for c in rows.iter().take(3) {
            row(
                &mut s,
                &label(c),
                c.es_contribution_eth[ES_99],
                Some(c.expected_loss_eth),
            );
        }
    }
    s
}
