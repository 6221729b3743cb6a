//! # restake-run
//!
//! Everything that drives a restake-mc run, between a front end (the `restake-mc`
//! command, bindings) and the core: the bundled scenario and the resolution of every
//! default ([`job`]), batch and sweep grids with their field-path grammar, the shard plan
//! and the partial files of sharded runs ([`shard`]), the spreadsheet tables ([`tables`]), the provenance of `run.json`, and
//! the writing of a job's output folders ([`publish`]: whole or not at all, locked, safe
//! under signals). A front end parses its arguments, builds a
//! [`Job`], simulates its members (whole or as one shard), and calls [`write_job`].

pub mod comments;
pub mod fuzz;
pub mod job;
pub mod paths;
pub mod publish;
pub mod shard;
pub mod solve;
pub mod tables;

use std::path::PathBuf;

use restake_core::stats::{INTERVAL_LEVEL, MIN_TAIL_PATHS, TAIL_LEVELS, level_label};
use restake_core::{BATCH_PATHS, Results};
use restake_report::{
    BatchEntry, CsvStyle, ReportError, RunInfo, SweepPoint, render_batch_tables, render_comparison,
    render_output_folder, render_stress_table, render_sweep_table, render_workbook,
};

pub use job::{Job, JobSpec, Member, Overrides, Source};
pub use shard::ShardPlan;

/// What can go wrong in a run: the user's input (exit code 2), a write (exit 1), or a
/// signal that stopped it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A scenario, flag, file or partial that does not check out; the message names it.
    #[error("{0}")]
    BadInput(String),
    /// An output that could not be rendered.
    #[error("{context}: {source}")]
    Write {
        /// What was being written.
        context: String,
        /// Why it failed.
        source: ReportError,
    },
    /// A file or folder that could not be written or read; `context` names it, `source`
    /// is the one OS error.
    #[error("{context}: {source}")]
    Io {
        /// What failed, naming the path.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// [`publish::interrupt`] was called (a signal): the write stopped, nothing changed.
    #[error("interrupted")]
    Interrupted,
}

/// The record of a member's run for `run.json`.
///
/// `threads` is the thread count asked for (0: one per core), `shards` the number of
/// shards it was simulated in, `elapsed_seconds` the wall time of its simulation.
pub fn run_info(member: &Member, threads: usize, shards: u64, elapsed_seconds: f64) -> RunInfo {
    let used_threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        threads
    };
    let resolution = restake_core::reduce::SKETCH_RESOLUTION;
    RunInfo {
        scenario: member.scenario.spec().clone(),
        scenario_file: member.origin.clone(),
        stress: member
            .stress
            .map(|i| member.scenario.spec().stress[i].describe()),
        assumptions: member.assumptions.clone(),
        created_utc: chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seed: member.config.seed,
        paths: member.config.paths,
        threads: used_threads,
        shards,
        generator: "Xoshiro256++ (rand_xoshiro 0.8)".into(),
        seeding: format!(
            "batch b (paths b*{BATCH_PATHS}..) uses Xoshiro256++ seeded with outputs 4b..4b+3 of SplitMix64 started at the seed; batches reduced with exact sums, so the order of batches, threads and shards changes no bit"
        ),
        batch_paths: BATCH_PATHS,
        crate_versions: [
            "restake-core",
            "restake-report",
            "restake-run",
            "restake-cli",
        ]
        .iter()
        .map(|c| (c.to_string(), env!("CARGO_PKG_VERSION").to_string()))
        .collect(),
        interval_level: INTERVAL_LEVEL,
        histogram_bins: restake_core::stats::HISTOGRAM_BINS,
        fan_chart_resolution: format!(
            "log-bucket sketch of V(t)/P at every checkpoint (restake_core::sketch), relative resolution {resolution}"
        ),
        statistics: format!(
            "one mergeable reduction for every path count: moments, probabilities, VaR, ES, their intervals, contributions and every return quantile exact (equal to sorting every path); the fan chart and the distribution files from log-bucket sketches with relative resolution {resolution} of V/P"
        ),
        elapsed_seconds,
    }
}

/// A warning for each VaR level of `results` with fewer than [`MIN_TAIL_PATHS`] paths at
/// or beyond it, saying how many paths would give that many; `label` names the member
/// ([`Job::member_label`]). Where the level's VaR is not a loss (the tail holds gains),
/// it says so rather than speak of few losses.
pub fn thin_tail_warnings(label: &str, results: &Results) -> Vec<String> {
    TAIL_LEVELS
        .iter()
        .zip(results.tail_paths)
        .filter(|(_, count)| *count < MIN_TAIL_PATHS)
        .map(|(level, count)| {
            let needed = MIN_TAIL_PATHS * 10_000 / u64::from(10_000 - level);
            let label_level = level_label(*level);
            let loss = results
                .metric(restake_core::stats::MetricId::Var(*level))
                .is_some_and(|v| v.value > 0.0);
            let rest = if loss {
                "its VaR and ES rest on few losses"
            } else {
                "its VaR and ES rest on few paths, and those are gains, not losses"
            };
            format!(
                "{label}: only {count} paths lie at or beyond var_{label_level}: {rest}; run at least {needed} paths (see convergence.csv)"
            )
        })
        .collect()
}

/// Renders a job's outputs ([`render_job`]) and writes them as one folder, replacing
/// `output` whole. Returns the files written.
///
/// # Errors
/// Those of [`render_job`] and of [`publish::Output::publish`].
pub fn write_job(
    job: &Job,
    output: publish::Output,
    results: &[Results],
    infos: &[RunInfo],
    style: CsvStyle,
    xlsx: bool,
) -> Result<Vec<PathBuf>, RunError> {
    output.publish(&render_job(job, results, infos, style, xlsx)?)
}

/// A job's output folder as files (paths relative to it, `/` between parts): a run's
/// output folder; a batch's folder per scenario, `batch_summary.csv`,
/// `batch_metrics.csv` and the comparison chart; a sweep's `sweep.csv` (and its chart);
/// stress tests' folder per stress (and `base/`) and `stress.csv`. With `xlsx`, every
/// folder of CSVs also gets its `report.xlsx` ([`render_workbook`]). `results` and
/// `infos` are the members', in order.
///
/// # Errors
/// [`RunError::Write`] naming what could not be rendered.
pub fn render_job(
    job: &Job,
    results: &[Results],
    infos: &[RunInfo],
    style: CsvStyle,
    xlsx: bool,
) -> Result<Vec<restake_report::OutputFile>, RunError> {
    let context = |what: &str| {
        let what = what.to_string();
        move |source| RunError::Write {
            context: what,
            source,
        }
    };
    // `report.xlsx` of a folder's files, added to them when asked for.
    let with_workbook = |mut folder: Vec<restake_report::OutputFile>| {
        if xlsx && let Some(book) = render_workbook(&folder)? {
            folder.push(("report.xlsx".to_string(), book));
        }
        Ok::<_, ReportError>(folder)
    };
    // Each member's output folder, under the name `folder` gives it.
    let member_folders = |folder: &dyn Fn(&Member) -> &str| {
        let mut files = Vec::new();
        for ((m, r), info) in job.members.iter().zip(results).zip(infos) {
            let name = folder(m);
            let rendered = render_output_folder(r, info, style)
                .and_then(with_workbook)
                .map_err(context(&format!("rendering the output folder of {name}")))?;
            files.extend(
                rendered
                    .into_iter()
                    .map(|(f, b)| (format!("{name}/{f}"), b)),
            );
        }
        Ok::<_, RunError>(files)
    };
    let mut files = match job.spec {
        JobSpec::Run(_) => render_output_folder(&results[0], &infos[0], style)
            .and_then(with_workbook)
            .map_err(context("rendering the output folder"))?,
        JobSpec::Batch(_) => {
            let mut files = member_folders(&|m| m.scenario.spec().name.as_str())?;
            let entries: Vec<BatchEntry> = job
                .members
                .iter()
                .zip(results)
                .map(|(m, r)| BatchEntry {
                    scenario: &m.scenario.spec().name,
                    file: &m.origin,
                    paths: m.config.paths,
                    seed: m.config.seed,
                    results: r,
                })
                .collect();
            files.extend(
                render_batch_tables(&entries, style)
                    .map_err(context("rendering the batch tables"))?,
            );
            files.extend(
                render_comparison(&entries).map_err(context("drawing the comparison chart"))?,
            );
            files
        }
        JobSpec::Stress(_) => {
            let mut files = member_folders(&|m| m.stress_name())?;
            let rows: Vec<(&str, &Results)> = job
                .members
                .iter()
                .map(|m| m.stress_name())
                .zip(results)
                .collect();
            files.extend(
                render_stress_table(&rows, style).map_err(context("rendering stress.csv"))?,
            );
            files
        }
        JobSpec::Sweep { .. } => {
            let rows: Vec<SweepPoint> = job
                .members
                .iter()
                .zip(results)
                .map(|(m, r)| SweepPoint {
                    values: &m.grid_values,
                    paths: m.config.paths,
                    seed: m.config.seed,
                    coupled: job.coupled,
                    results: r,
                })
                .collect();
            render_sweep_table(&job.parameters, &rows, style)
                .map_err(context("rendering sweep.csv"))?
        }
    };
    // A batch's own tables and chart, and stress.csv, get the top-level workbook.
    if xlsx && matches!(job.spec, JobSpec::Batch(_) | JobSpec::Stress(_)) {
        let top: Vec<restake_report::OutputFile> = files
            .iter()
            .filter(|(n, _)| !n.contains('/'))
            .cloned()
            .collect();
        if let Some(book) = render_workbook(&top).map_err(context("rendering report.xlsx"))? {
            files.push(("report.xlsx".to_string(), book));
        }
    } else if xlsx && matches!(job.spec, JobSpec::Sweep { .. }) {
        files = with_workbook(files).map_err(context("rendering report.xlsx"))?;
    }
    Ok(files)
}
