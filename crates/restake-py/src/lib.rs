//! # restake-py
//!
//! The extension module `restake_mc._native` behind the Python package `restake_mc`
//! (`python/restake_mc/`, `docs/python.md`). It binds the run library
//! ([`restake_run`]) as the command line does: a job is built from scenarios ([`Job`]),
//! simulated with the GIL released, and rendered into the files of the command line's
//! output folder, which the package reads into pandas DataFrames or writes to a folder.
//! Every path of a run comes as columns of little-endian bytes ([`paths`]), which the
//! package wraps as numpy arrays without a copy.
//!
//! Errors: a scenario, flag or value that does not check out raises `ValueError` with
//! the message the command line prints after `error: `; a file that cannot be written
//! raises `OSError`.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use restake_core::Results;
use restake_report::{CsvStyle, OutputFile, RunInfo};
use restake_run::paths::ColumnData;
use restake_run::publish::Output;
use restake_run::{JobSpec, Overrides, RunError, ShardPlan, Source};

/// Origin of a scenario given as TOML text, in messages.
const TEXT_ORIGIN: &str = "<scenario text>";

/// Origin of a scenario given as a dict, in messages.
const DICT_ORIGIN: &str = "<scenario dict>";

/// A run library error as a Python exception: bad input is `ValueError`, a file that
/// cannot be written `OSError`, a signal `KeyboardInterrupt`.
fn py_error(e: RunError) -> PyErr {
    match e {
        RunError::BadInput(m) => PyValueError::new_err(m),
        RunError::Io { .. } => PyOSError::new_err(e.to_string()),
        RunError::Interrupted => PyKeyboardInterrupt::new_err(e.to_string()),
        RunError::Write { .. } => PyRuntimeError::new_err(e.to_string()),
    }
}

/// The scenario of a `(kind, value)` pair from the package: `("default", None)` for the
/// bundled default, `("path", str)` for a file or a preset's name, `("text", str)` for
/// TOML text, `("dict", dict)` for a dict of the scenario file's tables.
fn source(kind: &str, value: &Bound<'_, PyAny>) -> PyResult<Source> {
    match kind {
        "default" => Source::read(None).map_err(py_error),
        "path" => {
            let path: PathBuf = value.extract()?;
            Source::read(Some(&path)).map_err(py_error)
        }
        "text" => Ok(Source {
            text: value.extract()?,
            origin: TEXT_ORIGIN.into(),
        }),
        "dict" => {
            let dict = value.cast::<PyDict>()?;
            let table: toml::Table = pythonize::depythonize(dict).map_err(|e| {
                PyValueError::new_err(format!(
                    "{DICT_ORIGIN}: not a scenario's tables (dicts of str, int, float, bool and lists; no None): {e}"
                ))
            })?;
            let text = toml::to_string(&table).map_err(|e| {
                PyValueError::new_err(format!("{DICT_ORIGIN}: cannot be written as TOML: {e}"))
            })?;
            Ok(Source {
                text,
                origin: DICT_ORIGIN.into(),
            })
        }
        other => Err(PyTypeError::new_err(format!(
            "unknown scenario kind {other:?}"
        ))),
    }
}

/// A progress callback `progress(done, total)` called from the worker threads, with
/// the GIL taken for the call; the first exception it raises is kept and raised once
/// the simulation ends.
struct Progress {
    callback: Option<Py<PyAny>>,
    total: u64,
    error: Mutex<Option<PyErr>>,
}

impl Progress {
    fn new(callback: Option<Py<PyAny>>, total: u64) -> Self {
        Self {
            callback,
            total,
            error: Mutex::new(None),
        }
    }

    fn report(&self, done: u64) {
        let Some(callback) = &self.callback else {
            return;
        };
        let mut error = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if error.is_none() {
            *error = Python::attach(|py| callback.call1(py, (done, self.total)).err());
        }
    }

    /// The exception the callback raised, if any.
    fn finish(self) -> PyResult<()> {
        match self
            .error
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A simulated job: its members' results, and the files of its output folder.
#[pyclass(frozen, module = "restake_mc._native")]
struct Job {
    job: restake_run::Job,
    results: Vec<Results>,
    infos: Vec<RunInfo>,
    /// The output folder's files with plain CSVs and no workbook, rendered once.
    files: OnceLock<Vec<OutputFile>>,
}

impl Job {
    fn rendered(&self) -> PyResult<&[OutputFile]> {
        if let Some(files) = self.files.get() {
            return Ok(files);
        }
        let files = restake_run::render_job(
            &self.job,
            &self.results,
            &self.infos,
            CsvStyle::Plain,
            false,
        )
        .map_err(py_error)?;
        Ok(self.files.get_or_init(|| files))
    }
}

#[pymethods]
impl Job {
    /// The output folder's files as `(name, bytes)` pairs, names relative to the
    /// folder with `/` between parts, as `restake-mc` writes them (plain CSVs).
    fn files<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyBytes>)>> {
        Ok(self
            .rendered()?
            .iter()
            .map(|(name, bytes)| (name.clone(), PyBytes::new(py, bytes)))
            .collect())
    }

    /// Writes the output folder to `folder`, replacing it whole, as the command line
    /// does (`excel`: CSVs with a byte-order mark and CRLF; `xlsx`: `report.xlsx` too).
    /// Returns the paths written.
    #[pyo3(signature = (folder, excel = false, xlsx = false))]
    fn write(
        &self,
        py: Python<'_>,
        folder: PathBuf,
        excel: bool,
        xlsx: bool,
    ) -> PyResult<Vec<PathBuf>> {
        let output = Output::prepare(&folder).map_err(py_error)?;
        let rendered;
        let files = if excel || xlsx {
            rendered = restake_run::render_job(
                &self.job,
                &self.results,
                &self.infos,
                CsvStyle::for_excel(excel),
                xlsx,
            )
            .map_err(py_error)?;
            &rendered[..]
        } else {
            self.rendered()?
        };
        py.detach(|| output.publish(files)).map_err(py_error)
    }

    /// What was run: `run`, `batch`, `sweep` or `stress`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.job.spec {
            JobSpec::Run(_) => "run",
            JobSpec::Batch(_) => "batch",
            JobSpec::Sweep { .. } => "sweep",
            JobSpec::Stress(_) => "stress",
        }
    }

    /// Each member's folder in the output folder: `""` for a run (the folder itself),
    /// the scenario's name in a batch, the stress's name (`base` first) in stress
    /// tests; a sweep's points have none (`None`).
    #[getter]
    fn folders(&self) -> Vec<Option<String>> {
        self.job
            .members
            .iter()
            .map(|m| match self.job.spec {
                JobSpec::Run(_) => Some(String::new()),
                JobSpec::Batch(_) => Some(m.scenario.spec().name.clone()),
                JobSpec::Stress(_) => Some(m.stress_name().to_string()),
                JobSpec::Sweep { .. } => None,
            })
            .collect()
    }

    /// Each member's name in messages (`etherfi-weeth at base.fee = 0.05`).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.job
            .members
            .iter()
            .map(|m| self.job.member_label(m))
            .collect()
    }

    /// Whether a sweep's points are coupled path by path (`docs/model.md#sweeps`).
    #[getter]
    fn coupled(&self) -> bool {
        self.job.coupled
    }

    /// The warnings the command line prints: a sweep that could not be coupled, a VaR
    /// level with few paths beyond it.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        let mut warnings = self.job.warnings.clone();
        for (m, r) in self.job.members.iter().zip(&self.results) {
            warnings.extend(restake_run::thin_tail_warnings(
                &self.job.member_label(m),
                r,
            ));
        }
        warnings
    }
}

/// Builds and checks a job, then simulates each member whole with the GIL released.
///
/// `kind` is `run`, `batch`, `sweep` or `stress`; `scenarios` the `(kind, value)` pairs
/// of [`source`] (one, or a batch's several); `sets` a sweep's `PATH=VALUES` axes;
/// `paths` and `seed` override the scenario's `[simulation]`; `threads` 0 is one per
/// core and changes no result; `progress(done, total)`, if given, is called with the
/// paths simulated so far over all members.
///
/// # Errors
/// `ValueError` with the command line's message for anything that does not check out;
/// whatever `progress` raised.
#[pyfunction]
#[pyo3(signature = (kind, scenarios, sets, paths = None, seed = None, threads = 0, progress = None))]
#[allow(clippy::too_many_arguments)]
fn simulate(
    py: Python<'_>,
    kind: &str,
    scenarios: Vec<(String, Bound<'_, PyAny>)>,
    sets: Vec<String>,
    paths: Option<u64>,
    seed: Option<u64>,
    threads: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Job> {
    let sources = scenarios
        .iter()
        .map(|(k, v)| source(k, v))
        .collect::<PyResult<Vec<_>>>()?;
    let spec = match (kind, sources.first().cloned()) {
        ("batch", _) => JobSpec::Batch(sources),
        ("run", Some(s)) => JobSpec::Run(s),
        ("sweep", Some(base)) => JobSpec::Sweep { base, sets },
        ("stress", Some(s)) => JobSpec::Stress(s),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "a {kind:?} job of {} scenario(s)",
                sources.len()
            )));
        }
    };
    let job =
        restake_run::Job::build(spec, Overrides { paths, seed }, threads).map_err(py_error)?;
    let total = job.members.iter().map(|m| m.config.paths).sum();
    let progress = Progress::new(progress, total);
    let (results, infos) = py
        .detach(|| {
            let mut results = Vec::new();
            let mut infos = Vec::new();
            let mut before = 0;
            for member in &job.members {
                let start = Instant::now();
                let partial =
                    member.simulate(ShardPlan::WHOLE, &|done| progress.report(before + done))?;
                results.push(member.finish(partial)?);
                infos.push(restake_run::run_info(
                    member,
                    threads,
                    1,
                    start.elapsed().as_secs_f64(),
                ));
                before += member.config.paths;
            }
            Ok::<_, RunError>((results, infos))
        })
        .map_err(py_error)?;
    progress.finish()?;
    Ok(Job {
        job,
        results,
        infos,
        files: OnceLock::new(),
    })
}

/// Every path of a run, one row each in path order: the columns of
/// `restake-mc run --paths-out` ([`restake_run::paths`]) as `(name, dtype, bytes)`,
/// `dtype` a numpy type string (`<u8`, `<u4`, `<f8`) of the little-endian `bytes`.
/// Simulated with the GIL released; arguments as [`simulate`]'s.
///
/// # Errors
/// `ValueError` for a scenario that does not check out, or a table past
/// [`restake_run::paths::MAX_PATHS_OUTPUT_BYTES`] (with its estimated size).
#[pyfunction]
#[pyo3(signature = (scenario, paths = None, seed = None, threads = 0, progress = None))]
fn paths<'py>(
    py: Python<'py>,
    scenario: (String, Bound<'py, PyAny>),
    paths: Option<u64>,
    seed: Option<u64>,
    threads: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Vec<(String, &'static str, Bound<'py, PyBytes>)>> {
    let source = source(&scenario.0, &scenario.1)?;
    let job = restake_run::Job::build(JobSpec::Run(source), Overrides { paths, seed }, threads)
        .map_err(py_error)?;
    let member = &job.members[0];
    let progress = Progress::new(progress, member.config.paths);
    let columns = py
        .detach(|| restake_run::paths::columns(member, &|done| progress.report(done)))
        .map_err(py_error)?;
    progress.finish()?;
    Ok(columns
        .into_iter()
        .map(|c| {
            let (dtype, bytes): (&str, Vec<u8>) = match c.data {
                ColumnData::Index(v) => ("<u8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                ColumnData::Count(v) => ("<u4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                ColumnData::Value(v) => ("<f8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            (c.name, dtype, PyBytes::new(py, &bytes))
        })
        .collect())
}

/// The names of the bundled presets, in order (`restake-mc run <name>` runs one).
#[pyfunction]
fn presets() -> Vec<&'static str> {
    restake_run::job::PRESETS.iter().map(|(n, _)| *n).collect()
}

/// The module `restake_mc._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Job>()?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(paths, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
