//! # restake-report
//!
//! Writers of restake-mc's output files (the README's "Output files"): each CSV is
//! rendered to any [`io::Write`], the plots and `report.html` in memory ([`plots`]); the
//! files of an output folder, a batch's tables and a sweep's table are rendered as
//! [`OutputFile`]s, which the run library writes (`restake_run::publish`).
//!
//! CSVs are RFC 4180 with a header row and LF line ends; text that a spreadsheet would
//! take for a formula is neutralised ([`text_cell`]); numbers are plain decimals
//! (Rust's shortest round-trip form, never an exponent), and a non-finite number is an
//! error rather than a `NaN` in a spreadsheet.

mod html;
pub mod plots;

use std::borrow::Cow;
use std::io::{self, Write};

use restake_core::stats::Contribution;
use restake_core::stats::{FAN_LEVELS, Histogram, MetricId, TAIL_LEVELS, level_label};
use restake_core::{Estimate, Results, ScenarioSpec};
use serde::Serialize;
use thiserror::Error;

/// Errors of the writers.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// File or folder being written.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A CSV record could not be written.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    /// A JSON document could not be written.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A plot could not be drawn or encoded.
    #[error("cannot draw a plot: {0}")]
    Plot(String),
    /// The workbook (`report.xlsx`) could not be built.
    #[error("cannot build report.xlsx: {0}")]
    Workbook(String),
    /// A value to write is NaN or infinite: a bug in the engine, never written out.
    #[error("{column} is not a finite number ({value})")]
    NonFinite {
        /// Column or field name.
        column: &'static str,
        /// The value.
        value: f64,
    },
}

/// Formats a number as a plain decimal.
///
/// # Errors
/// [`ReportError::NonFinite`] for NaN or infinity.
fn num(column: &'static str, x: f64) -> Result<String, ReportError> {
    if x.is_finite() {
        // Display of f64 is the shortest round-trip decimal, without exponent; -0 → 0.
        Ok(format!("{}", if x == 0.0 { 0.0 } else { x }))
    } else {
        Err(ReportError::NonFinite { column, value: x })
    }
}

/// How CSV files are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvStyle {
    /// UTF-8, LF line ends (RFC 4180 otherwise): for scripts.
    #[default]
    Plain,
    /// A UTF-8 byte-order mark and CRLF line ends, so that Excel opens the file on a
    /// double-click with the right encoding.
    Excel,
}

impl CsvStyle {
    /// [`CsvStyle::Excel`] when `excel` (the `--excel` flag), else [`CsvStyle::Plain`].
    pub fn for_excel(excel: bool) -> Self {
        if excel { Self::Excel } else { Self::Plain }
    }
}

/// Re-encodes LF-terminated CSV bytes for Excel: a UTF-8 byte-order mark, CRLF line ends
/// (line breaks inside quoted fields are kept as they are).
///
/// # Errors
/// [`ReportError::Csv`] if `lf_csv` is not valid CSV.
pub fn excel_csv(lf_csv: &[u8]) -> Result<Vec<u8>, ReportError> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(lf_csv);
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .flexible(true)
            .from_writer(&mut out);
        for record in reader.byte_records() {
            writer.write_byte_record(&record?)?;
        }
        writer
            .flush()
            .map_err(|source| io_error("an Excel CSV", source))?;
    }
    Ok(out)
}

/// A contribution row in words, for people (the CSVs keep `source` and `kind`):
/// `slashings by EigenDA`, `faults of operator X`, `income: AVS fees`, ...; a row of the
/// AVS or operator breakdowns is its name.
pub fn contribution_label(c: &Contribution) -> String {
    use restake_core::ContributionKind as Kind;
    let s = &c.row.source;
    match c.row.kind {
        Kind::AvsSlashing => format!("slashings by {s}"),
        Kind::AvsIncident => format!("incidents at {s}"),
        Kind::OperatorFault => format!("faults of operator {s}"),
        Kind::Beacon => format!("beacon-chain slashing of {s}"),
        Kind::ProtocolExploit => "protocol or LRT contract exploit".into(),
        Kind::Depeg => "LRT depeg at a market exit".into(),
        Kind::Income => match s.as_str() {
            "base_rewards" => "income: base staking rewards".into(),
            "avs_fees" => "income: AVS fees".into(),
            "token_incentives" => "income: token incentives".into(),
            other => format!("income: {other}"),
        },
        Kind::Liquidation => "liquidations of the loan".into(),
        Kind::BorrowCost => "interest on the loan".into(),
        Kind::BadDebt => "bad debt left to the lender".into(),
        Kind::Avs | Kind::Operator => s.clone(),
    }
}

/// A tail level in 1/10,000 as a reader writes it in percent: 9750 → `97.5`.
pub fn level_percent(level: u32) -> String {
    format!("{}", f64::from(level) / 100.0)
}

/// A metric's name for a reader (`summary.csv` has its id, [`MetricId::name`]): "mean
/// net return", "VaR 99", "P(underperform)", ...
pub fn metric_label(id: &MetricId) -> String {
    match id {
        MetricId::MeanNetReturn => "mean net return".into(),
        MetricId::SdNetReturn => "standard deviation of the net return".into(),
        MetricId::MeanExcessReturn => "mean excess over plain staking".into(),
        MetricId::SdExcessReturn => "standard deviation of the excess".into(),
        MetricId::ProbLoss => "P(loss)".into(),
        MetricId::ProbUnderperform => "P(underperform)".into(),
        MetricId::Var(l) => format!("VaR {}", level_percent(*l)),
        MetricId::Es(l) => format!("ES {}", level_percent(*l)),
        MetricId::ExpectedSlashingLossEth => "expected slashing loss".into(),
        MetricId::MeanBaseIncomeEth => "mean base staking rewards".into(),
        MetricId::MeanAvsFeeIncomeEth => "mean AVS fees".into(),
        MetricId::MeanIncentiveValueEth => "mean token incentives".into(),
        MetricId::MeanDepegLossEth => "mean depeg loss".into(),
        MetricId::ProbSlashingLoss => "P(any slashing loss)".into(),
        MetricId::ProbLiquidation => "P(liquidation)".into(),
        MetricId::ExpectedLiquidationLossEth => "expected liquidation loss".into(),
        MetricId::MeanBorrowCostEth => "mean borrow cost".into(),
        MetricId::ExpectedBadDebtEth => "expected bad debt (the lender's)".into(),
        // Rounded to 9 decimals of a percent, so that 0.07 reads 7, not 7.000000000000001.
        MetricId::ProbLossGt(x) => {
            format!("P(loss > {}% of principal)", (x * 1e11).round() / 1e9)
        }
    }
}

/// Whether a cell starting with `c` is one a spreadsheet runs as a formula (`=`, `+`,
/// `-`, `@`, a tab or a carriage return: OWASP's CSV-injection rule), or starts with the
/// `'` that neutralises one.
fn needs_quote(c: Option<char>) -> bool {
    matches!(c, Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\''))
}

/// A text cell as written to a CSV: one that a spreadsheet would run as a formula gets a
/// leading `'`, and so does one that starts with `'`, so that [`read_text_cell`] gives
/// back exactly the text. Numbers are never passed here.
pub fn text_cell(text: &str) -> Cow<'_, str> {
    if needs_quote(text.chars().next()) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The text of a cell written by [`text_cell`]: one leading `'` dropped when a formula
/// character or another `'` follows it.
pub fn read_text_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_quote(rest.chars().next()) => rest,
        _ => cell,
    }
}

fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(w)
}

/// The `value,std_error,ci_low,ci_high` fields of an estimate.
fn estimate_fields(e: &Estimate) -> Result<[String; 4], ReportError> {
    Ok([
        num("value", e.value)?,
        num("std_error", e.std_error)?,
        num("ci_low", e.ci_low)?,
        num("ci_high", e.ci_high)?,
    ])
}

/// `summary.csv`: `metric,value,std_error,ci_low,ci_high,unit`, one row per metric.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_summary<W: Write>(w: W, results: &Results) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    out.write_record(["metric", "value", "std_error", "ci_low", "ci_high", "unit"])?;
    for m in &results.summary {
        let mut record = vec![m.id.name()];
        record.extend(estimate_fields(&m.estimate)?);
        record.push(m.id.unit().as_str().to_string());
        out.write_record(&record)?;
    }
    out.flush()
        .map_err(|source| io_error("summary.csv", source))
}

/// `convergence.csv`: `paths,metric,value,std_error,ci_low,ci_high,ci_half_width,unit`,
/// the headline metrics over the first `N/16, N/8, N/4, N/2, N` paths; the half-width of
/// the 95% interval shrinking like `1/sqrt(paths)` says the run has settled.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_convergence<W: Write>(w: W, results: &Results) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    out.write_record([
        "paths",
        "metric",
        "value",
        "std_error",
        "ci_low",
        "ci_high",
        "ci_half_width",
        "unit",
    ])?;
    for row in &results.convergence {
        let (m, e) = (&row.metric, &row.metric.estimate);
        let mut record = vec![row.paths.to_string(), m.id.name()];
        record.extend(estimate_fields(e)?);
        record.push(num("ci_half_width", (e.ci_high - e.ci_low) / 2.0)?);
        record.push(m.id.unit().as_str().to_string());
        out.write_record(&record)?;
    }
    out.flush()
        .map_err(|source| io_error("convergence.csv", source))
}

/// `quantiles.csv`: `probability,net_return,ci_low,ci_high`.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_quantiles<W: Write>(w: W, results: &Results) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    out.write_record(["probability", "net_return", "ci_low", "ci_high"])?;
    for q in &results.quantiles {
        out.write_record([
            num("probability", q.probability)?,
            num("net_return", q.net_return)?,
            num("ci_low", q.ci_low)?,
            num("ci_high", q.ci_high)?,
        ])?;
    }
    out.flush()
        .map_err(|source| io_error("quantiles.csv", source))
}

/// A histogram: `bin_lower,bin_upper,paths,probability,cumulative_probability`.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_histogram<W: Write>(w: W, histogram: &Histogram) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    out.write_record([
        "bin_lower",
        "bin_upper",
        "paths",
        "probability",
        "cumulative_probability",
    ])?;
    let total = histogram.total as f64;
    let mut cumulative = 0u64;
    for b in &histogram.bins {
        cumulative += b.paths;
        out.write_record([
            num("bin_lower", b.lower)?,
            num("bin_upper", b.upper)?,
            b.paths.to_string(),
            num("probability", b.paths as f64 / total)?,
            num("cumulative_probability", cumulative as f64 / total)?,
        ])?;
    }
    out.flush().map_err(|source| io_error("histogram", source))
}

/// A contributions table (`contributions.csv` and its breakdowns by AVS and by
/// operator): `source,kind,event_probability,expected_loss_eth,es_95_contribution_eth,
/// es_975_contribution_eth,es_99_contribution_eth,es_999_contribution_eth`.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_contributions<W: Write>(w: W, rows: &[Contribution]) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    let mut header = vec![
        "source".to_string(),
        "kind".into(),
        "event_probability".into(),
        "expected_loss_eth".into(),
    ];
    header.extend(
        TAIL_LEVELS
            .iter()
            .map(|l| format!("es_{}_contribution_eth", level_label(*l))),
    );
    out.write_record(&header)?;
    for c in rows {
        let mut record = vec![
            text_cell(&c.row.source).into_owned(),
            c.row.kind.as_str().to_string(),
            num("event_probability", c.event_probability)?,
            num("expected_loss_eth", c.expected_loss_eth)?,
        ];
        for x in c.es_contribution_eth {
            record.push(num("es_contribution_eth", x)?);
        }
        out.write_record(&record)?;
    }
    out.flush()
        .map_err(|source| io_error("contributions.csv", source))
}

/// `fan_chart.csv`: `day,p01,p05,p25,p50,p75,p95,p99` of `V(t)/P`.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_fan_chart<W: Write>(w: W, results: &Results) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    let mut header = vec!["day".to_string()];
    header.extend(FAN_LEVELS.iter().map(|l| format!("p{:02}", l / 100)));
    out.write_record(&header)?;
    for row in &results.fan_chart {
        let mut record = vec![num("day", row.day)?];
        for v in row.values {
            record.push(num("fan_chart value", v)?);
        }
        out.write_record(&record)?;
    }
    out.flush()
        .map_err(|source| io_error("fan_chart.csv", source))
}

/// A scenario value its file marks as an assumption (a comment with `ASSUMPTION`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assumption {
    /// Its field path (`avs.EigenDA.slash_prob`, the grammar of `sweep --set`).
    pub field: String,
    /// Its value as written in the file (TOML).
    pub value: String,
    /// The comment's text after the mark; may be empty.
    pub note: String,
}

/// The run's record, `run.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// The scenario as parsed (defaults filled in).
    pub scenario: ScenarioSpec,
    /// The scenario's file as given, or the bundled preset's.
    pub scenario_file: String,
    /// The stress test these results are of (`[[stress]]`, by name, with what it
    /// forces); absent for the scenario itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stress: Option<String>,
    /// The values the scenario file marks as assumptions, in file order.
    pub assumptions: Vec<Assumption>,
    /// When the results were produced (the run, or the merge of its shards), UTC,
    /// RFC 3339 to the second.
    pub created_utc: String,
    /// Seed of the run.
    pub seed: u64,
    /// Paths simulated.
    pub paths: u64,
    /// Worker threads used (no effect on any number).
    pub threads: usize,
    /// Shards the run was simulated in and merged from (no effect on any number).
    pub shards: u64,
    /// The generator, by name.
    pub generator: String,
    /// How each batch's generator is seeded.
    pub seeding: String,
    /// Paths per batch.
    pub batch_paths: u64,
    /// Crate name → version.
    pub crate_versions: Vec<(String, String)>,
    /// Level of every interval (0.95).
    pub interval_level: f64,
    /// Equal-width bins of each distribution CSV.
    pub histogram_bins: usize,
    /// How the fan chart's quantiles are computed.
    pub fan_chart_resolution: String,
    /// What of the statistics is exact, and what is read from sketches.
    pub statistics: String,
    /// Wall time of the simulation and statistics, seconds.
    pub elapsed_seconds: f64,
}

/// Writes `run.json`.
///
/// # Errors
/// On a write error.
pub fn write_run_json<W: Write>(mut w: W, info: &RunInfo) -> Result<(), ReportError> {
    serde_json::to_writer_pretty(&mut w, info)?;
    writeln!(w).map_err(|source| io_error("run.json", source))
}

/// The files of an output folder, in the order they are written.
pub const OUTPUT_FILES: [&str; 10] = [
    "summary.csv",
    "quantiles.csv",
    "loss_distribution.csv",
    "return_distribution.csv",
    "contributions.csv",
    "contributions_by_avs.csv",
    "contributions_by_operator.csv",
    "fan_chart.csv",
    "convergence.csv",
    "run.json",
];

/// Columns of the CSVs that hold text, never a number (their cells are names, ids or
/// units, which [`render_workbook`] writes as text even when they look like numbers).
const TEXT_COLUMNS: [&str; 7] = [
    "scenario", "stress", "file", "source", "kind", "metric", "unit",
];

/// Sheet name of a CSV file: its stem, cut to Excel's 31 characters.
fn sheet_name(csv_name: &str) -> String {
    csv_name.trim_end_matches(".csv").chars().take(31).collect()
}

/// `report.xlsx` of an output folder, from its `files` (the `.csv` files and the `.png`
/// plots directly in it; files in subfolders are left to their own workbooks): one sheet
/// per CSV in the order given, with the CSV's header and typed cells (numbers as
/// numbers, `true`/`false` as booleans, text as text, read back from [`text_cell`]
/// unchanged, since a workbook cell is never a formula unless written as one), the header
/// row frozen; then a sheet `plots` with every PNG. A typed workbook opens the same in
/// every locale, unlike a CSV. Returns `None` when `files` holds no CSV.
///
/// # Errors
/// [`ReportError::Csv`] for a CSV that does not parse, [`ReportError::Workbook`] when the
/// workbook cannot be built.
pub fn render_workbook(files: &[OutputFile]) -> Result<Option<Vec<u8>>, ReportError> {
    use rust_xlsxwriter::{Format, Image, Workbook};
    let top = |name: &str| !name.contains('/');
    if !files.iter().any(|(n, _)| top(n) && n.ends_with(".csv")) {
        return Ok(None);
    }
    let xlsx = |e: rust_xlsxwriter::XlsxError| ReportError::Workbook(e.to_string());
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    for (name, bytes) in files.iter().filter(|(n, _)| top(n) && n.ends_with(".csv")) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
        let header: Vec<String> = reader.headers()?.iter().map(String::from).collect();
        let sheet = workbook.add_worksheet();
        sheet.set_name(sheet_name(name)).map_err(xlsx)?;
        for (c, h) in header.iter().enumerate() {
            sheet
                .write_string_with_format(0, c as u16, read_text_cell(h), &bold)
                .map_err(xlsx)?;
            sheet
                .set_column_width(c as u16, (h.len() as f64 + 2.0).clamp(10.0, 40.0))
                .map_err(xlsx)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
        for (r, record) in reader.records().enumerate() {
            let row = r as u32 + 1;
            for (c, cell) in record?.iter().enumerate() {
                let col = c as u16;
                let text_column = header
                    .get(c)
                    .is_some_and(|h| TEXT_COLUMNS.contains(&h.as_str()));
                match (text_column, cell.parse::<f64>(), cell) {
                    (false, Ok(x), _) if x.is_finite() => {
                        sheet.write_number(row, col, x).map_err(xlsx)?;
                    }
                    (false, _, "true" | "false") => {
                        sheet
                            .write_boolean(row, col, cell == "true")
                            .map_err(xlsx)?;
                    }
                    _ => {
                        sheet
                            .write_string(row, col, read_text_cell(cell))
                            .map_err(xlsx)?;
                    }
                }
            }
        }
    }
    let plots: Vec<&OutputFile> = files
        .iter()
        .filter(|(n, _)| top(n) && n.ends_with(".png"))
        .collect();
    if !plots.is_empty() {
        let sheet = workbook.add_worksheet();
        sheet.set_name("plots").map_err(xlsx)?;
        // One plot under the other, 30 rows apart (a plot is 540 pixels, 20 a row).
        for (i, (_, png)) in plots.iter().enumerate() {
            let image = Image::new_from_buffer(png).map_err(xlsx)?;
            sheet.insert_image(i as u32 * 30, 0, &image).map_err(xlsx)?;
        }
    }
    workbook.save_to_buffer().map(Some).map_err(xlsx)
}

/// Whether `name` is a file restake-mc writes into an output folder (a run's, a batch's
/// or a sweep's): [`OUTPUT_FILES`], the plots, `report.html`, the batch tables and chart,
/// `sweep.csv`, `stress.csv`, `solve.csv`. An existing folder holding only such files
/// (and batch member or stress folders of them) is one the run library may replace.
pub fn is_output_file_name(name: &str) -> bool {
    const OTHERS: [&str; 7] = [
        "report.html",
        "report.xlsx",
        "batch_summary.csv",
        "batch_metrics.csv",
        "sweep.csv",
        "stress.csv",
        "solve.csv",
    ];
    const CHARTS: [&str; 6] = [
        "loss_distribution",
        "return_distribution",
        "fan_chart",
        "contributions",
        "comparison",
        "sweep",
    ];
    OUTPUT_FILES.contains(&name)
        || OTHERS.contains(&name)
        || name
            .strip_suffix(".svg")
            .or_else(|| name.strip_suffix(".png"))
            .is_some_and(|stem| CHARTS.contains(&stem))
}

fn io_error(path: impl Into<String>, source: io::Error) -> ReportError {
    ReportError::Io {
        path: path.into(),
        source,
    }
}

fn render(name: &str, results: &Results, info: &RunInfo) -> Result<Vec<u8>, ReportError> {
    let mut buf = Vec::new();
    match name {
        "summary.csv" => write_summary(&mut buf, results)?,
        "quantiles.csv" => write_quantiles(&mut buf, results)?,
        "loss_distribution.csv" => write_histogram(&mut buf, &results.loss_distribution)?,
        "return_distribution.csv" => write_histogram(&mut buf, &results.return_distribution)?,
        "contributions.csv" => write_contributions(&mut buf, &results.contributions)?,
        "contributions_by_avs.csv" => write_contributions(&mut buf, &results.avs_contributions)?,
        "contributions_by_operator.csv" => {
            write_contributions(&mut buf, &results.operator_contributions)?
        }
        "fan_chart.csv" => write_fan_chart(&mut buf, results)?,
        "convergence.csv" => write_convergence(&mut buf, results)?,
        "run.json" => write_run_json(&mut buf, info)?,
        other => unreachable!("unknown output file {other}"),
    }
    Ok(buf)
}

/// A file of an output, in memory: its path relative to the output folder (`/` between
/// the parts of a batch member's file, e.g. `etherfi-weeth/summary.csv`) and its bytes.
pub type OutputFile = (String, Vec<u8>);

/// Renders every file of a run's output folder: [`OUTPUT_FILES`], the plots and
/// `report.html`, in that order, CSVs encoded in `style`.
///
/// # Errors
/// A rendering error ([`ReportError::NonFinite`], [`ReportError::Plot`], ...).
pub fn render_output_folder(
    results: &Results,
    info: &RunInfo,
    style: CsvStyle,
) -> Result<Vec<OutputFile>, ReportError> {
    let mut rendered = OUTPUT_FILES
        .iter()
        .map(|name| render(name, results, info).map(|bytes| (name.to_string(), bytes)))
        .collect::<Result<Vec<_>, _>>()?;
    rendered.extend(run_plots(results, info)?);
    encode(rendered, style)
}

/// A chart's SVG and PNG files.
fn chart_files<C: plots::Chart>(chart: &C) -> Result<[(String, Vec<u8>); 2], ReportError> {
    let (svg, png) = plots::render(chart)?;
    Ok([
        (format!("{}.svg", chart.stem()), svg.into_bytes()),
        (format!("{}.png", chart.stem()), png),
    ])
}

/// The plots of a run and its `report.html` (the plots inline as SVG, no external file).
fn run_plots(results: &Results, info: &RunInfo) -> Result<Vec<OutputFile>, ReportError> {
    let name = info.scenario.name.as_str();
    let mut files = Vec::new();
    files.extend(chart_files(&plots::LossDistribution(results, name))?);
    files.extend(chart_files(&plots::ReturnDistribution(results, name))?);
    files.extend(chart_files(&plots::FanChart(results, name))?);
    files.extend(chart_files(&plots::Contributions(results, name))?);
    let captions = [
        "Slashing loss over the horizon, as a share of the principal: the share of paths with no loss, then the distribution of the losses.",
        "Net return over the horizon: the distribution over all paths.",
        "Value over time, V(t)/P: the median and the 1-99%, 5-95% and 25-75% bands over all paths (the depeg only at the horizon).",
        "Contributions to the expected loss and to ES 99 by source, income counting against the loss.",
    ];
    let svgs: Vec<(&str, &str)> = files
        .iter()
        .filter(|(n, _)| n.ends_with(".svg"))
        .map(|(_, b)| std::str::from_utf8(b).expect("SVG is text"))
        .zip(captions)
        .map(|(svg, caption)| (caption, svg))
        .collect();
    let page = html::report_html(results, info, &svgs);
    files.push(("report.html".into(), page.into_bytes()));
    Ok(files)
}

/// Renders a batch's comparison chart: `comparison.svg` and `comparison.png`.
///
/// # Errors
/// [`ReportError::Plot`].
pub fn render_comparison(entries: &[BatchEntry]) -> Result<Vec<OutputFile>, ReportError> {
    let pairs: Vec<(&str, &Results)> = entries.iter().map(|e| (e.scenario, e.results)).collect();
    Ok(chart_files(&plots::Comparison(&pairs))?.into())
}

/// `files` with every `.csv` file encoded in `style`.
///
/// # Errors
/// [`ReportError::Csv`] for a `.csv` file that is not valid CSV when re-encoding for
/// Excel.
fn encode(files: Vec<OutputFile>, style: CsvStyle) -> Result<Vec<OutputFile>, ReportError> {
    files
        .into_iter()
        .map(|(name, bytes)| {
            let bytes = if style == CsvStyle::Excel && name.ends_with(".csv") {
                excel_csv(&bytes)?
            } else {
                bytes
            };
            Ok((name, bytes))
        })
        .collect()
}

/// One scenario of a batch: its name, file, path count, seed and results.
#[derive(Debug, Clone, Copy)]
pub struct BatchEntry<'a> {
    /// Scenario name (its output folder in the batch folder).
    pub scenario: &'a str,
    /// The scenario file it came from.
    pub file: &'a str,
    /// Paths simulated.
    pub paths: u64,
    /// Seed (the same for the whole batch).
    pub seed: u64,
    /// Its statistics.
    pub results: &'a Results,
}

/// Metrics of `batch_summary.csv`, each with its standard error.
pub const BATCH_SUMMARY_METRICS: [MetricId; 17] = [
    MetricId::MeanNetReturn,
    MetricId::SdNetReturn,
    MetricId::MeanExcessReturn,
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
    MetricId::MeanBaseIncomeEth,
    MetricId::MeanAvsFeeIncomeEth,
    MetricId::MeanIncentiveValueEth,
];

/// `batch_summary.csv`: one row per scenario, `scenario,file,paths,seed`, then for each
/// metric of [`BATCH_SUMMARY_METRICS`] its value and `<metric>_std_error`.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_batch_summary<W: Write>(w: W, entries: &[BatchEntry]) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    let mut header: Vec<String> = ["scenario", "file", "paths", "seed"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for m in BATCH_SUMMARY_METRICS {
        header.push(m.to_string());
        header.push(format!("{m}_std_error"));
    }
    out.write_record(&header)?;
    for e in entries {
        let mut record = vec![
            text_cell(e.scenario).into_owned(),
            text_cell(e.file).into_owned(),
            e.paths.to_string(),
            e.seed.to_string(),
        ];
        for m in BATCH_SUMMARY_METRICS {
            let estimate = e.results.metric(m).expect("summary metric present");
            record.push(num("value", estimate.value)?);
            record.push(num("std_error", estimate.std_error)?);
        }
        out.write_record(&record)?;
    }
    out.flush()
        .map_err(|source| io_error("batch_summary.csv", source))
}

/// `batch_metrics.csv`, long form: `scenario,metric,value,std_error,ci_low,ci_high,unit`,
/// every row of every scenario's `summary.csv`.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_batch_metrics<W: Write>(w: W, entries: &[BatchEntry]) -> Result<(), ReportError> {
    let rows: Vec<(&str, &Results)> = entries.iter().map(|e| (e.scenario, e.results)).collect();
    write_long_metrics(w, "batch_metrics.csv", "scenario", &rows)
}

/// `stress.csv`: `stress,metric,value,std_error,ci_low,ci_high,unit`, every row of
/// `summary.csv` for each `(name, results)` of `stresses`, the base scenario first as
/// `base` (`docs/model.md#stress-tests`).
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_stress_table<W: Write>(
    w: W,
    stresses: &[(&str, &Results)],
) -> Result<(), ReportError> {
    write_long_metrics(w, "stress.csv", "stress", stresses)
}

/// Renders `stress.csv`, encoded in `style`.
///
/// # Errors
/// A rendering error.
pub fn render_stress_table(
    stresses: &[(&str, &Results)],
    style: CsvStyle,
) -> Result<Vec<OutputFile>, ReportError> {
    let mut bytes = Vec::new();
    write_stress_table(&mut bytes, stresses)?;
    encode(vec![("stress.csv".into(), bytes)], style)
}

/// The answer of a reverse stress (`restake-mc solve`, `docs/model.md#stress-tests`).
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// The parameter varied, a field path.
    pub parameter: String,
    /// Its value at which the metric reaches the target.
    pub value: f64,
    /// Lower end of its 95% interval: where the metric's interval first admits the
    /// target.
    pub ci_low: f64,
    /// Upper end of its 95% interval.
    pub ci_high: f64,
    /// The metric, a `summary.csv` name.
    pub metric: String,
    /// The metric's target value.
    pub target: f64,
    /// The metric's estimate at `value`.
    pub metric_at_value: f64,
    /// Its standard error.
    pub metric_std_error: f64,
    /// Paths of each evaluation.
    pub paths: u64,
    /// Seed of every evaluation.
    pub seed: u64,
    /// Runs the bisections took.
    pub evaluations: usize,
}

/// `solve.csv`: `parameter,value,ci_low,ci_high,metric,target,paths,seed`, then
/// `metric_at_value,metric_std_error,evaluations`; one row.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_solve<W: Write>(w: W, s: &Solution) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    out.write_record([
        "parameter",
        "value",
        "ci_low",
        "ci_high",
        "metric",
        "target",
        "paths",
        "seed",
        "metric_at_value",
        "metric_std_error",
        "evaluations",
    ])?;
    out.write_record([
        text_cell(&s.parameter).into_owned(),
        num("value", s.value)?,
        num("ci_low", s.ci_low)?,
        num("ci_high", s.ci_high)?,
        s.metric.clone(),
        num("target", s.target)?,
        s.paths.to_string(),
        s.seed.to_string(),
        num("metric_at_value", s.metric_at_value)?,
        num("metric_std_error", s.metric_std_error)?,
        s.evaluations.to_string(),
    ])?;
    out.flush().map_err(|source| io_error("solve.csv", source))
}

/// Renders `solve.csv`, encoded in `style`.
///
/// # Errors
/// A rendering error.
pub fn render_solve_table(s: &Solution, style: CsvStyle) -> Result<Vec<OutputFile>, ReportError> {
    let mut bytes = Vec::new();
    write_solve(&mut bytes, s)?;
    encode(vec![("solve.csv".into(), bytes)], style)
}

/// Every `summary.csv` row of each `(key, results)`, keyed by a first column `key`, as
/// the file `file`.
fn write_long_metrics<W: Write>(
    w: W,
    file: &str,
    key: &str,
    rows: &[(&str, &Results)],
) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    out.write_record([
        key,
        "metric",
        "value",
        "std_error",
        "ci_low",
        "ci_high",
        "unit",
    ])?;
    for (name, results) in rows {
        for m in &results.summary {
            let mut record = vec![text_cell(name).into_owned(), m.id.name()];
            record.extend(estimate_fields(&m.estimate)?);
            record.push(m.id.unit().as_str().to_string());
            out.write_record(&record)?;
        }
    }
    out.flush().map_err(|source| io_error(file, source))
}

/// Renders `batch_summary.csv` and `batch_metrics.csv`, encoded in `style`.
///
/// # Errors
/// A rendering error.
pub fn render_batch_tables(
    entries: &[BatchEntry],
    style: CsvStyle,
) -> Result<Vec<OutputFile>, ReportError> {
    let mut summary = Vec::new();
    write_batch_summary(&mut summary, entries)?;
    let mut metrics = Vec::new();
    write_batch_metrics(&mut metrics, entries)?;
    encode(
        vec![
            ("batch_summary.csv".into(), summary),
            ("batch_metrics.csv".into(), metrics),
        ],
        style,
    )
}

/// One grid point of a sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepPoint<'a> {
    /// The swept parameters' values, in the order of the sweep's parameters.
    pub values: &'a [f64],
    /// Paths simulated.
    pub paths: u64,
    /// Seed (the same for every point).
    pub seed: u64,
    /// Whether the points' models were coupled path by path.
    pub coupled: bool,
    /// Its statistics.
    pub results: &'a Results,
}

/// The metrics of a levered position that `sweep.csv` adds after
/// [`BATCH_SUMMARY_METRICS`] when its scenario has `[leverage]`.
pub const LEVERAGE_METRICS: [MetricId; 4] = [
    MetricId::ProbLiquidation,
    MetricId::ExpectedLiquidationLossEth,
    MetricId::MeanBorrowCostEth,
    MetricId::ExpectedBadDebtEth,
];

/// The metrics of `sweep.csv` for `points`: [`BATCH_SUMMARY_METRICS`], then
/// [`LEVERAGE_METRICS`] when the points are levered (the grid keeps the structure).
fn sweep_metrics(points: &[SweepPoint]) -> Vec<MetricId> {
    let mut metrics = BATCH_SUMMARY_METRICS.to_vec();
    if points
        .first()
        .is_some_and(|p| p.results.metric(MetricId::ProbLiquidation).is_some())
    {
        metrics.extend(LEVERAGE_METRICS);
    }
    metrics
}

/// `sweep.csv`: one row per grid point: the swept parameters (columns named by their
/// paths), `paths,seed,coupled`, then each metric of [`BATCH_SUMMARY_METRICS`] (and
/// [`LEVERAGE_METRICS`] for a levered scenario) and its `<metric>_std_error`.
///
/// # Errors
/// On a write error or a non-finite value.
pub fn write_sweep<W: Write>(
    w: W,
    parameters: &[String],
    points: &[SweepPoint],
) -> Result<(), ReportError> {
    let mut out = csv_writer(w);
    let mut header: Vec<String> = parameters
        .iter()
        .map(|p| text_cell(p).into_owned())
        .collect();
    header.extend(["paths", "seed", "coupled"].map(String::from));
    let metrics = sweep_metrics(points);
    for m in &metrics {
        header.push(m.to_string());
        header.push(format!("{m}_std_error"));
    }
    out.write_record(&header)?;
    for p in points {
        let mut record = p
            .values
            .iter()
            .map(|x| num("parameter", *x))
            .collect::<Result<Vec<_>, _>>()?;
        record.extend([
            p.paths.to_string(),
            p.seed.to_string(),
            p.coupled.to_string(),
        ]);
        for m in &metrics {
            let estimate = p.results.metric(*m).expect("summary metric present");
            record.push(num("value", estimate.value)?);
            record.push(num("std_error", estimate.std_error)?);
        }
        out.write_record(&record)?;
    }
    out.flush().map_err(|source| io_error("sweep.csv", source))
}

/// Renders `sweep.csv`, encoded in `style`, and for a sweep of one parameter its chart,
/// `sweep.svg` and `sweep.png` ([`plots::Sweep`]).
///
/// # Errors
/// A rendering error.
pub fn render_sweep_table(
    parameters: &[String],
    points: &[SweepPoint],
    style: CsvStyle,
) -> Result<Vec<OutputFile>, ReportError> {
    let mut bytes = Vec::new();
    write_sweep(&mut bytes, parameters, points)?;
    let mut files = encode(vec![("sweep.csv".into(), bytes)], style)?;
    if let [parameter] = parameters {
        let curve: Vec<(f64, &Results)> = points.iter().map(|p| (p.values[0], p.results)).collect();
        files.extend(chart_files(&plots::Sweep {
            parameter,
            points: &curve,
        })?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_read_back() {
        for text in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'quoted",
            "''",
            "'",
        ] {
            let cell = text_cell(text);
            assert!(cell.starts_with('\''), "{text:?} -> {cell:?}");
            assert_eq!(read_text_cell(&cell), text);
        }
        for text in ["EigenDA", "ether.fi-1 - Pier Two", "a=b", ""] {
            assert_eq!(text_cell(text), text);
            assert_eq!(read_text_cell(text), text);
        }
    }

    #[test]
    fn probability_ticks_are_percents_without_float_noise() {
        for (p, text) in [
            (1.0, "100%"),
            (0.1, "10%"),
            (0.01, "1%"),
            (0.001, "0.1%"),
            (9.999999999e-5, "0.01%"),
            (1e-6, "0.0001%"),
            (2e-6, "0.0002%"),
            (0.05, "5%"),
            (0.0, "0%"),
        ] {
            assert_eq!(plots::percent_tick(p), text, "{p}");
        }
    }

    #[test]
    fn numbers_are_plain_decimals() {
        assert_eq!(num("x", 1e-7).unwrap(), "0.0000001");
        assert_eq!(num("x", -0.0).unwrap(), "0");
        assert_eq!(num("x", 12345678.5).unwrap(), "12345678.5");
        assert!(matches!(
            num("x", f64::NAN),
            Err(ReportError::NonFinite { column: "x", .. })
        ));
    }
}
