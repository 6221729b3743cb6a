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

use anyhow::Result;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use restake_core::{Results, Scenario};
use restake_report::{CsvStyle, RunInfo};
use restake_run::publish::Output;
use restake_run::shard::{Header, merge_files, write_partial_file};
use restake_run::{Job, JobSpec, Member, Overrides, RunError, ShardPlan, Source};

/// mimalloc (Microsoft's allocator, through its Rust crate) instead of the system's: the
/// exact tail windows allocate and free small blocks from both worker threads, which
/// glibc's per-thread arenas fragment (peak memory at 1e8 paths of the 10-AVS stress
/// scenario: 26% above 1e7 with glibc, see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A run shows its progress bar once it has taken this long.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

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

/// How to simulate: shared by `run`, `batch` and `sweep`.
#[derive(Debug, Clone, Copy, clap::Args)]
struct RunOptions {
    /// Number of paths (overrides `paths` of the scenario's simulation table):
    /// `1000000`, `1_000_000` or `1e6`.
    #[arg(long, value_parser = parse_count)]
    paths: Option<u64>,
    /// Seed (overrides `seed` of the scenario's simulation table; a batch runs every
    /// scenario on this one seed, 42 when not given).
    #[arg(long, value_parser = parse_count)]
    seed: Option<u64>,
    #[command(flatten)]
    output: OutputOptions,
}

/// Threads and the terminal and file output: shared by `run`, `batch`, `sweep` and
/// `merge`.
#[derive(Debug, Clone, Copy, clap::Args)]
struct OutputOptions {
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
    /// Also write `report.xlsx` beside the CSVs: one sheet per CSV with typed cells, and
    /// the plots.
    #[arg(long)]
    xlsx: bool,
}

impl OutputOptions {
    /// How the output CSVs are encoded.
    fn csv_style(self) -> CsvStyle {
        CsvStyle::for_excel(self.excel)
    }
}

impl RunOptions {
    fn overrides(self) -> Overrides {
        Overrides {
            paths: self.paths,
            seed: self.seed,
        }
    }
}

/// Simulate one shard of the job and write its partial file instead of the outputs
/// (`restake-mc merge` writes them from all the partials).
#[derive(Debug, Clone, clap::Args)]
struct ShardArgs {
    /// This shard's index, 0-based (Slurm's `SLURM_ARRAY_TASK_ID`).
    #[arg(long, requires_all = ["shard_count", "partial"])]
    shard_index: Option<u64>,
    /// Number of shards.
    #[arg(long, requires_all = ["shard_index", "partial"])]
    shard_count: Option<u64>,
    /// The partial file to write.
    #[arg(long, requires_all = ["shard_index", "shard_count"])]
    partial: Option<PathBuf>,
}

impl ShardArgs {
    fn plan(&self) -> Result<Option<(ShardPlan, &Path)>> {
        match (self.shard_index, self.shard_count, &self.partial) {
            (Some(i), Some(k), Some(file)) => Ok(Some((
                ShardPlan::new(i, k).map_err(bad_input)?,
                file.as_path(),
            ))),
            _ => Ok(None),
        }
    }
}

/// A whole number as a user writes it: digits with optional `_` between them
/// (`10_000_000`, as in the scenario files), or a decimal with an exponent that is a
/// whole number (`1e7`, `2.5e6`).
fn parse_count(text: &str) -> Result<u64, String> {
    let digits = text.replace('_', "");
    if !text.starts_with('_')
        && !text.ends_with('_')
        && !text.contains("__")
        && let Ok(n) = digits.parse::<u64>()
    {
        return Ok(n);
    }
    let x: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number (e.g. 1000000, 1_000_000 or 1e6)"))?;
    // Exact below 2^53, and a whole number there.
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 9_007_199_254_740_992.0 {
        Ok(x as u64)
    } else {
        Err(format!("{text:?} is not a whole number in [0, 2^53]"))
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
        /// Also write every path, one row each, to this Parquet file: its outcome, and
        /// the slashing loss through each AVS and operator (`avs:<name>`,
        /// `operator:<name>`).
        #[arg(long, value_name = "FILE.parquet", conflicts_with = "shard_index")]
        paths_out: Option<PathBuf>,
        #[command(flatten)]
        shard: ShardArgs,
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
        #[command(flatten)]
        shard: ShardArgs,
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
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Run a scenario and each of its `[[stress]]` tests on common random numbers and
    /// write `stress.csv` and a folder per stress.
    Stress {
        /// Scenario file (TOML); the bundled ether.fi weETH preset when omitted.
        scenario: Option<PathBuf>,
        #[command(flatten)]
        options: RunOptions,
        /// Output folder (default: `reports/<scenario name>-stress`).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Reverse stress: the value of an event or veto probability, or of a loan's term
    /// (its leverage), at which a summary metric reaches a target, with its 95% interval; writes `solve.csv`. Exits with 2
    /// when the target is not reached within the range.
    Solve {
        /// Scenario file (TOML); the bundled ether.fi weETH preset when omitted.
        scenario: Option<PathBuf>,
        /// The probability varied, a field path as in `sweep --set`
        /// (`avs.EigenDA.slash_prob`).
        #[arg(long, value_name = "PATH")]
        vary: String,
        /// `METRIC=VALUE`: a `summary.csv` metric and its target (`es_99=0.25`).
        #[arg(long, value_name = "METRIC=VALUE")]
        target: String,
        /// The range searched, `LO:HI` (default 0:0.99).
        #[arg(long, value_name = "LO:HI")]
        within: Option<String>,
        #[command(flatten)]
        options: RunOptions,
        /// Output folder (default: `reports/<scenario name>-solve`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Merge the partial files of every shard of a run, batch or sweep and write its
    /// outputs: the same files, byte for byte, as the job run in one piece.
    Merge {
        /// The partial files, one per shard, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output folder (default: the job's own default).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        output: OutputOptions,
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
        /// Name of the new scenario (its output folder); default: the `--out` file's
        /// name without `.toml`, or the base's name with `-imported`.
        #[arg(long)]
        name: Option<String>,
    },
    /// Check a scenario file and exit.
    Validate {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Fit the presets' parameters to the real data and print them (or, with
    /// --update, write them into the presets).
    Calibrate {
        /// Folder of the real data files.
        #[arg(long, default_value = "data/real")]
        data: PathBuf,
        /// Folder of the presets: each value commented `calibrate` (or `calibrate
        /// (<preset>)`, a figure another preset's data gives) is printed.
        #[arg(long, default_value = "data/scenarios")]
        scenarios: PathBuf,
        /// Rewrite those values in the preset files in place, keeping every comment.
        #[arg(long)]
        update: bool,
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    if let Err(e) = stop_cleanly_on_signals() {
        warn(&format!("cannot install the signal handler: {e}"));
    }
    let result = match cli.command {
        Command::Run {
            scenario,
            options,
            out,
            paths_out,
            shard,
        } => Source::read(scenario.as_deref())
            .map_err(bad_input)
            .and_then(|s| execute(JobSpec::Run(s), options, out, paths_out.as_deref(), &shard)),
        Command::Batch {
            scenarios,
            options,
            out,
            shard,
        } => Source::read_all(&scenarios)
            .map_err(bad_input)
            .and_then(|s| execute(JobSpec::Batch(s), options, out, None, &shard)),
        Command::Sweep {
            scenario,
            set,
            options,
            out,
            shard,
        } => Source::read(scenario.as_deref())
            .map_err(bad_input)
            .and_then(|base| {
                execute(
                    JobSpec::Sweep { base, sets: set },
                    options,
                    out,
                    None,
                    &shard,
                )
            }),
        Command::Stress {
            scenario,
            options,
            out,
            shard,
        } => Source::read(scenario.as_deref())
            .map_err(bad_input)
            .and_then(|s| execute(JobSpec::Stress(s), options, out, None, &shard)),
        Command::Solve {
            scenario,
            vary,
            target,
            within,
            options,
            out,
        } => solve(
            scenario.as_deref(),
            vary,
            target,
            within.as_deref(),
            options,
            out,
        ),
        Command::Merge { files, out, output } => merge(&files, out, output),
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
            name,
        } => tables::import(base.as_deref(), &avs, &operators, out, name),
        Command::Validate { scenario } => validate(&scenario),
        // Whatever is wrong with the data files is the user's input.
        Command::Calibrate {
            data,
            scenarios,
            update,
        } => calibrate::run(&data, &scenarios, update).map_err(|e| BadInput(message(&e)).into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if matches!(e.downcast_ref::<RunError>(), Some(RunError::Interrupted)) => {
            // The signal thread is removing what was temporary and ends the process with
            // the signal; nothing more to do here.
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            warn(&format!("error: {}", message(&e)));
            ExitCode::from(if e.downcast_ref::<BadInput>().is_some() {
                2
            } else {
                1
            })
        }
    }
}

/// Prints clap's message (help, version or a usage error) without styling and with
/// control characters escaped, to stdout or stderr as clap would; exit code 0 for help
/// and version, 2 for a usage error.
fn usage_error(e: &clap::Error) -> ExitCode {
    use std::io::Write;
    let text = e.render().to_string();
    if e.use_stderr() {
        let _ = write!(std::io::stderr().lock(), "{}", terminal_text(&text));
    } else {
        let _ = print_stdout(&text);
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// An error and its causes on one line, each cause added only if the text so far does
/// not already say it (so that an OS error appears once).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

/// Writes a line to stderr: control characters shown escaped, a closed or full stderr
/// ignored (a warning is never worth a crash).
fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{}", terminal_text(line));
}

/// `text` safe for a terminal: every control character but the line feed and the tab
/// shown as `\u{..}`, so that no escape sequence from a file or a name reaches it.
fn terminal_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// On SIGINT, SIGTERM and SIGHUP: removes every temporary file and folder and the lock
/// (waiting for a folder being swapped into place), leaves every output as it was, and
/// ends the process with the signal (exit status 128 + its number).
fn stop_cleanly_on_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                restake_run::publish::interrupt();
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// A run library error as the command's: bad input exits with 2, anything else with 1.
fn bad_input(e: RunError) -> anyhow::Error {
    match e {
        RunError::BadInput(m) => BadInput(m).into(),
        e => e.into(),
    }
}

/// Reads and checks a scenario (the bundled default when `path` is `None`); every
/// failure is bad input.
fn load(path: Option<&Path>) -> Result<(Scenario, String)> {
    let source = Source::read(path).map_err(bad_input)?;
    let scenario = source.scenario().map_err(bad_input)?;
    Ok((scenario, source.origin))
}

/// `restake-mc validate`: the checks `run` makes of the scenario before simulating (its
/// values, the derived quantities, its compile, its memory), without an output folder.
fn validate(path: &Path) -> Result<()> {
    let source = Source::read(Some(path)).map_err(bad_input)?;
    let job = Job::build(JobSpec::Run(source), Overrides::default(), 0).map_err(bad_input)?;
    let member = &job.members[0];
    let (spec, origin) = (member.scenario.spec(), &member.origin);
    let memory = restake_core::reduce::memory_estimate_bytes(&member.model, member.config.paths);
    print_stdout(&format!(
        "ok: {origin}: scenario {:?}, {:?} route, {} operator(s), {} AVS(s), {} token(s); {} paths need about {:.0} MB of memory\n",
        spec.name,
        spec.position.route,
        spec.operators.len(),
        spec.avs.len(),
        spec.tokens.len(),
        member.config.paths,
        memory as f64 / 1e6
    ))
}

/// Simulates `shard` of `member` (progress on stderr unless quiet); returns the
/// partial state and the seconds it took.
fn simulate(
    member: &Member,
    shard: ShardPlan,
    quiet: bool,
) -> Result<(restake_core::reduce::Partial, f64)> {
    let range = shard.range(member.config.paths);
    // The progress bar appears once a run has taken a second (and only on a terminal:
    // indicatif hides it otherwise), never with --quiet.
    let bar =
        ProgressBar::with_draw_target(Some(range.end - range.start), ProgressDrawTarget::hidden());
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
    bar.set_message(member.scenario.spec().name.clone());
    let shown = AtomicBool::new(quiet);
    let start = Instant::now();
    let progress = |done: u64| {
        if start.elapsed() >= PROGRESS_AFTER && !shown.swap(true, Ordering::Relaxed) {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_position(done);
    };
    let partial = member.simulate(shard, &progress).map_err(bad_input)?;
    bar.finish_and_clear();
    Ok((partial, start.elapsed().as_secs_f64()))
}

/// Runs a job: checks it whole before simulating anything; then either simulates one
/// shard of every member and writes the partial file, or simulates every member whole
/// and writes the outputs (and a run's per-path file, `paths_out`, first).
fn execute(
    spec: JobSpec,
    options: RunOptions,
    out: Option<PathBuf>,
    paths_out: Option<&Path>,
    shard: &ShardArgs,
) -> Result<()> {
    let output = options.output;
    let job = Job::build(spec, options.overrides(), output.threads).map_err(bad_input)?;
    for w in &job.warnings {
        warn(&format!("warning: {w}"));
    }
    let out = out.unwrap_or_else(|| job.default_out());
    if let Some(file) = paths_out {
        check_paths_out(file, &out, &job.members[0])?;
    }
    if let Some((plan, file)) = shard.plan()? {
        restake_run::publish::check_file(file).map_err(bad_input)?;
        let mut partials = Vec::new();
        for member in &job.members {
            partials.push(simulate(member, plan, output.quiet)?.0);
        }
        write_partial(file, &Header::new(&job, plan), &partials)?;
        if output.quiet {
            return Ok(());
        }
        let range = plan.range(job.members[0].config.paths);
        return print_stdout(&format!(
            "shard {} of {}: paths {}..{} of {} scenario(s); wrote {}\n",
            plan.index,
            plan.count,
            range.start,
            range.end,
            job.members.len(),
            file.display()
        ));
    }
    let target = Output::prepare(&out).map_err(bad_input)?;
    let mut results = Vec::new();
    let mut infos = Vec::new();
    for member in &job.members {
        let (partial, elapsed) = simulate(member, ShardPlan::WHOLE, output.quiet)?;
        results.push(member.finish(partial).map_err(bad_input)?);
        infos.push(restake_run::run_info(member, output.threads, 1, elapsed));
    }
    if let Some(file) = paths_out {
        let member = &job.members[0];
        let write = |w: &mut (dyn std::io::Write + Send)| {
            restake_run::paths::write_parquet(member, w).map_err(std::io::Error::other)
        };
        // A signal stops the write between two chunks: then the signal thread ends the
        // process, as for any interrupted write.
        restake_run::publish::write_files(vec![(file, Box::new(write))])
            .map_err(|e| bad_input(restake_run::publish::check_interrupted().err().unwrap_or(e)))?;
    }
    finish(&job, target, &results, &infos, output)?;
    match paths_out {
        Some(file) if !output.quiet => print_stdout(&format!(
            "wrote {} paths to {}\n",
            job.members[0].config.paths,
            file.display()
        )),
        _ => Ok(()),
    }
}

/// Checks `--paths-out` before a run: a `.parquet` file that can be written, outside the
/// output folder `out` (which the run replaces whole), and a table within
/// [`restake_run::paths::MAX_PATHS_OUTPUT_BYTES`].
fn check_paths_out(file: &Path, out: &Path, member: &Member) -> Result<()> {
    let refuse = |why: &str| Err(BadInput(format!("--paths-out {}: {why}", file.display())).into());
    if file.extension().is_none_or(|e| e != "parquet") {
        return refuse("the file's name must end in .parquet");
    }
    if let (Ok(f), Ok(o)) = (std::path::absolute(file), std::path::absolute(out))
        && f.starts_with(&o)
    {
        return refuse(&format!(
            "inside the output folder {}, which the run replaces whole: write it beside the folder",
            out.display()
        ));
    }
    restake_run::publish::check_file(file).map_err(bad_input)?;
    restake_run::paths::check_size(member, "--paths-out").map_err(bad_input)
}

/// `restake-mc solve`: bisects, writes `solve.csv` into the output folder, prints the
/// answer.
fn solve(
    scenario: Option<&Path>,
    vary: String,
    target: String,
    within: Option<&str>,
    options: RunOptions,
    out: Option<PathBuf>,
) -> Result<()> {
    use restake_run::solve::{SolveSpec, parse_within, solve};
    let base = Source::read(scenario).map_err(bad_input)?;
    let within = within.map(parse_within).transpose().map_err(bad_input)?;
    let name = base.scenario().map_err(bad_input)?.spec().name.clone();
    let target_dir = out.unwrap_or_else(|| Path::new("reports").join(format!("{name}-solve")));
    let output = Output::prepare(&target_dir).map_err(bad_input)?;
    let spec = SolveSpec {
        base,
        vary,
        target,
        within,
    };
    let quiet = options.output.quiet;
    let start = Instant::now();
    let runs = std::cell::Cell::new(0);
    let progress = |x: f64| {
        runs.set(runs.get() + 1);
        if !quiet {
            warn(&format!("solve: run {}, {} = {x}", runs.get(), spec.vary));
        }
    };
    let s = solve(
        &spec,
        options.overrides(),
        options.output.threads,
        &progress,
    )
    .map_err(bad_input)?;
    let mut files = restake_report::render_solve_table(&s, options.output.csv_style())
        .map_err(|e| anyhow::anyhow!("rendering solve.csv: {e}"))?;
    if options.output.xlsx
        && let Some(book) = restake_report::render_workbook(&files)
            .map_err(|e| anyhow::anyhow!("rendering report.xlsx: {e}"))?
    {
        files.push(("report.xlsx".to_string(), book));
    }
    let written = output.publish(&files).map_err(bad_input)?;
    if quiet {
        return Ok(());
    }
    print_stdout(&format!(
        "{} = {} [95% CI {} .. {}] brings {} to its target {} (estimate there {} ± {}); {} runs of {} paths, seed {}, {:.1} s\nwrote {}\n",
        s.parameter,
        s.value,
        s.ci_low,
        s.ci_high,
        s.metric,
        s.target,
        s.metric_at_value,
        s.metric_std_error,
        s.evaluations,
        s.paths,
        s.seed,
        start.elapsed().as_secs_f64(),
        written[0].display()
    ))
}

/// Merges the partial files of a sharded job and writes its outputs.
fn merge(files: &[PathBuf], out: Option<PathBuf>, output: OutputOptions) -> Result<()> {
    let threads = output.threads;
    let start = Instant::now();
    let (job, partials) = merge_files(files, threads).map_err(bad_input)?;
    let target = Output::prepare(&out.unwrap_or_else(|| job.default_out())).map_err(bad_input)?;
    let mut results = Vec::new();
    for (member, partial) in job.members.iter().zip(partials) {
        results.push(member.finish(partial).map_err(bad_input)?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let infos: Vec<RunInfo> = job
        .members
        .iter()
        .map(|m| restake_run::run_info(m, threads, files.len() as u64, elapsed))
        .collect();
    finish(&job, target, &results, &infos, output)
}

/// Warns of thin tails, writes the job's outputs and prints its summary.
fn finish(
    job: &Job,
    target: Output,
    results: &[Results],
    infos: &[RunInfo],
    output: OutputOptions,
) -> Result<()> {
    for (member, r) in job.members.iter().zip(results) {
        for w in restake_run::thin_tail_warnings(&job.member_label(member), r) {
            warn(&format!("warning: {w}"));
        }
    }
    let out = target.path().to_path_buf();
    let written =
        restake_run::write_job(job, target, results, infos, output.csv_style(), output.xlsx)
            .map_err(bad_input)?;
    if output.quiet {
        return Ok(());
    }
    let text = match job.spec {
        JobSpec::Run(_) => {
            let (m, info) = (&job.members[0], &infos[0]);
            let mut text = summary::render(
                &m.origin,
                &m.scenario,
                &m.config,
                info.threads,
                info.elapsed_seconds,
                &results[0],
            );
            text.push_str(&format!(
                "wrote {} files to {}\n",
                written.len(),
                out.display()
            ));
            text
        }
        JobSpec::Batch(_) => batch::render(job, results, &out),
        JobSpec::Sweep { .. } => sweep::render(job, results, &written[0]),
        JobSpec::Stress(_) => sweep::render_stress(job, results, &out),
    };
    print_stdout(&text)
}

/// Writes a partial file atomically (`restake_run::publish::write_files`).
fn write_partial(
    file: &Path,
    header: &Header,
    partials: &[restake_core::reduce::Partial],
) -> Result<()> {
    let write = |w: &mut (dyn std::io::Write + Send)| write_partial_file(w, header, partials);
    restake_run::publish::write_files(vec![(file, Box::new(write))]).map_err(bad_input)
}

/// Prints to stdout, control characters escaped ([`terminal_text`]); a closed pipe
/// (`restake-mc run | head`) is a normal end.
fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(terminal_text(text).as_bytes())
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts_are_read_as_users_write_them() {
        for (text, n) in [
            ("1000000", 1_000_000),
            ("1_000_000", 1_000_000),
            ("10_000_000", 10_000_000),
            ("1e7", 10_000_000),
            ("2.5e6", 2_500_000),
            ("1E8", 100_000_000),
            ("0", 0),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_count(text), Ok(n), "{text}");
        }
        for text in [
            "1.5", "1e-3", "-1", "_1", "1_", "1__0", "nan", "1e300", "ten", "",
        ] {
            assert!(parse_count(text).is_err(), "{text}");
        }
    }
}
