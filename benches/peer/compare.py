"""restake-mc against its numpy and numba peers on the same scenario, in one run.

Runs the release build of restake-mc (end to end: simulation and every statistic; its
run.json's elapsed_seconds) on all cores and on one thread, peer.py (numpy, one
process) and peer_numba.py (numba, one thread; with the fan chart and horizon only) on
the same scenario; prints the paths per second of each and the per-core ratios
(restake-mc on one thread against each peer's one process), and checks that each
peer's mean net return and 99% VaR agree with restake-mc's within Monte Carlo error
(|difference| <= 4 standard errors of the difference; a VaR's standard error is its 95%
interval's width / 3.92). Exits 1 if one does not. With --repeat R, restake-mc and the
numba peer each run R times, taking turns, and the fastest run of each counts (the
machine is shared: the fastest run is the one least disturbed).

    python compare.py [--scenario S ...] [--rust-paths N] [--peer-paths M]
                      [--numba-paths K] [--threads T] [--repeat R]

By default it compares on the default preset and on benches/scenarios/
every-source-5avs-3ops.toml (5 AVSs x 3 operators, every risk source on).
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def without_systematic(path, folder):
    """A copy of the scenario at `path` in `folder` without its [systematic] table and its
    [[stress]] tables (some hold the factor), from each header to the next."""
    out, skipping = [], False
    with open(path) as f:
        for line in f:
            if line.startswith("["):
                skipping = line.startswith(("[systematic]", "[[stress"))
            if not skipping:
                out.append(line)
    copy = os.path.join(folder, os.path.basename(path))
    with open(copy, "w") as f:
        f.writelines(out)
    return copy


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append",
                    help="a scenario to compare on (repeat for several; default: the default "
                         "preset and benches/scenarios/every-source-5avs-3ops.toml)")
    ap.add_argument("--rust-paths", type=int, default=10_000_000)
    ap.add_argument("--peer-paths", type=int, default=200_000, help="numpy peer's paths")
    ap.add_argument("--numba-paths", type=int, default=10_000_000, help="numba peer's paths")
    ap.add_argument("--threads", type=int, default=0, help="restake-mc threads (0: all cores)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of restake-mc and of the numba peer, the fastest counted")
    args = ap.parse_args()
    scenarios = args.scenario or [
        os.path.join(ROOT, "data/scenarios/etherfi-weeth.toml"),
        os.path.join(ROOT, "benches/scenarios/every-source-5avs-3ops.toml"),
    ]
    ok = True
    for i, path in enumerate(scenarios):
        if i:
            print()
        ok &= compare(path, args)
    return 0 if ok else 1


def compare(path, args):
    """Runs every engine on the scenario at `path`, prints the table, the ratios and the
    agreement checks; whether every peer agrees."""
    binary = os.path.join(ROOT, "target/release/restake-mc")
    # The peers have no systematic factor (docs/model.md#systematic-factor): every engine
    # runs the scenario without its [systematic] table (and its stress tests, which
    # restake-mc run does not run), the model the peers implement.
    scratch = tempfile.TemporaryDirectory()
    scenario = without_systematic(path, scratch.name)

    def rust(threads):
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(
                [binary, "run", scenario, "--paths", str(args.rust_paths), "--seed", "1",
                 "--threads", str(threads), "--out", out],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(os.path.join(out, "run.json")) as f:
                run = json.load(f)
            with open(os.path.join(out, "summary.csv")) as f:
                summary = {row["metric"]: row for row in csv.DictReader(f)}
        return run, summary

    def peer(script, paths, *flags):
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, script), scenario, "--paths", str(paths),
             "--seed", "2", *flags],
            check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    # Every timed engine once per round, so that a disturbance hits them alike.
    rounds = []
    for _ in range(max(args.repeat, 1)):
        r = {"all": rust(args.threads), "one": rust(1)}
        if args.numba_paths > 0:
            r["fan"] = peer("peer_numba.py", args.numba_paths)
            r["horizon"] = peer("peer_numba.py", args.numba_paths, "--horizon-only")
        rounds.append(r)
    run, summary = min([r["all"] for r in rounds], key=lambda x: x[0]["elapsed_seconds"])
    run_1, _ = min([r["one"] for r in rounds], key=lambda x: x[0]["elapsed_seconds"])
    rust_rate = args.rust_paths / run["elapsed_seconds"]
    rust_rate_1 = args.rust_paths / run_1["elapsed_seconds"]
    peers = [("numpy peer", peer("peer.py", args.peer_paths))]
    if args.numba_paths > 0:
        for key, name in [("fan", "numba peer"), ("horizon", "numba, horizon only")]:
            peers.append((name, min([r[key] for r in rounds], key=lambda p: p["seconds"])))

    def num(metric, column):
        return float(summary[metric][column])

    rows = [
        ("restake-mc", args.rust_paths, run["threads"], run["elapsed_seconds"], rust_rate),
        ("restake-mc", args.rust_paths, 1, run_1["elapsed_seconds"], rust_rate_1),
    ] + [(name, p["paths"], 1, p["seconds"], p["paths_per_second"]) for name, p in peers]
    print(f"scenario {os.path.relpath(path, ROOT)}, without its [systematic] table")
    print(f"{'engine':<20} {'paths':>12} {'threads':>8} {'seconds':>9} {'paths/s':>14}")
    for name, n, t, s, rate in rows:
        print(f"{name:<20} {n:>12} {t:>8} {s:>9.2f} {rate:>14.0f}")
    print(f"restake-mc {run['threads']} threads / 1 thread: {rust_rate / rust_rate_1:.2f}x")
    for name, p in peers:
        print(f"per core, restake-mc / {name}: {rust_rate_1 / p['paths_per_second']:.2f}x")

    ok = True
    mean_r, se_r = num("mean_net_return", "value"), num("mean_net_return", "std_error")
    var_r = num("var_99", "value")
    se_var_r = (num("var_99", "ci_high") - num("var_99", "ci_low")) / 3.92
    for peer_name, p in peers:
        se_var_p = (p["var_99_ci"][1] - p["var_99_ci"][0]) / 3.92
        for name, a, b, se in [
            ("mean net return", mean_r, p["mean_net_return"],
             math.hypot(se_r, p["mean_std_error"])),
            ("VaR 99", var_r, p["var_99"], math.hypot(se_var_r, se_var_p)),
        ]:
            agree = abs(a - b) <= 4 * se
            ok &= agree
            print(f"{name}: restake-mc {a:.6f}, {peer_name} {b:.6f}, difference {a - b:+.6f}, "
                  f"4 se {4 * se:.6f}: {'agree' if agree else 'DISAGREE'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
