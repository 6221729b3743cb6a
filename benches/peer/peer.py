"""The numpy peer: restake-mc's model written as a quant would in a notebook.

Vectorised over paths, one time step a day, every risk source drawn every day for every
path, reading the same scenario TOML as restake-mc (docs/model.md). It is the
alternative restake-mc is benchmarked against, and a second, independent implementation
whose mean and 99% VaR must agree with the engine's within Monte Carlo error.

Simplifications a notebook makes, each far below Monte Carlo error at these path counts:
at most one event per source per day (probability 1 - exp(-lambda dt)), events at the
end of their day, income accrued on the day's opening stake (left-point rule).

    python peer.py SCENARIO.toml --paths N [--seed S] [--block B]

prints one JSON line: paths, seconds, paths_per_second, mean_net_return and its standard
error, var_99 and its 95% order-statistic interval.
"""

import argparse
import json
import math
import sys
import time
import tomllib

import numpy as np


def severity_sampler(spec):
    """A function (rng, n) -> n severities in [0, 1] for a severity table, or None."""
    if spec is None:
        return lambda rng, n: np.zeros(n)
    dist = spec["dist"]
    if dist == "fixed":
        value = spec["value"]
        return lambda rng, n: np.full(n, value)
    if dist == "uniform":
        lo, hi = spec["min"], spec["max"]
        return lambda rng, n: rng.uniform(lo, hi, n)
    if dist == "beta":
        a, b = spec["alpha"], spec["beta"]
        lo, hi = spec.get("min", 0.0), spec.get("max", 1.0)
        return lambda rng, n: lo + (hi - lo) * rng.beta(a, b, n)
    raise ValueError(f"unknown severity {dist}")


def intensity(p):
    return -math.log1p(-p)


def simulate(s, n, rng):
    """Net returns of n paths of scenario s."""
    pos = s["position"]
    principal = pos["principal_eth"]
    days = int(round(pos["horizon_days"]))
    dt = 1.0 / 365.0
    shared = pos.get("stake_mode", "unique") == "shared"
    liquid = s.get("liquid") if pos["route"] == "liquid" else None
    reward_fee = liquid.get("reward_fee", 0.0) if liquid else 0.0
    base = s["base"]
    avs = s.get("avs", [])
    ops = s.get("operator", [])
    tokens = s.get("token", [])
    incentives = s.get("incentive", [])
    tok = {t["name"]: j for j, t in enumerate(tokens)}
    avs_ix = {a["name"]: i for i, a in enumerate(avs)}

    # Base APR per path: normal truncated at 0, redrawn.
    r = np.full(n, base["apr_mean"])
    sd = base.get("apr_sd", 0.0)
    if sd > 0:
        r = base["apr_mean"] + sd * rng.standard_normal(n)
        bad = r < 0
        while bad.any():
            r[bad] = base["apr_mean"] + sd * rng.standard_normal(bad.sum())
            bad = r < 0
    growth = np.exp(r * (1.0 - base.get("fee", 0.0)) * dt)

    # Stake: per operator, pools per allocated AVS and a remainder (unique), or the whole
    # stake with slashable shares (shared).
    allocs = []  # per operator: list of (avs index, a)
    pools = []  # per operator: array (n, len(allocs) + 1) [unique] or (n, 1) [shared]
    plain = []
    for o in ops:
        s0 = o["weight"] * principal
        al = [(avs_ix[k], v) for k, v in o.get("allocations", {}).items() if v > 0]
        al.sort()
        allocs.append(al)
        if shared:
            pools.append(np.full((n, 1), s0))
        else:
            rest = max(0.0, 1.0 - sum(a for _, a in al))
            pools.append(np.tile([a * s0 for _, a in al] + [rest * s0], (n, 1)))
        plain.append(np.full(n, s0))

    def exposure(k, slot):
        return pools[k][:, 0] * allocs[k][slot][1] if shared else pools[k][:, slot]

    def cut(k, slot, sev, hit):
        """Slash operator k through allocation slot with severities sev on paths hit."""
        if shared:
            pools[k][hit, 0] *= 1.0 - allocs[k][slot][1] * sev
        else:
            pools[k][hit, slot] *= 1.0 - sev

    # Risk sources: daily hit probabilities.
    q = lambda p: -math.expm1(-intensity(p) * dt) if p > 0 else 0.0
    slash = [severity_sampler(a.get("slash_severity")) for a in avs]
    incident = [severity_sampler(a.get("incident_severity")) for a in avs]
    beacon = severity_sampler(base.get("slash_severity"))
    exploit_sev = severity_sampler(s.get("protocol", {}).get("exploit_severity"))
    p_exploit = q(s.get("protocol", {}).get("exploit_prob", 0.0))
    p_beacon = q(base.get("slash_prob", 0.0))

    def veto(i, m):
        v = avs[i].get("veto_prob", 0.0)
        return rng.random(m) < v if v > 0 else np.zeros(m, bool)

    fees = np.zeros(n)
    units = np.zeros((n, len(tokens)))
    log_price = np.zeros((n, len(tokens)))
    for day in range(days):
        # Income over the day on the opening stake.
        for k, o in enumerate(ops):
            net = (1.0 - o.get("commission", 0.10)) * (1.0 - reward_fee)
            stake = pools[k].sum(axis=1)
            for inc in incentives:
                j = tok[inc["token"]]
                units[:, j] += net * inc["apr"] * stake * dt / tokens[j]["price_eth"]
            for slot, (i, _) in enumerate(allocs[k]):
                e = exposure(k, slot)
                fees += net * avs[i].get("fee_apr", 0.0) * e * dt
                if avs[i].get("reward_token"):
                    j = tok[avs[i]["reward_token"]]
                    units[:, j] += net * avs[i].get("reward_apr", 0.0) * e * dt / tokens[j]["price_eth"]
            pools[k] *= growth[:, None]
            plain[k] *= growth
        # Token prices: one GBM step.
        for j, t in enumerate(tokens):
            vol = t.get("volatility", 0.0)
            log_price[:, j] += (t.get("drift", 0.0) - 0.5 * vol * vol) * dt
            if vol > 0:
                log_price[:, j] += vol * math.sqrt(dt) * rng.standard_normal(n)
        # Events at the end of the day.
        for k, o in enumerate(ops):
            for slot, (i, _) in enumerate(allocs[k]):
                p = o.get("slash_probs", {}).get(avs[i]["name"], avs[i].get("slash_prob", 0.0))
                hit = np.flatnonzero(rng.random(n) < q(p))
                if hit.size:
                    hit = hit[~veto(i, hit.size)]
                    cut(k, slot, slash[i](rng, hit.size), hit)
            if allocs[k]:
                hit = np.flatnonzero(rng.random(n) < q(o.get("fault_prob", 0.0)))
                for slot, (i, _) in enumerate(allocs[k]):
                    if hit.size:
                        h = hit[~veto(i, hit.size)]
                        cut(k, slot, slash[i](rng, h.size), h)
            hit = np.flatnonzero(rng.random(n) < p_beacon)
            if hit.size:
                sev = beacon(rng, hit.size)
                pools[k][hit] *= (1.0 - sev)[:, None]
                plain[k][hit] *= 1.0 - sev
        for i, a in enumerate(avs):
            holders = [(k, slot) for k in range(len(ops)) for slot, (ii, _) in enumerate(allocs[k]) if ii == i]
            if holders and a.get("incident_prob", 0.0) > 0:
                hit = np.flatnonzero(rng.random(n) < q(a["incident_prob"]))
                if hit.size:
                    hit = hit[~veto(i, hit.size)]
                    sev = incident[i](rng, hit.size)
                    for k, slot in holders:
                        cut(k, slot, sev, hit)
        hit = np.flatnonzero(rng.random(n) < p_exploit)
        if hit.size:
            sev = exploit_sev(rng, hit.size)
            for k in range(len(ops)):
                pools[k][hit] *= (1.0 - sev)[:, None]

    stake = sum(p.sum(axis=1) for p in pools)
    value = stake + fees
    for j, t in enumerate(tokens):
        value += units[:, j] * t["price_eth"] * np.exp(log_price[:, j])
    if liquid and liquid.get("exit") == "market" and liquid.get("depeg_prob", 0.0) > 0:
        hit = np.flatnonzero(rng.random(n) < liquid["depeg_prob"])
        value[hit] -= severity_sampler(liquid.get("depeg_discount"))(rng, hit.size) * stake[hit]
    return value / principal - 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block", type=int, default=50_000, help="paths per vectorised block")
    args = ap.parse_args()
    with open(args.scenario, "rb") as f:
        scenario = tomllib.load(f)
    if scenario.get("systematic"):
        sys.exit(f"{args.scenario}: the peer has no systematic factor; compare.py runs both without it")
    if scenario.get("leverage"):
        sys.exit(f"{args.scenario}: the peer has no loan ([leverage])")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    parts = []
    done = 0
    while done < args.paths:
        m = min(args.block, args.paths - done)
        parts.append(simulate(scenario, m, rng))
        done += m
    returns = np.concatenate(parts)
    print(json.dumps(report(returns, time.perf_counter() - start)))


def report(returns, seconds):
    """What a peer prints of its net returns: paths, seconds, paths per second, the mean
    net return with its standard error, and VaR 99 with its 95% interval (the
    ceil(0.99 n)-th smallest loss; the interval from Binomial(n, 0.99) ranks). Shared by
    both peers."""
    n = returns.size
    losses = np.sort(-returns)
    k = math.ceil(0.99 * n)
    half = 1.96 * math.sqrt(n * 0.99 * 0.01)
    lo, hi = max(1, math.floor(k - half)), min(n, math.ceil(k + half))
    return {
        "paths": n,
        "seconds": seconds,
        "paths_per_second": n / seconds,
        "mean_net_return": float(returns.mean()),
        "mean_std_error": float(returns.std(ddof=1) / math.sqrt(n)),
        "var_99": float(losses[k - 1]),
        "var_99_ci": [float(losses[lo - 1]), float(losses[hi - 1])],
    }


if __name__ == "__main__":
    sys.exit(main())
