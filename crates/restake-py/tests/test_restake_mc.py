"""Tests of the Python package against the command line, in a fresh venv (.ci/run).

The command-line binary is ``$RESTAKE_MC`` or ``target/release/restake-mc`` of the
repository; without it the tests that compare with it are skipped, except under CI
(``CI`` set), where they fail.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import restake_mc as rm

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "data" / "scenarios"
# Files whose bytes hold the time of the run, compared field by field instead.
TIMED = {"run.json", "report.html"}


def cli_binary() -> Path:
    binary = Path(os.environ.get("RESTAKE_MC", ROOT / "target" / "release" / "restake-mc"))
    if not binary.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is missing: build it with cargo build --release")
        pytest.skip(f"{binary} is missing: build it with cargo build --release")
    return binary


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(cli_binary()), *args], capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"restake-mc {' '.join(args)} failed: {result.stderr}")
    return result


def folder_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def assert_same_folder(cli_folder: Path, py_folder: Path) -> None:
    a, b = folder_files(cli_folder), folder_files(py_folder)
    assert sorted(a) == sorted(b)
    differ = [n for n in a if Path(n).name not in TIMED and a[n] != b[n]]
    assert not differ, f"files that differ from the command line's: {differ}"


def test_a_run_writes_the_command_lines_folder_byte_for_byte(tmp_path: Path) -> None:
    cli("run", "etherfi-weeth", "--paths", "30000", "--seed", "11", "--quiet",
        "--out", str(tmp_path / "cli"))
    result = rm.run("etherfi-weeth", paths=30_000, seed=11)
    written = result.write(tmp_path / "py")
    assert len(written) == len(folder_files(tmp_path / "py"))
    assert_same_folder(tmp_path / "cli", tmp_path / "py")
    # The DataFrames are those CSVs.
    pd.testing.assert_frame_equal(result.summary, pd.read_csv(tmp_path / "cli" / "summary.csv"))
    pd.testing.assert_frame_equal(
        result.contributions_by_avs, pd.read_csv(tmp_path / "cli" / "contributions_by_avs.csv")
    )
    assert result.metric("mean_net_return") == float(
        pd.read_csv(tmp_path / "cli" / "summary.csv").set_index("metric").value["mean_net_return"]
    )


def test_batch_sweep_and_stress_give_the_command_lines_tables(tmp_path: Path) -> None:
    presets = ["etherfi-weeth", "renzo-ezeth"]
    cli("batch", *presets, "--paths", "8192", "--quiet", "--out", str(tmp_path / "b"))
    b = rm.batch(presets, paths=8192)
    assert (tmp_path / "b" / "batch_summary.csv").read_bytes() == b.files["batch_summary.csv"]
    assert sorted(b.results) == presets
    pd.testing.assert_frame_equal(
        b.results["renzo-ezeth"].summary, pd.read_csv(tmp_path / "b" / "renzo-ezeth" / "summary.csv")
    )

    cli("sweep", "etherfi-weeth", "--set", "avs.EigenDA.slash_prob=0.01,0.05", "--paths",
        "8192", "--quiet", "--out", str(tmp_path / "s"))
    s = rm.sweep("etherfi-weeth", {"avs.EigenDA.slash_prob": [0.01, 0.05]}, paths=8192)
    assert (tmp_path / "s" / "sweep.csv").read_bytes() == s.files["sweep.csv"]
    assert s.coupled and len(s.table) == 2

    cli("stress", "etherfi-weeth", "--paths", "8192", "--quiet", "--out", str(tmp_path / "t"))
    t = rm.stress("etherfi-weeth", paths=8192)
    assert (tmp_path / "t" / "stress.csv").read_bytes() == t.files["stress.csv"]
    assert next(iter(t.results)) == "base"
    t.write(tmp_path / "t-py")
    assert_same_folder(tmp_path / "t", tmp_path / "t-py")


def test_threads_change_no_number() -> None:
    one = rm.run("weeth-aave-loop", paths=20_000, seed=3, threads=1)
    two = rm.run("weeth-aave-loop", paths=20_000, seed=3, threads=2)
    for name in ["summary.csv", "quantiles.csv", "contributions.csv", "fan_chart.csv"]:
        assert one.files[name] == two.files[name], name
    pd.testing.assert_frame_equal(
        rm.paths("weeth-aave-loop", paths=20_000, seed=3, threads=1),
        rm.paths("weeth-aave-loop", paths=20_000, seed=3, threads=2),
    )


def test_bad_input_raises_value_error_with_the_command_lines_message(tmp_path: Path) -> None:
    text = (SCENARIOS / "etherfi-weeth.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("principal_eth = 100.0", "principal_eth = -5.0", 1))
    assert bad.read_text() != text
    result = cli("run", str(bad), "--out", str(tmp_path / "out"), check=False)
    assert result.returncode == 2
    with pytest.raises(ValueError) as raised:
        rm.run(bad)
    assert result.stderr.strip() == f"error: {raised.value}"
    assert "principal_eth" in str(raised.value)
    assert not (tmp_path / "out").exists()

    # TOML text: the message gives the line and column.
    with pytest.raises(ValueError, match=r"<scenario text>: TOML parse error at line 2, column 10"):
        rm.run('name = "x"\n[position\n')
    # A dict: the field is named.
    scenario = tomllib.loads(text)
    scenario["avs"][0]["slash_prob"] = 1.5
    with pytest.raises(ValueError, match=r"slash_prob"):
        rm.run(scenario)
    with pytest.raises(ValueError, match="no such file, nor a bundled preset"):
        rm.run("no-such-preset")
    with pytest.raises(ValueError, match="--set"):
        rm.sweep(None, ["avs.EigenDA.slash_prob"])
    with pytest.raises(ValueError, match="threads"):
        rm.run(threads=0)


def test_a_dict_scenario_is_the_file() -> None:
    as_dict = tomllib.loads((SCENARIOS / "renzo-ezeth.toml").read_text())
    from_dict = rm.run(as_dict, paths=8192)
    from_file = rm.run(SCENARIOS / "renzo-ezeth.toml", paths=8192)
    assert from_dict.files["summary.csv"] == from_file.files["summary.csv"]


def test_every_table_has_numeric_columns_as_numbers() -> None:
    result = rm.run("weeth-aave-loop", paths=20_000)
    csvs = [n for n in result.files if n.endswith(".csv")]
    assert "summary.csv" in csvs and "contributions_by_operator.csv" in csvs
    for name in csvs:
        frame = result.table(name)
        for column in frame:
            values = frame[column]
            if pd.api.types.is_numeric_dtype(values):
                continue
            # A text column holds no numbers: a column mixing them would be a number
            # column pandas could not read as one.
            assert pd.to_numeric(values, errors="coerce").isna().all(), (name, column)
    summary = result.summary
    for column in ["value", "std_error", "ci_low", "ci_high"]:
        assert summary[column].dtype == np.float64, column
    assert result.fan_chart["day"].dtype == np.int64


def test_the_parquet_file_is_every_path_and_its_mean_is_the_summarys(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    for preset, paths in [("etherfi-weeth", 100_000), ("weeth-aave-loop", 50_000)]:
        out, file = tmp_path / preset, tmp_path / f"{preset}.parquet"
        cli("run", preset, "--paths", str(paths), "--quiet", "--out", str(out),
            "--paths-out", str(file))
        table = pq.read_table(file)
        assert table.num_rows == paths
        frame = table.to_pandas()
        assert (frame["path"].to_numpy() == np.arange(paths)).all()
        summary = pd.read_csv(out / "summary.csv").set_index("metric").value
        mean = math.fsum(frame["net_return"]) / paths
        assert mean == pytest.approx(summary["mean_net_return"], rel=1e-14, abs=0.0)
        # ES 99 is the mean loss of the worst 1% of paths (paths / 100 is whole).
        worst = frame["net_return"].nsmallest(paths // 100)
        assert -math.fsum(worst) / len(worst) == pytest.approx(summary["es_99"], rel=1e-12)
        # The per-operator columns split every path's slashing loss; the per-AVS
        # columns' means are contributions_by_avs.csv's expected losses.
        operators = frame[[c for c in frame if c.startswith("operator:")]].sum(axis=1)
        np.testing.assert_allclose(operators, frame["slashing_loss_eth"], rtol=1e-12, atol=1e-12)
        by_avs = pd.read_csv(out / "contributions_by_avs.csv").set_index("source")
        for column in [c for c in frame if c.startswith("avs:")]:
            expected = by_avs.expected_loss_eth[column.removeprefix("avs:")]
            assert frame[column].mean() == pytest.approx(expected, rel=1e-12, abs=1e-15), column
        # The same table without a file, from Python.
        pd.testing.assert_frame_equal(frame, rm.paths(preset, paths=paths))
        if preset == "weeth-aave-loop":
            assert frame["liquidations"].dtype == np.uint32
            assert frame["liquidations"].gt(0).mean() == pytest.approx(
                summary["prob_liquidation"], abs=1e-12
            )
            arrow = rm.paths_arrow(preset, paths=paths)
            assert arrow.equals(table.replace_schema_metadata(None))


def test_a_file_past_the_size_limit_is_refused_with_its_size(tmp_path: Path) -> None:
    file = tmp_path / "paths.parquet"
    result = cli("run", "--paths", "1e8", "--out", str(tmp_path / "out"), "--paths-out",
                 str(file), check=False)
    assert result.returncode == 2
    assert "would take about 12.8 GB" in result.stderr
    assert not file.exists() and not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"would take about 12\.8 GB"):
        rm.paths(paths=10**8)


def test_progress_is_reported_and_its_exception_raised() -> None:
    seen: list[tuple[int, int]] = []
    rm.run(paths=50_000, progress=lambda done, total: seen.append((done, total)))
    assert seen and all(total == 50_000 for _, total in seen)
    assert max(done for done, _ in seen) == 50_000

    def fail(done: int, total: int) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        rm.run(paths=20_000, progress=fail)


def test_the_simulation_releases_the_gil() -> None:
    # Python code on this thread runs while another thread simulates: with the GIL
    # held it would stand still for the whole simulation.
    def count_for(seconds: float) -> int:
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            n += 1
        return n

    rate = count_for(0.2) / 0.2
    worker = threading.Thread(target=rm.run, kwargs={"paths": 2_000_000, "threads": 1})
    start = time.perf_counter()
    worker.start()
    counted = 0
    while worker.is_alive():
        counted += count_for(0.01)
    elapsed = time.perf_counter() - start
    worker.join()
    assert elapsed > 0.2, "the run was too short to tell"
    # Held, the count would be a few switch intervals' worth (5 ms each), about 1%.
    assert counted > 0.25 * rate * elapsed, (counted, rate, elapsed)


def test_the_docs_show_the_example_as_it_is() -> None:
    example = (ROOT / "crates" / "restake-py" / "examples" / "sweep_and_worst_paths.py").read_text()
    docs = (ROOT / "docs" / "python.md").read_text()
    assert f"```python\n{example}```" in docs
