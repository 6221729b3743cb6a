//! `restake-mc`: runs, checks and calibrates restaking Monte Carlo scenarios.
//!
//! Exit codes: 0 success, 2 bad input (a scenario or flag that does not check out, a
//! missing file), 1 anything else (an internal error, a failed write).

mod batch;
mod calibrate;
mod summary;
mod sweep;
mod tables;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use restake_core::scenario::check_paths;
use restake_core::stats::{MIN_TAIL_PATHS, TAIL_LEVELS, level_label};
use restake_core::{BATCH_PATHS, Model, Results, RunConfig, Scenario};
use restake_report::{CsvStyle, RunInfo, write_output_folder};

/// A run shows its progress bar once it has taken this long.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// The bundled default scenario (`data/scenarios/etherfi-weeth.toml`).
const DEFAULT_SCENARIO: &str = include_str!("../../../data/scenarios/etherfi-weeth.toml");
const DEFAULT_SCENARIO_NAME: &str = "data/scenarios/etherfi-weeth.toml (bundled)";

#[derive(Debug, Parser)]
#[command(
    name = "restake-mc",
    version,
    about = "Monte Carlo yield-and-loss engine for restaked ETH positions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How to simulate: shared by `run` and `batch`.
#[derive(Debug, Clone, Copy, clap::Args)]
struct RunOptions {
    /// Number of paths (overrides `paths` of the scenario's simulation table).
    #[arg(long)]
    paths: Option<u64>,
    /// Seed (overrides `seed` of the scenario's simulation table; a batch runs every
    /// scenario on this one seed, 42 when not given).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads; 0 = one per core. Results do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// No progress bar and no summary on the terminal (warnings and errors still go to
    /// stderr).
    #[arg(long)]
    quiet: bool,
    /// CSVs for Excel: a UTF-8 byte-order mark and CRLF line ends.
    #[arg(long)]
    excel: bool,
}

impl RunOptions {
    /// How the output CSVs are encoded.
    fn csv_style(self) -> CsvStyle {
        CsvStyle::for_excel(self.excel)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a scenario and write its output folder.
    Run {
        /// Scenario file (TOML); the bundled ether.fi weETH preset when omitted.
        scenario: Option<PathBuf>,
        #[command(flatten)]
        options: RunOptions,
        /// Output folder (default: `reports/<scenario name>`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Simulate several scenarios on common random numbers and compare them.
    Batch {
        /// Scenario files, or folders whose `*.toml` files are taken in name order.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        options: RunOptions,
        /// Output folder: one folder per scenario, and the batch tables (default:
        /// `reports/batch`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a grid of variants of a scenario on common random numbers (a sensitivity
    /// study) and write `sweep.csv`, one row per grid point.
    Sweep {
        /// Scenario file (TOML); the bundled ether.fi weETH preset when omitted.
        scenario: Option<PathBuf>,
        /// `PATH=VALUES`: a scenario value (`avs.EigenDA.slash_prob`,
        /// `operator.<name>.fault_prob`, `base.apr_mean`, ...; arrays of tables by their
        /// `name`) and its values, `a,b,c` or `start:stop:count`. Repeat for a grid.
        #[arg(long = "set", required = true, value_name = "PATH=VALUES")]
        set: Vec<String>,
        #[command(flatten)]
        options: RunOptions,
        /// Output folder (default: `reports/<scenario name>-sweep`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a scenario's AVSs and operators as `avs.csv` and `operators.csv`, to keep
    /// in a spreadsheet.
    Export {
        /// Scenario file (TOML); the bundled ether.fi weETH preset when omitted.
        scenario: Option<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// CSVs for Excel: a UTF-8 byte-order mark and CRLF line ends.
        #[arg(long)]
        excel: bool,
    },
    /// Build a scenario from `avs.csv` and `operators.csv` and a base scenario that gives
    /// everything else; print it, or write it with `--out`.
    Import {
        /// Base scenario (TOML); the bundled ether.fi weETH preset when omitted.
        #[arg(long)]
        base: Option<PathBuf>,
        /// The AVS table.
        #[arg(long)]
        avs: PathBuf,
        /// The operator table.
        #[arg(long)]
        operators: PathBuf,
        /// Scenario file to write.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a scenario file and exit.
    Validate {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Fit the presets' parameters to the real data and print them.
    Calibrate {
        /// Folder of the real data files.
        #[arg(long, default_value = "data/real")]
        data: PathBuf,
    },
}

/// An error in what the user gave: exit code 2.
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            scenario,
            options,
            out,
        } => run(scenario.as_deref(), options, out),
        Command::Batch {
            scenarios,
            options,
            out,
        } => batch::run(
            &scenarios,
            options,
            out.unwrap_or_else(|| Path::new("reports").join("batch")),
        ),
        Command::Sweep {
            scenario,
            set,
            options,
            out,
        } => sweep::run(scenario.as_deref(), &set, options, out),
        Command::Export {
            scenario,
            out,
            excel,
        } => tables::export(scenario.as_deref(), &out, excel),
        Command::Import {
            base,
            avs,
            operators,
            out,
        } => tables::import(base.as_deref(), &avs, &operators, out),
        Command::Validate { scenario } => validate(&scenario),
        Command::Calibrate { data } => calibrate::print(&data),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<BadInput>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Reads and checks a scenario; every failure is bad input.
fn load(path: Option<&Path>) -> Result<(Scenario, String)> {
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| BadInput(format!("cannot read scenario {}: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (
            DEFAULT_SCENARIO.to_string(),
            DEFAULT_SCENARIO_NAME.to_string(),
        ),
    };
    let scenario = Scenario::from_toml(&text).map_err(|e| BadInput(format!("{origin}: {e}")))?;
    Ok((scenario, origin))
}

fn validate(path: &Path) -> Result<()> {
    let (scenario, origin) = load(Some(path))?;
    let spec = scenario.spec();
    print_stdout(&format!(
        "ok: {origin}: scenario {:?}, {:?} route, {} operator(s), {} AVS(s), {} token(s)\n",
        spec.name,
        spec.position.route,
        spec.operators.len(),
        spec.avs.len(),
        spec.tokens.len()
    ))
}

/// A simulated scenario: its results and the record of the run.
struct Simulated {
    scenario: Scenario,
    origin: String,
    config: RunConfig,
    results: Results,
    info: RunInfo,
}

/// Simulates a checked scenario with `options` (progress on stderr unless quiet), through
/// `model`: its compiled model, possibly coupled to others (a sweep).
///
/// # Errors
/// [`BadInput`] for a path count out of range or a scenario the engine refuses.
fn simulate(
    scenario: Scenario,
    origin: String,
    options: RunOptions,
    model: &Model,
) -> Result<Simulated> {
    let spec = scenario.spec();
    let paths = options.paths.unwrap_or(spec.simulation.paths);
    check_paths("--paths", paths).map_err(|e| BadInput(e.to_string()))?;
    let config = RunConfig {
        paths,
        seed: options.seed.unwrap_or(spec.simulation.seed),
        threads: options.threads,
    };
    // The progress bar appears once a run has taken a second (and only on a terminal:
    // indicatif hides it otherwise), never with --quiet.
    let bar = ProgressBar::with_draw_target(Some(paths), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {bar:40} {human_pos}/{human_len} paths  {rate}  ETA {eta}",
        )
        .expect("valid template")
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.2} M paths/s", state.per_sec() / 1e6);
            },
        ),
    );
    bar.set_message(spec.name.clone());
    let shown = AtomicBool::new(options.quiet);
    let start = Instant::now();
    let progress = |done: u64| {
        if start.elapsed() >= PROGRESS_AFTER && !shown.swap(true, Ordering::Relaxed) {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_position(done);
    };
    let thresholds = &spec.report.loss_thresholds;
    let results = restake_core::run_model(model, &config, thresholds, &progress)
        .map_err(|e| BadInput(format!("{origin}: {e}")))?;
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    warn_thin_tails(&spec.name, &results);

    let used_threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        options.threads
    };
    let info = RunInfo {
        scenario: spec.clone(),
        seed: config.seed,
        paths,
        threads: used_threads,
        generator: "Xoshiro256++ (rand_xoshiro 0.8)".into(),
        seeding: format!(
            "batch b (paths b*{BATCH_PATHS}..) uses Xoshiro256++ seeded with outputs 4b..4b+3 of SplitMix64 started at the seed; batches merged in batch order"
        ),
        batch_paths: BATCH_PATHS,
        crate_versions: vec![
            ("restake-core".into(), env!("CARGO_PKG_VERSION").into()),
            ("restake-report".into(), env!("CARGO_PKG_VERSION").into()),
            ("restake-cli".into(), env!("CARGO_PKG_VERSION").into()),
        ],
        interval_level: restake_core::stats::INTERVAL_LEVEL,
        histogram_bins: restake_core::stats::HISTOGRAM_BINS,
        fan_chart_resolution: format!(
            "HDR histogram of V(t)/P at every checkpoint, relative resolution {}",
            restake_core::reduce::SKETCH_RESOLUTION
        ),
        statistics: format!(
            "one mergeable reduction for every path count: moments, probabilities, VaR, ES, their intervals, contributions and every return quantile exact (equal to sorting every path); the fan chart and the distribution files from HDR histograms with relative resolution {} of V/P",
            restake_core::reduce::SKETCH_RESOLUTION
        ),
        elapsed_seconds: elapsed,
    };
    Ok(Simulated {
        scenario,
        origin,
        config,
        results,
        info,
    })
}

fn run(path: Option<&Path>, options: RunOptions, out: Option<PathBuf>) -> Result<()> {
    let (scenario, origin) = load(path)?;
    let out = out.unwrap_or_else(|| Path::new("reports").join(&scenario.spec().name));
    let model = Model::new(&scenario);
    let sim = simulate(scenario, origin, options, &model)?;
    let written = write_output_folder(&out, &sim.results, &sim.info, options.csv_style())
        .with_context(|| format!("writing the output folder {}", out.display()))?;
    if options.quiet {
        return Ok(());
    }
    let mut text = summary::render(
        &sim.origin,
        &sim.scenario,
        &sim.config,
        sim.info.threads,
        sim.info.elapsed_seconds,
        &sim.results,
    );
    text.push_str(&format!(
        "wrote {} files to {}\n",
        written.len(),
        out.display()
    ));
    print_stdout(&text)
}

/// Warns on stderr for each VaR level with fewer than [`MIN_TAIL_PATHS`] paths at or
/// beyond it, and says how many paths would give that many.
fn warn_thin_tails(name: &str, results: &Results) {
    for (level, count) in TAIL_LEVELS.iter().zip(results.tail_paths) {
        if count < MIN_TAIL_PATHS {
            let needed = MIN_TAIL_PATHS * 10_000 / u64::from(10_000 - level);
            eprintln!(
                "warning: {name}: only {count} paths lie at or beyond var_{label}: its VaR and ES rest on few losses; run at least {needed} paths (see convergence.csv)",
                label = level_label(*level)
            );
        }
    }
}

/// Prints to stdout; a closed pipe (`restake-mc run | head`) is a normal end.
fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
