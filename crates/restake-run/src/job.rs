//! What a command asks for, resolved once: the scenarios (a run's one, a batch's list, a
//! sweep's grid of variants of one), their compiled (and, for a sweep, coupled) models,
//! path counts, seeds and threads, and the output folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use restake_core::reduce::{Partial, reduce_range};
use restake_core::scenario::field_path_keys;
use restake_core::{Model, Results, RunConfig, Scenario, ScenarioSpec};
use serde::{Deserialize, Serialize};

use crate::RunError;
use crate::shard::ShardPlan;

/// The bundled default scenario (`data/scenarios/etherfi-weeth.toml`).
pub const DEFAULT_SCENARIO: &str = PRESETS[3].1; // etherfi-weeth, as a test checks

/// Where the bundled default scenario comes from, as the outputs name it.
pub const DEFAULT_SCENARIO_ORIGIN: &str = "data/scenarios/etherfi-weeth.toml (bundled)";

/// The presets of `data/scenarios`, bundled: `(name, TOML text)`, in name order. A
/// command given a scenario that is not a file but one of these names runs the preset
/// (`restake-mc run renzo-ezeth`).
pub const PRESETS: [(&str, &str); 12] = [
    (
        "avs-100-cascade",
        include_str!("../../../data/scenarios/avs-100-cascade.toml"),
    ),
    (
        "eigenlayer-lst",
        include_str!("../../../data/scenarios/eigenlayer-lst.toml"),
    ),
    (
        "eigenlayer-native",
        include_str!("../../../data/scenarios/eigenlayer-native.toml"),
    ),
    (
        "etherfi-weeth",
        include_str!("../../../data/scenarios/etherfi-weeth.toml"),
    ),
    (
        "karak-vault",
        include_str!("../../../data/scenarios/karak-vault.toml"),
    ),
    (
        "kelp-rseth",
        include_str!("../../../data/scenarios/kelp-rseth.toml"),
    ),
    (
        "plain-staking",
        include_str!("../../../data/scenarios/plain-staking.toml"),
    ),
    (
        "puffer-pufeth",
        include_str!("../../../data/scenarios/puffer-pufeth.toml"),
    ),
    (
        "renzo-ezeth",
        include_str!("../../../data/scenarios/renzo-ezeth.toml"),
    ),
    (
        "symbiotic-vault",
        include_str!("../../../data/scenarios/symbiotic-vault.toml"),
    ),
    (
        "weeth-aave-loop",
        include_str!("../../../data/scenarios/weeth-aave-loop.toml"),
    ),
    (
        "weeth-seamless-17x",
        include_str!("../../../data/scenarios/weeth-seamless-17x.toml"),
    ),
];

/// The batch seed when none is given (the scenario files' default seed).
pub const DEFAULT_BATCH_SEED: u64 = 42;

/// Most grid points a sweep runs.
pub const MAX_SWEEP_POINTS: usize = 10_000;

/// A scenario file's text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The TOML text.
    pub text: String,
    /// The file's path as given, or [`DEFAULT_SCENARIO_ORIGIN`].
    pub origin: String,
}

impl Source {
    /// The file at `path`; a bundled preset when `path` is no file but a preset's name
    /// ([`PRESETS`]); the bundled default scenario when `None`.
    ///
    /// # Errors
    /// [`RunError::BadInput`] when the file cannot be read (naming the presets when it
    /// could have meant one).
    pub fn read(path: Option<&Path>) -> Result<Self, RunError> {
        match path {
            Some(p) if !p.exists() && p.components().count() == 1 => {
                let name = p.to_string_lossy();
                let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                    let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                    RunError::BadInput(format!(
                        "cannot read scenario {name}: no such file, nor a bundled preset ({})",
                        names.join(", ")
                    ))
                })?;
                Ok(Self {
                    text: text.to_string(),
                    origin: format!("data/scenarios/{name}.toml (bundled)"),
                })
            }
            Some(p) => Ok(Self {
                text: std::fs::read_to_string(p).map_err(|e| {
                    RunError::BadInput(format!("cannot read scenario {}: {e}", p.display()))
                })?,
                origin: p.display().to_string(),
            }),
            None => Ok(Self {
                text: DEFAULT_SCENARIO.to_string(),
                origin: DEFAULT_SCENARIO_ORIGIN.to_string(),
            }),
        }
    }

    /// The scenario, checked.
    ///
    /// # Errors
    /// [`RunError::BadInput`] with the origin and the scenario's error.
    pub fn scenario(&self) -> Result<Scenario, RunError> {
        Scenario::from_toml(&self.text)
            .map_err(|e| RunError::BadInput(format!("{}: {e}", self.origin)))
    }

    /// The scenario files of `inputs`: files as given, folders' `*.toml` files in name
    /// order, presets by name ([`Source::read`]).
    ///
    /// # Errors
    /// [`RunError::BadInput`] for an input that is neither, or a folder without
    /// scenario files.
    pub fn read_all(inputs: &[PathBuf]) -> Result<Vec<Self>, RunError> {
        let mut files = Vec::new();
        for input in inputs {
            if input.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                    .map_err(|e| {
                        RunError::BadInput(format!("cannot read folder {}: {e}", input.display()))
                    })?
                    .filter_map(|entry| entry.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                    .collect();
                if found.is_empty() {
                    return Err(RunError::BadInput(format!(
                        "{}: no *.toml scenario files",
                        input.display()
                    )));
                }
                found.sort();
                files.extend(found);
            } else {
                // A file, a preset's name, or an error of `read`.
                files.push(input.clone());
            }
        }
        files.iter().map(|f| Self::read(Some(f))).collect()
    }
}

/// Most worker threads per core a run may ask for.
pub const MAX_THREADS_PER_CORE: usize = 64;

/// Most worker threads a run may ask for on any machine.
pub const MAX_THREADS: usize = 1024;

/// Checks a thread count: 0 (one per core) or at most [`MAX_THREADS_PER_CORE`] per core
/// and [`MAX_THREADS`] in all. Threads never change a result; thousands of them only
/// exhaust the machine.
///
/// # Errors
/// [`RunError::BadInput`] naming `--threads` and the limit.
pub fn check_threads(threads: usize) -> Result<(), RunError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let max = (MAX_THREADS_PER_CORE * cores).min(MAX_THREADS);
    if threads > max {
        return Err(RunError::BadInput(format!(
            "--threads: at most {max} on this machine ({MAX_THREADS_PER_CORE} per core, {MAX_THREADS} in all), got {threads}; results do not depend on it"
        )));
    }
    Ok(())
}

/// The memory available to a new process (`MemAvailable` of `/proc/meminfo`), `None`
/// where that cannot be read.
fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// What a command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobSpec {
    /// One scenario.
    Run(Source),
    /// Several scenarios on one seed.
    Batch(Vec<Source>),
    /// One scenario and each of its `[[stress]]` tests, on one seed.
    Stress(Source),
    /// A grid of variants of one scenario: each `PATH=VALUES` of `sets` an axis.
    Sweep {
        /// The scenario varied.
        base: Source,
        /// The `--set` arguments, in order.
        sets: Vec<String>,
    },
}

/// Values given on the command line over the scenarios' `[simulation]` tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// Paths of every scenario.
    pub paths: Option<u64>,
    /// Seed of every scenario.
    pub seed: Option<u64>,
}

/// One scenario of a job, ready to simulate.
#[derive(Debug, Clone)]
pub struct Member {
    /// The checked scenario.
    pub scenario: Scenario,
    /// Its file.
    pub origin: String,
    /// The values its file marks as assumptions ([`crate::comments::assumptions`]).
    pub assumptions: Vec<restake_report::Assumption>,
    /// Its compiled model (coupled with the other grid points of a sweep).
    pub model: Model,
    /// Paths, seed and threads.
    pub config: RunConfig,
    /// A sweep point's values of the swept parameters; empty otherwise.
    pub grid_values: Vec<f64>,
    /// A stress job's member: the index of its `[[stress]]`; `None` for the scenario
    /// itself.
    pub stress: Option<usize>,
}

impl Member {
    /// The stress test's name (`base` for the scenario itself).
    pub fn stress_name(&self) -> &str {
        self.stress
            .map_or(restake_core::stress::BASE_STRESS_NAME, |i| {
                self.scenario.spec().stress[i].name.as_str()
            })
    }

    /// The `[report]` loss thresholds.
    pub fn thresholds(&self) -> &[f64] {
        &self.scenario.spec().report.loss_thresholds
    }

    /// Simulates the paths of `shard` and reduces them to a partial state.
    ///
    /// # Errors
    /// [`RunError::BadInput`] when the engine refuses the run.
    pub fn simulate(
        &self,
        shard: ShardPlan,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Partial, RunError> {
        reduce_range(
            &self.model,
            &self.config,
            shard.range(self.config.paths),
            self.thresholds(),
            progress,
        )
        .map_err(|e| RunError::BadInput(format!("{}: {e}", self.origin)))
    }

    /// The statistics of a complete partial state.
    ///
    /// # Errors
    /// [`RunError::BadInput`] when it does not cover the run.
    pub fn finish(&self, partial: Partial) -> Result<Results, RunError> {
        partial
            .finish(&self.model, self.thresholds())
            .map_err(|e| RunError::BadInput(format!("{}: {e}", self.origin)))
    }
}

/// A command's job, resolved: every scenario checked, every default filled in.
#[derive(Debug, Clone)]
pub struct Job {
    /// What was asked for.
    pub spec: JobSpec,
    /// The command-line overrides.
    pub overrides: Overrides,
    /// The scenarios in order (a sweep's grid points with the last axis fastest).
    pub members: Vec<Member>,
    /// A sweep's axes (field paths); empty otherwise.
    pub parameters: Vec<String>,
    /// Whether a sweep's points are coupled path by path ([`Model::couple`]): true when
    /// they differ only in event and veto probabilities (`docs/model.md#sweeps`).
    pub coupled: bool,
    /// Warnings for the user (a sweep that could not be coupled).
    pub warnings: Vec<String>,
}

impl Job {
    /// Checks and compiles `spec` with `overrides`, on `threads` worker threads (0: one
    /// per core). Nothing is simulated.
    ///
    /// # Errors
    /// [`RunError::BadInput`] for a scenario that does not check out, a path count out of
    /// range, two batch scenarios of one name, a bad `--set` or a grid point that fails
    /// the scenario's checks, too many threads ([`check_threads`]), or a run whose memory
    /// estimate exceeds the memory available ([`Job::check_memory`]).
    pub fn build(spec: JobSpec, overrides: Overrides, threads: usize) -> Result<Self, RunError> {
        check_threads(threads)?;
        let config = |s: &Scenario, seed: Option<u64>| -> Result<RunConfig, RunError> {
            let paths = overrides.paths.unwrap_or(s.spec().simulation.paths);
            restake_core::scenario::check_paths_within(
                "--paths",
                paths,
                restake_core::scenario::MAX_SHARDED_PATHS,
            )
            .map_err(|e| RunError::BadInput(e.to_string()))?;
            Ok(RunConfig {
                paths,
                seed: seed.unwrap_or(s.spec().simulation.seed),
                threads,
            })
        };
        let member = |scenario: Scenario, source: &Source, model: Model, seed, grid_values| {
            Ok::<_, RunError>(Member {
                config: config(&scenario, seed)?,
                scenario,
                origin: source.origin.clone(),
                assumptions: crate::comments::assumptions(&source.text),
                model,
                grid_values,
                stress: None,
            })
        };
        let mut job = Self {
            spec: spec.clone(),
            overrides,
            members: Vec::new(),
            parameters: Vec::new(),
            coupled: false,
            warnings: Vec::new(),
        };
        match &spec {
            JobSpec::Run(source) => {
                let s = source.scenario()?;
                let model = Model::new(&s);
                job.members
                    .push(member(s, source, model, overrides.seed, Vec::new())?);
            }
            JobSpec::Batch(sources) => {
                let seed = Some(overrides.seed.unwrap_or(DEFAULT_BATCH_SEED));
                let mut names = BTreeSet::new();
                for source in sources {
                    let s = source.scenario()?;
                    let name = s.spec().name.clone();
                    if restake_report::is_output_file_name(&name) {
                        return Err(RunError::BadInput(format!(
                            "{}: scenario name {name:?} is a file the batch writes beside its scenario folders: rename the scenario",
                            source.origin
                        )));
                    }
                    if !names.insert(name.clone()) {
                        return Err(RunError::BadInput(format!(
                            "{}: scenario name {name:?} is used by another scenario of the batch (it names the output folder)",
                            source.origin
                        )));
                    }
                    let model = Model::new(&s);
                    job.members
                        .push(member(s, source, model, seed, Vec::new())?);
                }
            }
            JobSpec::Stress(source) => {
                let s = source.scenario()?;
                let count = s.spec().stress.len();
                if count == 0 {
                    return Err(RunError::BadInput(format!(
                        "{}: the scenario has no [[stress]] table to run (docs/scenario.md#stress-tests)",
                        source.origin
                    )));
                }
                let model = Model::new(&s);
                job.members.push(member(
                    s.clone(),
                    source,
                    model,
                    overrides.seed,
                    Vec::new(),
                )?);
                for i in 0..count {
                    let model = Model::for_stress(&s, i);
                    let mut m = member(s.clone(), source, model, overrides.seed, Vec::new())?;
                    m.stress = Some(i);
                    job.members.push(m);
                }
            }
            JobSpec::Sweep { base, sets } => {
                let base_scenario = base.scenario()?;
                let axes: Vec<Axis> = sets
                    .iter()
                    .map(|s| parse_axis(s))
                    .collect::<Result<_, _>>()?;
                for (i, a) in axes.iter().enumerate() {
                    if let Some(b) = axes[..i].iter().find(|b| b.keys == a.keys) {
                        return Err(RunError::BadInput(format!(
                            "--set {}: the same field as --set {} (one axis per field)",
                            a.path, b.path
                        )));
                    }
                }
                let grid = grid(&axes)?;
                let mut scenarios = Vec::new();
                for point in &grid {
                    let mut spec = base_scenario.spec().clone();
                    for (axis, x) in axes.iter().zip(point) {
                        spec = set_value(&spec, &axis.path, *x)?;
                    }
                    scenarios.push(Scenario::try_from(spec).map_err(|e| {
                        RunError::BadInput(format!("{}: grid point {point:?}: {e}", base.origin))
                    })?);
                }
                let mut models: Vec<Model> = scenarios.iter().map(Model::new).collect();
                let structure_kept = Model::couple(&mut models);
                let rest: Vec<ScenarioSpec> = scenarios
                    .iter()
                    .map(|s| without_coupled_parameters(s.spec()))
                    .collect();
                job.coupled = structure_kept && rest.windows(2).all(|w| w[0] == w[1]);
                if !structure_kept {
                    job.warnings.push(
                        "the grid changes the scenario's structure, not just probabilities: points share the seed but are not coupled path by path".into(),
                    );
                }
                let seed = Some(
                    overrides
                        .seed
                        .unwrap_or(base_scenario.spec().simulation.seed),
                );
                for ((s, model), point) in scenarios.into_iter().zip(models).zip(grid) {
                    job.members.push(member(s, base, model, seed, point)?);
                }
                job.parameters = axes.into_iter().map(|a| a.path).collect();
            }
        }
        job.check_memory(available_memory_bytes())?;
        Ok(job)
    }

    /// Checks that each member's run fits in `available` bytes
    /// ([`restake_core::reduce::memory_estimate_bytes`] of one process's share: a sharded
    /// run's shard, at most [`restake_core::MAX_PATHS`] paths).
    ///
    /// # Errors
    /// [`RunError::BadInput`] with the estimate and what is available.
    pub fn check_memory(&self, available: Option<u64>) -> Result<(), RunError> {
        let Some(available) = available else {
            return Ok(());
        };
        for m in &self.members {
            let need = restake_core::reduce::memory_estimate_bytes(&m.model, m.config.paths);
            if need > available {
                return Err(RunError::BadInput(format!(
                    "{}: the run would take about {:.1} GB of memory ({} contribution rows, {} checkpoints), more than the {:.1} GB available: use fewer operators, AVSs or checkpoints, or a machine with more memory",
                    m.origin,
                    need as f64 / 1e9,
                    m.model.rows.len(),
                    m.model.checkpoints_years.len(),
                    available as f64 / 1e9
                )));
            }
        }
        Ok(())
    }

    /// A sweep point's values as `path = value, ...` in the order of the axes; empty
    /// for the members of a run or a batch.
    pub fn grid_label(&self, member: &Member) -> String {
        self.parameters
            .iter()
            .zip(&member.grid_values)
            .map(|(p, x)| format!("{p} = {x}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// How a member is named in messages: its scenario's name, and for a sweep point
    /// its values (`etherfi-weeth at base.fee = 0.05`).
    pub fn member_label(&self, member: &Member) -> String {
        let name = &member.scenario.spec().name;
        match self.spec {
            JobSpec::Sweep { .. } => format!("{name} at {}", self.grid_label(member)),
            JobSpec::Stress(_) => format!("{name} under stress {}", member.stress_name()),
            _ => name.clone(),
        }
    }

    /// The output folder when none is given: `reports/<name>` for a run,
    /// `reports/batch` for a batch, `reports/<name>-sweep` for a sweep,
    /// `reports/<name>-stress` for stress tests.
    pub fn default_out(&self) -> PathBuf {
        let reports = Path::new("reports");
        let name = &self.members[0].scenario.spec().name;
        match self.spec {
            JobSpec::Run(_) => reports.join(name),
            JobSpec::Batch(_) => reports.join("batch"),
            JobSpec::Sweep { .. } => reports.join(format!("{name}-sweep")),
            JobSpec::Stress(_) => reports.join(format!("{name}-stress")),
        }
    }
}

/// An operator's maps keyed by AVS name, which a field path may extend.
const PER_AVS_MAPS: [&str; 2] = ["allocations", "slash_probs"];

/// One axis of a sweep's grid: a scenario path as given, its keys, and its values.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    path: String,
    keys: Vec<String>,
    values: Vec<f64>,
}

/// A value of a `start:stop:count` range as the decimal it means: rounded to 12
/// significant digits, so that `0:0.3:4` gives 0.1, not 0.09999999999999999.
fn range_value(x: f64) -> f64 {
    format!("{x:.11e}")
        .parse()
        .expect("a formatted float parses")
}

/// Parses `PATH=VALUES` with VALUES `a,b,c` or `start:stop:count` (count values evenly
/// spaced from start to stop, both included).
fn parse_axis(arg: &str) -> Result<Axis, RunError> {
    let bad = |why: &str| RunError::BadInput(format!("--set {arg}: {why}"));
    // The last `=`: quoted names may hold one, values never do.
    let (path, values) = arg
        .rsplit_once('=')
        .ok_or_else(|| bad("expected PATH=VALUES, e.g. avs.EigenDA.slash_prob=0.005,0.01"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad(&format!("{s:?} is not a number")))
    };
    let values = if let [start, stop, count] = values.split(':').collect::<Vec<_>>()[..] {
        let (a, b) = (number(start)?, number(stop)?);
        let n: usize = count
            .trim()
            .parse()
            .ok()
            .filter(|n| (2..=MAX_SWEEP_POINTS).contains(n))
            .ok_or_else(|| {
                bad(&format!(
                    "count {count:?} must be an integer in [2, {MAX_SWEEP_POINTS}]"
                ))
            })?;
        (0..n)
            .map(|i| range_value(a + (b - a) * i as f64 / (n - 1) as f64))
            .collect()
    } else {
        values
            .split(',')
            .map(number)
            .collect::<Result<Vec<_>, _>>()?
    };
    if path.trim().is_empty() || values.is_empty() {
        return Err(bad("needs a path and at least one value"));
    }
    let path = path.trim().to_string();
    let keys = field_path_keys(&path).map_err(|e| bad(&e))?;
    Ok(Axis { path, keys, values })
}

/// The grid points in order, the last axis fastest.
fn grid(axes: &[Axis]) -> Result<Vec<Vec<f64>>, RunError> {
    let points = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|n| *n <= MAX_SWEEP_POINTS)
        .ok_or_else(|| {
            RunError::BadInput(format!("the grid has more than {MAX_SWEEP_POINTS} points"))
        })?;
    let mut grid: Vec<Vec<f64>> = vec![Vec::with_capacity(axes.len())];
    for axis in axes {
        grid = grid
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |x| {
                    let mut q = p.clone();
                    q.push(*x);
                    q
                })
            })
            .collect();
    }
    debug_assert_eq!(grid.len(), points);
    Ok(grid)
}

/// `spec` with every parameter that [`Model::couple`] couples set to 0: the Poisson
/// event probabilities (`base.slash_prob`, `protocol.exploit_prob`, an AVS's `slash_prob`
/// and `incident_prob`, an operator's `fault_prob` and `slash_probs`), the AVSs'
/// `veto_prob`, and the numbers of a loan (`[leverage]` and `liquid.depeg_days`), which
/// draw nothing: its paths take the same random numbers whatever their values. Sweep
/// points that are equal after this differ only in what coupling holds for
/// (`docs/model.md#sweeps`). `liquid.depeg_prob` is among them only with a systematic
/// factor and without depeg episodes of a market oracle: without a factor, the depeg
/// and its discount are drawn from the path's generator, whose later draws they shift;
/// with one, from the path's own generator, both always; the episodes' count depends on
/// it.
pub(crate) fn without_coupled_parameters(spec: &ScenarioSpec) -> ScenarioSpec {
    let mut s = spec.clone();
    let episodes = s
        .leverage
        .as_ref()
        .is_some_and(|l| l.oracle == restake_core::leverage::Oracle::Market);
    if let Some(l) = &mut s.liquid {
        if s.systematic.is_some() && !episodes {
            l.depeg_prob = 0.0;
        }
        l.depeg_days = None;
    }
    if let Some(l) = &mut s.leverage {
        l.leverage = 0.0;
        l.liquidation_threshold = 0.0;
        l.liquidation_bonus = 0.0;
        l.close_factor = 0.0;
        l.full_close_below_hf = 0.0;
        l.borrow_apr = 0.0;
    }
    s.base.slash_prob = 0.0;
    s.protocol.exploit_prob = 0.0;
    for a in &mut s.avs {
        a.slash_prob = 0.0;
        a.incident_prob = 0.0;
        a.veto_prob = 0.0;
    }
    for o in &mut s.operators {
        o.fault_prob = 0.0;
        o.slash_probs.values_mut().for_each(|p| *p = 0.0);
    }
    s
}

/// `spec` with the value at the field path `path` ([`field_path_keys`]) set to `x`. Keys
/// name table keys; after an array of tables (`avs`, `operator`, `token`, `incentive`) a
/// key names an element by its `name` (`token` for an incentive). An operator's
/// `allocations.<AVS>` and `slash_probs.<AVS>` may be set where the file has none.
pub(crate) fn set_value(spec: &ScenarioSpec, path: &str, x: f64) -> Result<ScenarioSpec, RunError> {
    let bad = |why: String| RunError::BadInput(format!("--set {path}: {why}"));
    let keys = field_path_keys(path).map_err(bad)?;
    let segments: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut root = toml::Value::try_from(spec).map_err(|e| bad(e.to_string()))?;
    let mut at = &mut root;
    let mut i = 0;
    let mut done = false;
    while i < segments.len() {
        let key = segments[i];
        let table = at
            .as_table_mut()
            .ok_or_else(|| bad(format!("{} is not a table", segments[..i].join("."))))?;
        let last = i + 1 == segments.len();
        // An operator's per-AVS maps take new keys (validation checks the AVS).
        let in_map = i > 0 && PER_AVS_MAPS.contains(&segments[i - 1]);
        if last {
            match table.get(key) {
                Some(toml::Value::Float(_) | toml::Value::Integer(_)) => {
                    table.insert(key.to_string(), toml::Value::Float(x));
                    done = true;
                }
                None if in_map => {
                    table.insert(key.to_string(), toml::Value::Float(x));
                    done = true;
                }
                Some(_) => return Err(bad(format!("{key} is not a number"))),
                None => return Err(bad(format!("no field {key:?} here"))),
            }
            break;
        }
        if PER_AVS_MAPS.contains(&key) && !table.contains_key(key) {
            table.insert(key.to_string(), toml::Value::Table(toml::Table::new()));
        }
        let next = table
            .get_mut(key)
            .ok_or_else(|| bad(format!("no field {key:?}")))?;
        if let toml::Value::Array(items) = next {
            let name = segments
                .get(i + 1)
                .ok_or_else(|| bad(format!("{key} needs an element name")))?;
            let name_key = if key == "incentive" { "token" } else { "name" };
            at = items
                .iter_mut()
                .find(|item| item.get(name_key).and_then(|v| v.as_str()) == Some(*name))
                .ok_or_else(|| bad(format!("no {key} named {name:?}")))?;
            i += 2;
        } else {
            at = next;
            i += 1;
        }
    }
    if !done {
        return Err(bad("names a table, not a value".into()));
    }
    root.try_into()
        .map_err(|e: toml::de::Error| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_lists_and_ranges() {
        let a = parse_axis("avs.EigenDA.slash_prob=0.005, 0.01,0.02").unwrap();
        assert_eq!(a.path, "avs.EigenDA.slash_prob");
        assert_eq!(a.values, vec![0.005, 0.01, 0.02]);
        let r = parse_axis("base.apr_mean=0.02:0.04:3").unwrap();
        assert_eq!(r.values, vec![0.02, 0.03, 0.04]);
        for bad in ["nopath", "x=", "x=a,b", "x=0:1:1", "x=0:1:z", "=1"] {
            assert!(parse_axis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_grid_too_large_to_count_is_refused() {
        let axis = parse_axis("base.apr_mean=0:1:10000").unwrap();
        let axes = vec![axis; 5];
        assert!(grid(&axes).is_err());
        assert_eq!(grid(&axes[..1]).unwrap().len(), 10_000);
    }

    #[test]
    fn values_are_set_by_name_and_unknown_paths_refused() {
        let s = Scenario::from_toml(DEFAULT_SCENARIO).unwrap();
        let spec = set_value(s.spec(), "avs.EigenDA.slash_prob", 0.07).unwrap();
        let eigen_da = spec.avs.iter().find(|a| a.name == "EigenDA").unwrap();
        assert_eq!(eigen_da.slash_prob, 0.07);
        let spec = set_value(s.spec(), "base.apr_mean", 0.04).unwrap();
        assert_eq!(spec.base.apr_mean, 0.04);
        for (path, why) in [
            ("avs.Nope.slash_prob", "no avs named"),
            ("base.nope", "no field"),
            ("name", "not a number"),
            ("avs.EigenDA", "not a value"),
            ("avs", "not a number"),
        ] {
            let e = set_value(s.spec(), path, 1.0).unwrap_err().to_string();
            assert!(e.contains(path) && e.contains(why), "{path}: {e}");
        }
    }

    #[test]
    fn memory_is_estimated_and_checked_before_the_run() {
        let job = |text: String| {
            let source = Source {
                text,
                origin: "s.toml".into(),
            };
            Job::build(JobSpec::Run(source), Overrides::default(), 0).unwrap()
        };
        let default = job(DEFAULT_SCENARIO.to_string());
        assert!(default.check_memory(None).is_ok());
        assert!(default.check_memory(Some(u64::MAX)).is_ok());
        let e = default
            .check_memory(Some(1_000_000))
            .unwrap_err()
            .to_string();
        assert!(e.contains("GB of memory") && e.contains("s.toml"), "{e}");
        // The estimate grows with the contribution rows: 2,000 operators.
        let mut many = DEFAULT_SCENARIO
            .split("[[operator]]")
            .next()
            .unwrap()
            .to_string();
        for i in 0..2000 {
            many.push_str(&format!(
                "[[operator]]\nname = \"op-{i}\"\nweight = 0.0005\nfault_prob = 0.001\nallocations = {{ EigenDA = 0.3 }}\n"
            ));
        }
        let many = job(many);
        let estimate = |j: &Job| {
            restake_core::reduce::memory_estimate_bytes(
                &j.members[0].model,
                j.members[0].config.paths,
            )
        };
        assert!(
            estimate(&many) > estimate(&default) + 50_000_000,
            "{}",
            estimate(&many)
        );
        // Flat in paths but for the tail windows: 1e8 paths cost little more than 1e6.
        let m = &default.members[0];
        let (small, large) = (
            restake_core::reduce::memory_estimate_bytes(&m.model, 1_000_000),
            restake_core::reduce::memory_estimate_bytes(&m.model, 100_000_000),
        );
        assert!(large > small && large < small * 2, "{small} {large}");
    }

    #[test]
    fn every_preset_is_bundled_under_its_name() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/scenarios");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        files.sort();
        let names: Vec<String> = PRESETS.iter().map(|(n, _)| format!("{n}.toml")).collect();
        assert_eq!(files, names, "data/scenarios and PRESETS differ");
        for (name, text) in PRESETS {
            assert_eq!(Scenario::from_toml(text).unwrap().spec().name, name);
            let source = Source::read(Some(Path::new(name))).unwrap();
            assert_eq!(source.text, text);
        }
        assert_eq!(
            Scenario::from_toml(DEFAULT_SCENARIO).unwrap().spec().name,
            "etherfi-weeth"
        );
        let e = Source::read(Some(Path::new("etherfi-weth")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nor a bundled preset") && e.contains("etherfi-weeth"),
            "{e}"
        );
    }

    #[test]
    fn field_paths_follow_toml_dotted_keys_and_reach_every_name() {
        assert_eq!(
            field_path_keys("operator.\"ether.fi-1 - Pier Two\".fault_prob").unwrap(),
            ["operator", "ether.fi-1 - Pier Two", "fault_prob"]
        );
        assert_eq!(
            field_path_keys("avs.'a=b'.slash_prob").unwrap(),
            ["avs", "a=b", "slash_prob"]
        );
        for bad in [
            "operator.ether.fi-1 - Pier Two.fault_prob",
            "a.b\nc = 1",
            "a..b",
            "",
        ] {
            let e = field_path_keys(bad).unwrap_err();
            assert!(e.contains("quoting names"), "{bad}: {e}");
        }
        let s = Scenario::from_toml(DEFAULT_SCENARIO).unwrap();
        let op = "ether.fi-1 - Pier Two";
        let spec = set_value(s.spec(), &format!("operator.\"{op}\".fault_prob"), 0.02).unwrap();
        let find = |spec: &ScenarioSpec| {
            spec.operators
                .iter()
                .find(|o| o.name == op)
                .cloned()
                .unwrap()
        };
        assert_eq!(find(&spec).fault_prob, 0.02);
        // A per-AVS override the file does not have.
        assert!(!find(s.spec()).slash_probs.contains_key("EigenDA"));
        let spec = set_value(
            s.spec(),
            &format!("operator.\"{op}\".slash_probs.EigenDA"),
            0.03,
        )
        .unwrap();
        assert_eq!(find(&spec).slash_probs["EigenDA"], 0.03);
        // One axis per field, however it is spelled.
        let sets = vec!["base.fee=0.1".to_string(), "\"base\".'fee'=0.2".to_string()];
        let e = Job::build(
            JobSpec::Sweep {
                base: Source::read(None).unwrap(),
                sets,
            },
            Overrides::default(),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("the same field"), "{e}");
    }

    #[test]
    fn range_values_are_the_decimals_they_mean() {
        // Plain float steps give 0.09999999999999999, 0.30000000000000004, 0.7000000000000001.
        let a = parse_axis("base.fee=0:0.3:4").unwrap();
        assert_eq!(a.values, [0.0, 0.1, 0.2, 0.3]);
        let b = parse_axis("base.fee=0.1:1:10").unwrap();
        let expected: Vec<f64> = (1..=10).map(|i| i as f64 / 10.0).collect();
        assert_eq!(b.values, expected);
        let c = parse_axis("base.fee=0.001:0.01:10").unwrap();
        assert_eq!(c.values[5], 0.006);
        assert_eq!(c.values[9], 0.01);
    }
}
