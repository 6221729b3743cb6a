//! `report.html`: one self-contained page (no script, no external file) for a reader
//! who will not open the CSVs: what was run, the headline figures in % and ETH with
//! their 95% intervals, where the loss comes from, the plots, the convergence of the
//! estimates, and the values the scenario file marks as assumptions.

use std::fmt::Write as _;

use restake_core::scenario::{ExitMode, Route, StakeMode};
use restake_core::stats::{CONVERGENCE_METRICS, Contribution, MetricId, TAIL_LEVELS, Unit};
use restake_core::{ContributionKind, DAYS_PER_YEAR, Estimate, Results};

use crate::{RunInfo, contribution_label, level_percent, metric_label};

/// Escapes text for HTML (element content and quoted attributes).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(x: f64) -> String {
    format!("{:.3}%", 100.0 * x)
}

/// `n` with thin spaces between groups of three digits: 1 000 000.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

fn eth(x: f64) -> String {
    format!("{x:.4}")
}

/// `[low, high]` of an estimate, each through `f`.
fn interval(e: &Estimate, f: impl Fn(f64) -> String) -> String {
    format!("[{}, {}]", f(e.ci_low), f(e.ci_high))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
table.facts td,table.facts th{text-align:left}tr.total td{font-weight:bold;border-top:2px solid #888}\
p.note{color:#555;max-width:60em}figure{margin:1.5em 0}figcaption{color:#555}\
footer{margin-top:3em;color:#777;font-size:90%}";

/// Renders `report.html` for `results` of the run described by `info`, with the
/// `(caption, SVG)` plots inline.
pub(crate) fn report_html(results: &Results, info: &RunInfo, plots: &[(&str, &str)]) -> String {
    let spec = &info.scenario;
    let title = escape(&spec.name);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>restake-mc: {title}</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>{title}</h1>\n"
    );
    if !spec.description.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"description\">{}</p>",
            escape(&spec.description)
        );
    }
    facts(&mut h, results, info);
    headline(&mut h, results, info);
    contributions(&mut h, results, info);
    let _ = writeln!(h, "<h2 id=\"plots\">Plots</h2>");
    for (caption, svg) in plots {
        let _ = writeln!(
            h,
            "<figure>{svg}<figcaption>{}</figcaption></figure>",
            escape(caption)
        );
    }
    convergence(&mut h, results);
    assumptions(&mut h, info);
    let _ = writeln!(
        h,
        "<footer><p>Generator: {}. Seeding: {}.</p><p>Statistics: {}. Intervals at {}%.</p></footer>\n</body></html>",
        escape(&info.generator),
        escape(&info.seeding),
        escape(&info.statistics),
        100.0 * info.interval_level
    );
    h
}

/// The position and the run: what the figures are about and how to reproduce them.
fn facts(h: &mut String, results: &Results, info: &RunInfo) {
    let spec = &info.scenario;
    let pos = &spec.position;
    let route = match (pos.route, &spec.liquid) {
        (Route::Native, _) => "native (own validators, restaked)".to_string(),
        (Route::Liquid, Some(l)) => format!(
            "liquid (a liquid restaking token), {}",
            match l.exit {
                ExitMode::Redeem => "redeemed with the protocol at the horizon",
                ExitMode::Market => "sold on the market at the horizon",
            }
        ),
        (Route::Liquid, None) => "liquid".to_string(),
    };
    let stake_mode = match pos.stake_mode {
        StakeMode::Unique => "unique (each AVS slashes only its own allocation)",
        StakeMode::Shared => "shared (the whole stake backs every AVS)",
    };
    let names = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            format!("{}: {}", v.len(), escape(&v.join(", ")))
        }
    };
    let version = info.crate_versions.first().map_or("?", |(_, v)| v.as_str());
    let loan = spec.leverage.as_ref().map_or_else(
        || "none".to_string(),
        |l| {
            let oracle = match l.oracle {
                restake_core::leverage::Oracle::ExchangeRate => "the exchange rate",
                restake_core::leverage::Oracle::Market => "the market price",
            };
            format!(
                "{}x: {} ETH of collateral, {} ETH of debt at {}% a year; liquidation threshold {}%, bonus {}%, close factor {}% (all below a health factor of {}); the oracle is {oracle}. Returns are on the {} ETH of equity.",
                l.leverage,
                l.leverage * pos.principal_eth,
                (l.leverage - 1.0) * pos.principal_eth,
                100.0 * l.borrow_apr,
                100.0 * l.liquidation_threshold,
                100.0 * l.liquidation_bonus,
                100.0 * l.close_factor,
                l.full_close_below_hf,
                pos.principal_eth
            )
        },
    );
    let rows = [
        ("Principal", format!("{} ETH", pos.principal_eth)),
        ("Route", route),
        ("Loan", loan),
        ("Stake mode", stake_mode.to_string()),
        (
            "Horizon",
            format!(
                "{} days ({:.3} years)",
                pos.horizon_days,
                pos.horizon_days / DAYS_PER_YEAR
            ),
        ),
        (
            "Operators",
            names(spec.operators.iter().map(|o| o.name.as_str()).collect()),
        ),
        (
            "AVSs",
            names(spec.avs.iter().map(|a| a.name.as_str()).collect()),
        ),
        ("Paths", thousands(results.paths)),
        ("Seed", info.seed.to_string()),
        (
            "Simulated in",
            format!(
                "{} shard(s) on {} thread(s) (neither changes a number)",
                info.shards, info.threads
            ),
        ),
        ("Scenario file", escape(&info.scenario_file)),
        (
            "Stress test",
            info.stress
                .as_deref()
                .map_or_else(|| "none: the scenario as written".to_string(), escape),
        ),
        ("restake-mc version", escape(version)),
        ("Created (UTC)", escape(&info.created_utc)),
    ];
    let _ = writeln!(
        h,
        "<h2 id=\"position\">Position and run</h2>\n<table class=\"facts\">"
    );
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    let _ = writeln!(h, "</table>");
}

/// The headline figures: every summary metric in % of principal and in ETH, with its
/// 95% interval and standard error.
fn headline(h: &mut String, results: &Results, info: &RunInfo) {
    let pos = &info.scenario.position;
    let principal = pos.principal_eth;
    let _ = writeln!(
        h,
        "<h2 id=\"headline\">Headline figures</h2>\n<p class=\"note\">Returns and losses are over the {d}-day horizon, as a share of the principal of {principal} ETH (not annualised, except where a row says so). VaR at a level is the loss not exceeded with that probability; ES is the mean loss beyond it; both are losses, so a negative value is a gain. A path <em>underperforms</em> when it ends below the same path staked plainly: the same base APR and beacon-chain slashings, no AVS, no restaking income, no LRT. Every figure carries its 95% interval (Wilson for probabilities, order statistics for VaR, the normal approximation for means and ES) and its standard error.</p>",
        d = pos.horizon_days
    );
    let _ = writeln!(
        h,
        "<table id=\"headline-table\"><tr><th>figure</th><th>estimate</th><th>95% interval</th><th>in ETH</th><th>95% interval (ETH)</th><th>std error</th></tr>"
    );
    let per_year = DAYS_PER_YEAR / pos.horizon_days;
    let mut row = |label: String, e: &Estimate, unit: Unit| {
        // Of principal, and in ETH (none for a probability).
        let (of_principal, eth_per_unit) = match unit {
            Unit::Fraction => (1.0, Some(principal)),
            Unit::Probability => (1.0, None),
            Unit::Eth => (1.0 / principal, Some(1.0)),
        };
        let share = |x: f64| pct(x * of_principal);
        let (in_eth, eth_interval) = eth_per_unit.map_or((String::new(), String::new()), |k| {
            let f = |x: f64| eth(x * k);
            (f(e.value), interval(e, f))
        });
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{in_eth}</td><td>{eth_interval}</td><td>{}</td></tr>",
            escape(&label),
            share(e.value),
            interval(e, share),
            share(e.std_error)
        );
    };
    for m in &results.summary {
        row(metric_label(&m.id), &m.estimate, m.id.unit());
        if m.id == MetricId::MeanNetReturn {
            let e = &m.estimate;
            let scaled = Estimate {
                value: e.value * per_year,
                std_error: e.std_error * per_year,
                ci_low: e.ci_low * per_year,
                ci_high: e.ci_high * per_year,
            };
            row(
                format!(
                    "{}, a year (simple: x 365 / {})",
                    metric_label(&m.id),
                    pos.horizon_days
                ),
                &scaled,
                Unit::Fraction,
            );
        }
    }
    let _ = writeln!(h, "</table>");
}

/// The contribution tables: by source (with the income rows and a total equal to
/// `E[L] P` and `ES P`), by AVS and by operator, largest ES 99 first.
fn contributions(h: &mut String, results: &Results, info: &RunInfo) {
    let principal = info.scenario.position.principal_eth;
    let es_99 = TAIL_LEVELS
        .iter()
        .position(|&l| l == 9900)
        .expect("99% is a tail level");
    let header: String = TAIL_LEVELS
        .iter()
        .map(|&l| format!("<th>ES {} share (ETH)</th>", level_percent(l)))
        .collect();
    let by_es = |rows: &[Contribution]| {
        let mut v: Vec<Contribution> = rows.to_vec();
        v.sort_by(|a, b| b.es_contribution_eth[es_99].total_cmp(&a.es_contribution_eth[es_99]));
        v
    };
    let table = |h: &mut String,
                 first: &str,
                 rows: &[Contribution],
                 total: Option<(f64, [f64; 4])>| {
        let _ = writeln!(
            h,
            "<table><tr><th>{first}</th><th>P(event)</th><th>expected loss (ETH)</th>{header}</tr>"
        );
        for c in rows {
            let es: String = c
                .es_contribution_eth
                .iter()
                .map(|x| format!("<td>{}</td>", eth(*x)))
                .collect();
            let p = if c.row.kind == ContributionKind::Income {
                String::new()
            } else {
                pct(c.event_probability)
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{p}</td><td>{}</td>{es}</tr>",
                escape(&contribution_label(c)),
                eth(c.expected_loss_eth)
            );
        }
        if let Some((expected, es)) = total {
            let es: String = es.iter().map(|x| format!("<td>{}</td>", eth(*x))).collect();
            let _ = writeln!(
                h,
                "<tr class=\"total\"><td>total = loss x principal</td><td></td><td>{}</td>{es}</tr>",
                eth(expected)
            );
        }
        let _ = writeln!(h, "</table>");
    };
    let _ = writeln!(
        h,
        "<h2 id=\"contributions\">Where the loss comes from</h2>\n<p class=\"note\">Each source's expected loss and its share of each ES (the Euler allocation: its mean loss over the same worst paths that define the ES), in ETH. Income counts against the loss, so it enters with a negative sign, and the rows add up to the total: the expected loss and the ES times the principal. P(event) is the share of paths on which the source struck at least once.</p>"
    );
    let (risks, income): (Vec<Contribution>, Vec<Contribution>) = results
        .contributions
        .iter()
        .cloned()
        .partition(|c| c.row.kind != ContributionKind::Income);
    let mut rows = by_es(&risks);
    rows.extend(income);
    let metric = |id| results.metric(id).expect("a summary metric").value;
    let expected = -metric(MetricId::MeanNetReturn) * principal;
    let es = TAIL_LEVELS.map(|l| metric(MetricId::Es(l)) * principal);
    table(h, "source", &rows, Some((expected, es)));
    let _ = writeln!(
        h,
        "<h3>By AVS (slashing only: its slashings, its incidents and the operator faults that went through it)</h3>"
    );
    table(h, "AVS", &by_es(&results.avs_contributions), None);
    let _ = writeln!(
        h,
        "<h3>By operator (slashing only: every loss of its stake, its share of an exploit included)</h3>"
    );
    table(h, "operator", &by_es(&results.operator_contributions), None);
}

/// The headline metrics over growing prefixes of the paths (`convergence.csv`): each
/// cell the estimate and the half-width of its 95% interval.
fn convergence(h: &mut String, results: &Results) {
    let mut paths: Vec<u64> = results.convergence.iter().map(|r| r.paths).collect();
    paths.dedup();
    let _ = writeln!(
        h,
        "<h2 id=\"convergence\">Convergence</h2>\n<p class=\"note\">The headline figures over the first 1/16, 1/8, 1/4, 1/2 and all of the paths (in batch order), each as estimate &plusmn; the half-width of its 95% interval: the intervals should shrink like one over the square root of the paths, and the estimates stay within them.</p>\n<table id=\"convergence-table\"><tr><th>figure</th>{}</tr>",
        paths
            .iter()
            .map(|n| format!("<th>{} paths</th>", thousands(*n)))
            .collect::<String>()
    );
    for id in CONVERGENCE_METRICS {
        let cells: String = paths
            .iter()
            .map(|n| {
                results
                    .convergence
                    .iter()
                    .find(|r| r.paths == *n && r.metric.id == id)
                    .map_or("<td></td>".into(), |r| {
                        let e = &r.metric.estimate;
                        let half = (e.ci_high - e.ci_low) / 2.0;
                        match id.unit() {
                            Unit::Eth => {
                                format!("<td>{} &plusmn; {}</td>", eth(e.value), eth(half))
                            }
                            _ => format!("<td>{} &plusmn; {}</td>", pct(e.value), pct(half)),
                        }
                    })
            })
            .collect();
        let _ = writeln!(h, "<tr><td>{}</td>{cells}</tr>", escape(&metric_label(&id)));
    }
    let _ = writeln!(h, "</table>");
}

/// The values the scenario file marks `ASSUMPTION`.
fn assumptions(h: &mut String, info: &RunInfo) {
    let _ = writeln!(h, "<h2 id=\"assumptions\">Assumptions</h2>");
    if info.assumptions.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">The scenario file marks no value as an assumption.</p>"
        );
        return;
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">These {} values are marked <code>ASSUMPTION</code> in {}: the author's judgement, not data. The figures above are only as good as they are; a sweep (<code>restake-mc sweep --set FIELD=VALUES</code>) shows how much each one matters.</p>\n<table id=\"assumptions-table\" class=\"facts\"><tr><th>field</th><th>value</th><th>note</th></tr>",
        info.assumptions.len(),
        escape(&info.scenario_file)
    );
    for a in &info.assumptions {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&a.field),
            escape(&a.value),
            escape(&a.note)
        );
    }
    let _ = writeln!(h, "</table>");
}
