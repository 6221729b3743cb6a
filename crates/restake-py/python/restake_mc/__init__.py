"""restake-mc from Python: Monte Carlo yield and loss of restaked ETH positions.

The same engine, scenarios and numbers as the ``restake-mc`` command line: the same
scenario, seed and path count give the same numbers, bit for bit, whatever the thread
count. Results come as pandas DataFrames with the columns of the command line's CSVs
(the README's "Output files" describes every column), and ``write(folder)`` writes the
command line's output folder.

A scenario is a path to a TOML file (``str`` or ``os.PathLike``), the name of a bundled
preset (``presets()``), TOML text, or a dict of the file's tables; ``None`` is the
bundled default (ether.fi weETH). Anything that does not check out raises
``ValueError`` with the command line's message, which names the field (and, for TOML
text, its line and column).

The simulation runs with the GIL released, on ``threads`` worker threads (``None``: one
per core). ``progress``, if given, is called as ``progress(done, total)`` with the paths
simulated so far, from the worker threads; an exception it raises is raised once the
simulation ends. A tqdm bar, for instance::

    from tqdm import tqdm
    with tqdm(unit="path") as bar:
        def show(done, total):
            bar.total = total
            bar.update(done - bar.n)
        result = restake_mc.run("etherfi-weeth", paths=10_000_000, progress=show)

See ``docs/python.md`` for a worked example.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from . import _native

__all__ = [
    "Batch",
    "RestakeWarning",
    "Results",
    "RunResults",
    "Stress",
    "Sweep",
    "batch",
    "paths",
    "paths_arrow",
    "presets",
    "run",
    "stress",
    "sweep",
]

__version__: str = _native.__version__

Scenario = Union[str, "os.PathLike[str]", Mapping[str, Any], None]
"""A scenario: a file path, a preset's name, TOML text, a dict of tables, or None."""

Progress = Callable[[int, int], object]
"""``progress(done, total)``: paths simulated so far, and in all."""


class RestakeWarning(UserWarning):
    """A warning the command line prints: a sweep that could not be coupled, or a VaR
    level with too few paths beyond it."""


def presets() -> list[str]:
    """The names of the bundled preset scenarios, in order."""
    return list(_native.presets())


def _source(scenario: Scenario) -> tuple[str, Any]:
    """The ``(kind, value)`` pair the extension module takes for a scenario."""
    if scenario is None:
        return ("default", None)
    if isinstance(scenario, Mapping):
        return ("dict", dict(scenario))
    if isinstance(scenario, os.PathLike):
        return ("path", os.fspath(scenario))
    if isinstance(scenario, str):
        # TOML text has a line break or a key and its value; a path or a preset's name
        # has neither (or names an existing file).
        if "\n" in scenario or ("=" in scenario and not os.path.exists(scenario)):
            return ("text", scenario)
        return ("path", scenario)
    raise TypeError(
        f"a scenario is a path, a preset's name, TOML text, a dict or None, not {type(scenario).__name__}"
    )


def _threads(threads: int | None) -> int:
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1 or None, not {threads!r}")
    return threads


def _count(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0 or None, not {value!r}")
    return int(value)


def _simulate(
    kind: str,
    scenarios: Sequence[Scenario],
    sets: Sequence[str],
    paths: int | None,
    seed: int | None,
    threads: int | None,
    progress: Progress | None,
) -> Any:
    job = _native.simulate(
        kind,
        [_source(s) for s in scenarios],
        list(sets),
        _count("paths", paths),
        _count("seed", seed),
        _threads(threads),
        progress,
    )
    for w in job.warnings:
        warnings.warn(w, RestakeWarning, stacklevel=3)
    return job


def _frame(data: bytes) -> pd.DataFrame:
    """A CSV of the output folder as a DataFrame: numbers as float64 or int64, text as
    str."""
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])


class _Files:
    """The output folder of a simulated job, its CSVs read on first use."""

    def __init__(self, job: Any) -> None:
        self._job = job
        self._files: dict[str, bytes] | None = None
        self._frames: dict[str, pd.DataFrame] = {}

    @property
    def files(self) -> dict[str, bytes]:
        """Every file of the output folder by name (relative, ``/`` between parts)."""
        if self._files is None:
            self._files = dict(self._job.files())
        return self._files

    def frame(self, name: str) -> pd.DataFrame:
        """The CSV ``name`` of the output folder as a DataFrame (a copy)."""
        if name not in self._frames:
            if name not in self.files:
                raise KeyError(f"the output folder has no {name}")
            self._frames[name] = _frame(self.files[name])
        return self._frames[name].copy()

    def write(self, folder: str | os.PathLike[str], excel: bool, xlsx: bool) -> list[Path]:
        return [Path(p) for p in self._job.write(os.fspath(folder), excel, xlsx)]


class Results:
    """The results of one scenario (of a run, or one member of a batch or stress job).

    Every table is a pandas DataFrame with the columns of the CSV of the same name
    (the README's "Output files"): returns and probabilities as fractions, amounts in ETH.
    """

    def __init__(self, files: _Files, folder: str, label: str) -> None:
        self._files = files
        self._prefix = f"{folder}/" if folder else ""
        self.label: str = label
        """The scenario's name in messages (with the stress's name in a stress job)."""

    def __repr__(self) -> str:
        return f"<restake_mc.Results {self.label}>"

    def table(self, name: str) -> pd.DataFrame:
        """The CSV ``name`` (``"summary.csv"``, ...) of this scenario's output folder."""
        return self._files.frame(self._prefix + name)

    @property
    def summary(self) -> pd.DataFrame:
        """``summary.csv``: one row per metric; columns ``metric``, ``value``,
        ``std_error``, ``ci_low``, ``ci_high`` (95% interval) and ``unit``."""
        return self.table("summary.csv")

    @property
    def quantiles(self) -> pd.DataFrame:
        """``quantiles.csv``: the net return at each probability, with its interval."""
        return self.table("quantiles.csv")

    @property
    def contributions(self) -> pd.DataFrame:
        """``contributions.csv``: each source's event probability, expected loss (ETH)
        and share of each expected shortfall (ETH); the rows add up to ES x principal."""
        return self.table("contributions.csv")

    @property
    def contributions_by_avs(self) -> pd.DataFrame:
        """``contributions_by_avs.csv``: the same, all slashing through each AVS."""
        return self.table("contributions_by_avs.csv")

    @property
    def contributions_by_operator(self) -> pd.DataFrame:
        """``contributions_by_operator.csv``: the same, all slashing of each operator's
        stake."""
        return self.table("contributions_by_operator.csv")

    @property
    def fan_chart(self) -> pd.DataFrame:
        """``fan_chart.csv``: quantiles of V(t)/P at each checkpoint ``day``."""
        return self.table("fan_chart.csv")

    @property
    def convergence(self) -> pd.DataFrame:
        """``convergence.csv``: the estimates on growing prefixes of the paths."""
        return self.table("convergence.csv")

    @property
    def return_distribution(self) -> pd.DataFrame:
        """``return_distribution.csv``: the histogram of the net return."""
        return self.table("return_distribution.csv")

    @property
    def loss_distribution(self) -> pd.DataFrame:
        """``loss_distribution.csv``: the histogram of the slashing loss."""
        return self.table("loss_distribution.csv")

    def metric(self, name: str) -> float:
        """The value of the ``summary.csv`` metric ``name`` (``"es_99"``, ...).

        Raises ``KeyError`` for a metric the summary does not have."""
        s = self.summary
        row = s[s.metric == name]
        if row.empty:
            raise KeyError(f"summary.csv has no metric {name!r}")
        return float(row.value.iloc[0])


class _Job:
    """What every simulated job has: its files, and ``write``."""

    def __init__(self, job: Any) -> None:
        self._job = job
        self._files = _Files(job)

    @property
    def files(self) -> dict[str, bytes]:
        """Every file of the output folder by name: CSVs, plots, ``report.html``,
        ``run.json``."""
        return dict(self._files.files)

    def write(
        self, folder: str | os.PathLike[str], excel: bool = False, xlsx: bool = False
    ) -> list[Path]:
        """Writes the command line's output folder to ``folder``, replacing it whole
        (nothing is left half-written). ``excel``: CSVs with a byte-order mark and CRLF
        line ends; ``xlsx``: a ``report.xlsx`` beside the CSVs. Returns the paths
        written.

        Raises ``ValueError`` for a folder that cannot be an output folder (a file, a
        folder of other files), ``OSError`` when a file cannot be written."""
        return self._files.write(folder, excel, xlsx)

    def _members(self) -> dict[str, Results]:
        return {
            folder: Results(self._files, folder, label)
            for folder, label in zip(self._job.folders, self._job.labels)
        }


def run(
    scenario: Scenario = None,
    paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> RunResults:
    """Simulates one scenario, as ``restake-mc run``.

    ``paths`` and ``seed`` override the scenario's ``[simulation]`` table. Returns its
    results: the tables as DataFrames (``summary``, ``quantiles``, ``contributions``,
    ``contributions_by_avs``, ``contributions_by_operator``, ``fan_chart``, ...), the
    output folder's ``files``, and ``write(folder)``.

    Raises ``ValueError`` for a scenario or value that does not check out."""
    job = _simulate("run", [scenario], [], paths, seed, threads, progress)
    return RunResults(job)


class RunResults(_Job, Results):
    """The results of :func:`run`: the tables of :class:`Results`, ``files`` and
    ``write(folder)``."""

    def __init__(self, job: Any) -> None:
        _Job.__init__(self, job)
        Results.__init__(self, self._files, "", job.labels[0])


class Batch(_Job):
    """The results of :func:`batch`: every scenario on one seed (common random
    numbers)."""

    def __init__(self, job: Any) -> None:
        super().__init__(job)
        self.results: dict[str, Results] = self._members()
        """Each scenario's results, by its name (its folder)."""

    @property
    def summary(self) -> pd.DataFrame:
        """``batch_summary.csv``: one row per scenario, the headline metrics."""
        return self._files.frame("batch_summary.csv")

    @property
    def metrics(self) -> pd.DataFrame:
        """``batch_metrics.csv``: one row per scenario and metric, long format."""
        return self._files.frame("batch_metrics.csv")


def batch(
    scenarios: Sequence[Scenario],
    paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Batch:
    """Simulates several scenarios on one seed (42 unless given), as
    ``restake-mc batch``; scenario names must differ (they name the folders)."""
    if isinstance(scenarios, (str, Mapping, os.PathLike)):
        raise TypeError("batch takes a list of scenarios")
    return Batch(_simulate("batch", list(scenarios), [], paths, seed, threads, progress))


class Sweep(_Job):
    """The results of :func:`sweep`: one row of ``table`` per grid point."""

    @property
    def table(self) -> pd.DataFrame:
        """``sweep.csv``: the swept values, then each metric with its standard error
        and interval, one row per grid point."""
        return self._files.frame("sweep.csv")

    @property
    def coupled(self) -> bool:
        """Whether the points are coupled path by path (they differ only in event,
        veto or loan terms): differences between points are then far more precise
        than each point."""
        return bool(self._job.coupled)


def _axis(path: str, values: Any) -> str:
    if isinstance(values, str):
        return f"{path}={values}"
    return f"{path}=" + ",".join(repr(float(v)) for v in values)


def sweep(
    scenario: Scenario,
    grid: Mapping[str, Any] | Sequence[str],
    paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Sweep:
    """Runs a grid of variants of a scenario on common random numbers, as
    ``restake-mc sweep``.

    ``grid`` maps field paths (``"avs.EigenDA.slash_prob"``,
    ``"leverage.leverage"``, ...) to values (a list of numbers, or ``"a,b,c"`` /
    ``"start:stop:count"``), or is a list of ``"PATH=VALUES"`` strings; several axes
    make a grid, the last fastest."""
    if isinstance(grid, Mapping):
        sets = [_axis(p, v) for p, v in grid.items()]
    else:
        sets = list(grid)
    return Sweep(_simulate("sweep", [scenario], sets, paths, seed, threads, progress))


class Stress(_Job):
    """The results of :func:`stress`: the scenario (``base``) and each of its
    ``[[stress]]`` tests on common random numbers."""

    def __init__(self, job: Any) -> None:
        super().__init__(job)
        self.results: dict[str, Results] = self._members()
        """Each stress's results by its name, ``base`` first."""

    @property
    def table(self) -> pd.DataFrame:
        """``stress.csv``: one row per stress, its headline metrics and their changes
        from the base."""
        return self._files.frame("stress.csv")


def stress(
    scenario: Scenario = None,
    paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Stress:
    """Runs a scenario and each of its ``[[stress]]`` tests, as ``restake-mc stress``."""
    return Stress(_simulate("stress", [scenario], [], paths, seed, threads, progress))


def _columns(
    scenario: Scenario,
    paths: int | None,
    seed: int | None,
    threads: int | None,
    progress: Progress | None,
) -> dict[str, np.ndarray]:
    columns = _native.paths(
        _source(scenario), _count("paths", paths), _count("seed", seed), _threads(threads), progress
    )
    return {name: np.frombuffer(data, dtype=dtype) for name, dtype, data in columns}


def paths(
    scenario: Scenario = None,
    paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every path of a run, one row each in path order: the columns of
    ``restake-mc run --paths-out`` without a file.

    ``path`` (uint64), ``net_return`` and ``excess_return`` (fractions of the
    principal), ``slashing_loss_eth``, ``base_income_eth``, ``avs_fee_income_eth``,
    ``incentive_value_eth``, ``depeg_loss_eth`` (ETH); with ``[leverage]``,
    ``liquidation_loss_eth``, ``borrow_cost_eth``, ``bad_debt_eth`` and
    ``liquidations`` (uint32); then ``avs:<name>`` for each AVS and
    ``operator:<name>`` for each operator, the slashing loss through it in ETH. The
    paths are those of :func:`run` with the same arguments: the mean of ``net_return``
    is its ``mean_net_return``.

    Raises ``ValueError`` past 4 GB of columns, with the estimated size."""
    return pd.DataFrame(_columns(scenario, paths, seed, threads, progress), copy=False)


def paths_arrow(
    scenario: Scenario = None,
    paths: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Any:
    """The table of :func:`paths` as a ``pyarrow.Table``, every field non-null, as in
    the Parquet file (needs pyarrow: ``pip install './crates/restake-py[arrow]'``)."""
    import pyarrow as pa

    arrays = {name: pa.array(v) for name, v in _columns(scenario, paths, seed, threads, progress).items()}
    schema = pa.schema([pa.field(name, a.type, nullable=False) for name, a in arrays.items()])
    return pa.table(list(arrays.values()), schema=schema)
