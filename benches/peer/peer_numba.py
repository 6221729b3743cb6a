"""The numba peer: restake-mc's model written event by event, as a strong quant would.

A second peer beside the numpy one (peer.py), compiled with numba: for each path, the
base APR, every token's price at the checkpoints, one Poisson count for all the risk
sources together (superposed), each event's source and uniform time, then the events
in time order with closed-form growth and income between them (docs/model.md, "How the
engine makes it exact and fast"). It computes what restake-mc's throughput is compared
on: the mean net return and its standard error, the 99% VaR with its order-statistic
interval, and (unless --horizon-only) the fan chart, V(t)/P at every checkpoint, from a
histogram of 4096 bins per checkpoint.

It reads the same scenario TOML. Not modelled (refused): the systematic factor, stress
tests and leverage. numba's generator (Mersenne Twister, seeded once) draws everything.

    python peer_numba.py SCENARIO.toml --paths N [--seed S] [--horizon-only]

prints one JSON line: paths, seconds (after a warm-up run that compiles), paths per
second, mean_net_return and its standard error, var_99 and its 95% interval, and the
fan chart's median at the horizon.
"""

import argparse
import json
import math
import sys
import time
import tomllib

import numba
import numpy as np

from peer import report

# Severity laws: code, then (a, b, lo, hi).
NONE, FIXED, UNIFORM, BETA = 0, 1, 2, 3
# Event sources.
OP_AVS, INCIDENT, FAULT, BEACON, EXPLOIT = 0, 1, 2, 3, 4
# Fan-chart histogram of V/P at each checkpoint: bins over [0, 2).
FAN_BINS, FAN_MAX = 4096, 2.0
FAN_LEVELS = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]


def ziggurat_tables():
    """Doornik's ZIGNOR tables (128 layers): the layers' edges x_i and ratios x_{i+1}/x_i.

    J. A. Doornik (2005), "An Improved Ziggurat Method to Generate Normal Random
    Samples", University of Oxford; R = 3.442619855899, V = 9.91256303526217e-3."""
    c, r, v = 128, 3.442619855899, 9.91256303526217e-3
    f = lambda x: math.exp(-0.5 * x * x)
    x = np.zeros(c + 1)
    x[0], x[1], x[c] = v / f(r), r, 0.0
    for i in range(2, c):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + f(x[i - 1])))
    ratio = np.array([x[i + 1] / x[i] for i in range(c)])
    return x, ratio


ZIG_X, ZIG_RATIO = ziggurat_tables()
ZIG_R = 3.442619855899


@numba.njit(cache=True)
def normal():
    """A standard normal by the ziggurat method (ZIGNOR), from numba's uniforms."""
    while True:
        u = 2.0 * np.random.random() - 1.0
        i = int(np.random.random() * 128.0)
        if abs(u) < ZIG_RATIO[i]:
            return u * ZIG_X[i]
        if i == 0:
            # The base layer's tail beyond R (Marsaglia's method).
            while True:
                x = math.log(np.random.random()) / ZIG_R
                y = math.log(np.random.random())
                if -2.0 * y >= x * x:
                    return x - ZIG_R if u < 0.0 else ZIG_R - x
        x = u * ZIG_X[i]
        f0 = math.exp(-0.5 * (ZIG_X[i] * ZIG_X[i] - x * x))
        f1 = math.exp(-0.5 * (ZIG_X[i + 1] * ZIG_X[i + 1] - x * x))
        if f1 + np.random.random() * (f0 - f1) < 1.0:
            return x


def severity(spec):
    """A severity table as (code, a, b, lo, hi)."""
    if spec is None:
        return (NONE, 0.0, 0.0, 0.0, 0.0)
    dist = spec["dist"]
    if dist == "fixed":
        return (FIXED, spec["value"], 0.0, 0.0, 0.0)
    if dist == "uniform":
        return (UNIFORM, 0.0, 0.0, spec["min"], spec["max"])
    if dist == "beta":
        return (BETA, spec["alpha"], spec["beta"], spec.get("min", 0.0), spec.get("max", 1.0))
    raise ValueError(f"unknown severity {dist}")


def intensity(p):
    return -math.log1p(-p) if p > 0 else 0.0


def compile_scenario(s):
    """The scenario as flat arrays for the compiled loop."""
    pos = s["position"]
    principal = pos["principal_eth"]
    horizon = pos["horizon_days"] / 365.0
    shared = pos.get("stake_mode", "unique") == "shared"
    liquid = s.get("liquid") if pos["route"] == "liquid" else None
    reward_fee = liquid.get("reward_fee", 0.0) if liquid else 0.0
    base = s["base"]
    avs = s.get("avs", [])
    ops = s.get("operator", [])
    tokens = s.get("token", [])
    tok = {t["name"]: j for j, t in enumerate(tokens)}
    avs_ix = {a["name"]: i for i, a in enumerate(avs)}
    ntok = len(tokens)

    pools0, pool_op, fee_coef, unit_coef = [], [], [], []
    op_first = []
    holders = []  # (operator, pool, avs, share) per allocation
    for k, o in enumerate(ops):
        s0 = o["weight"] * principal
        net = (1.0 - o.get("commission", 0.10)) * (1.0 - reward_fee)
        al = sorted((avs_ix[a], v) for a, v in o.get("allocations", {}).items() if v > 0)
        op_first.append(len(pools0))
        incentive = np.zeros(ntok)
        for inc in s.get("incentive", []):
            j = tok[inc["token"]]
            incentive[j] += net * inc["apr"] / tokens[j]["price_eth"]

        def reward(i, weight):
            u = np.zeros(ntok)
            if avs[i].get("reward_token"):
                j = tok[avs[i]["reward_token"]]
                u[j] += net * avs[i].get("reward_apr", 0.0) * weight / tokens[j]["price_eth"]
            return u

        if shared:
            fee = sum(net * avs[i].get("fee_apr", 0.0) * a for i, a in al)
            units = incentive + sum((reward(i, a) for i, a in al), np.zeros(ntok))
            pools0.append(s0)
            pool_op.append(k)
            fee_coef.append(fee)
            unit_coef.append(units)
            holders += [(k, len(pools0) - 1, i, a) for i, a in al]
        else:
            for i, a in al:
                pools0.append(a * s0)
                pool_op.append(k)
                fee_coef.append(net * avs[i].get("fee_apr", 0.0))
                unit_coef.append(incentive + reward(i, 1.0))
                holders.append((k, len(pools0) - 1, i, 1.0))
            pools0.append(max(0.0, 1.0 - sum(a for _, a in al)) * s0)
            pool_op.append(k)
            fee_coef.append(0.0)
            unit_coef.append(incentive.copy())
    op_first.append(len(pools0))

    # Sources: (kind, operator, holder or avs, intensity).
    sources = []
    for h, (k, _, i, _) in enumerate(holders):
        p = ops[k].get("slash_probs", {}).get(avs[i]["name"], avs[i].get("slash_prob", 0.0))
        sources.append((OP_AVS, k, h, intensity(p)))
    for i, a in enumerate(avs):
        if any(hi == i for _, _, hi, _ in holders):
            sources.append((INCIDENT, -1, i, intensity(a.get("incident_prob", 0.0))))
    for k, o in enumerate(ops):
        if any(hk == k for hk, _, _, _ in holders):
            sources.append((FAULT, k, -1, intensity(o.get("fault_prob", 0.0))))
        sources.append((BEACON, k, -1, intensity(base.get("slash_prob", 0.0))))
    protocol = s.get("protocol", {})
    sources.append((EXPLOIT, -1, -1, intensity(protocol.get("exploit_prob", 0.0))))
    sources = [x for x in sources if x[3] > 0]
    rates = np.array([x[3] for x in sources])

    step = s.get("simulation", {}).get("checkpoint_days", 30)
    days = pos["horizon_days"]
    cps = [d / 365.0 for d in np.arange(step, days, step)] + [horizon]
    depeg_p = 0.0
    if liquid and liquid.get("exit") == "market":
        depeg_p = liquid.get("depeg_prob", 0.0)
    return dict(
        principal=principal,
        horizon=horizon,
        shared=shared,
        apr_mean=base["apr_mean"],
        apr_sd=base.get("apr_sd", 0.0),
        base_fee=base.get("fee", 0.0),
        pools0=np.array(pools0, dtype=np.float64),
        pool_op=np.array(pool_op, dtype=np.int64),
        op_first=np.array(op_first, dtype=np.int64),
        fee_coef=np.array(fee_coef, dtype=np.float64),
        unit_coef=np.array(unit_coef, dtype=np.float64).reshape(len(pools0), ntok),
        holder_op=np.array([h[0] for h in holders], dtype=np.int64),
        holder_pool=np.array([h[1] for h in holders], dtype=np.int64),
        holder_avs=np.array([h[2] for h in holders], dtype=np.int64),
        holder_share=np.array([h[3] for h in holders], dtype=np.float64),
        src_kind=np.array([x[0] for x in sources], dtype=np.int64),
        src_op=np.array([x[1] for x in sources], dtype=np.int64),
        src_ref=np.array([x[2] for x in sources], dtype=np.int64),
        src_cum=np.cumsum(rates) / rates.sum() if rates.size else np.zeros(0),
        total_rate=float(rates.sum()),
        slash_sev=np.array([severity(a.get("slash_severity")) for a in avs] or [severity(None)]),
        incident_sev=np.array([severity(a.get("incident_severity")) for a in avs] or [severity(None)]),
        veto=np.array([a.get("veto_prob", 0.0) for a in avs] or [0.0]),
        beacon_sev=np.array(severity(base.get("slash_severity"))),
        exploit_sev=np.array(severity(protocol.get("exploit_severity"))),
        depeg_p=depeg_p,
        depeg_sev=np.array(severity(liquid.get("depeg_discount") if liquid else None)),
        token_price0=np.array([t["price_eth"] for t in tokens], dtype=np.float64),
        token_drift=np.array([t.get("drift", 0.0) for t in tokens], dtype=np.float64),
        token_vol=np.array([t.get("volatility", 0.0) for t in tokens], dtype=np.float64),
        checkpoints=np.array(cps, dtype=np.float64),
    )


@numba.njit(cache=True)
def draw_severity(law):
    code = law[0]
    if code == FIXED:
        return law[1]
    if code == UNIFORM:
        return law[3] + (law[4] - law[3]) * np.random.random()
    if code == BETA:
        return law[3] + (law[4] - law[3]) * np.random.beta(law[1], law[2])
    return 0.0


@numba.njit(cache=True)
def cut(pools, pool, share, s, shared):
    if shared:
        pools[pool] *= 1.0 - share * s
    else:
        pools[pool] *= 1.0 - s


@numba.njit(cache=True)
def aggregate(pools, fee_coef, unit_coef, unit_rate):
    """The stake and the fee rate of `pools`, and (into unit_rate) each token's rate."""
    stake, fee_rate = 0.0, 0.0
    for j in range(unit_rate.size):
        unit_rate[j] = 0.0
    for i in range(pools.size):
        stake += pools[i]
        fee_rate += fee_coef[i] * pools[i]
        for j in range(unit_rate.size):
            unit_rate[j] += unit_coef[i, j] * pools[i]
    return stake, fee_rate


@numba.njit(cache=True)
def simulate(n, seed, fan, principal, horizon, shared, apr_mean, apr_sd, base_fee, pools0,
             pool_op, op_first, fee_coef, unit_coef, holder_op, holder_pool, holder_avs,
             holder_share, src_kind, src_op, src_ref, src_cum, total_rate, slash_sev,
             incident_sev, veto, beacon_sev, exploit_sev, depeg_p, depeg_sev, token_price0,
             token_drift, token_vol, checkpoints):
    np.random.seed(seed)
    npools, ntok, ncp = pools0.size, token_price0.size, checkpoints.size
    returns = np.empty(n)
    hist = np.zeros((ncp, FAN_BINS + 2), dtype=np.int64)
    pools = np.empty(npools)
    units = np.empty(ntok)
    unit_rate = np.empty(ntok)
    price = np.empty((ncp, ntok))
    sqrt_step = np.empty(ncp)
    for c in range(ncp):
        sqrt_step[c] = math.sqrt(checkpoints[c] - (checkpoints[c - 1] if c > 0 else 0.0))
    step = checkpoints[0]
    times = np.empty(64)
    which = np.empty(64, dtype=np.int64)
    for path in range(n):
        r = apr_mean + apr_sd * normal()
        while r < 0.0:
            r = apr_mean + apr_sd * normal()
        g = r * (1.0 - base_fee)
        # A whole step between checkpoints, the common case, grows by one factor a path.
        step_grow = math.exp(g * step)
        step_integral = math.expm1(g * step) / g if g != 0.0 else step
        # Token prices at the checkpoints (only the horizon's without the fan chart).
        first_cp = 0 if fan else ncp - 1
        for j in range(ntok):
            drift = token_drift[j] - 0.5 * token_vol[j] * token_vol[j]
            w = 0.0 if fan else token_vol[j] * math.sqrt(horizon) * normal()
            for c in range(first_cp, ncp):
                if fan:
                    w += token_vol[j] * sqrt_step[c] * normal()
                price[c, j] = token_price0[j] * math.exp(drift * checkpoints[c] + w)
        # Superposed events: count, then source and time of each, in time order.
        m = np.random.poisson(total_rate * horizon) if total_rate > 0.0 else 0
        if m > times.size:
            times = np.empty(2 * m)
            which = np.empty(2 * m, dtype=np.int64)
        for e in range(m):
            u = np.random.random()
            src = 0
            while src < src_cum.size - 1 and src_cum[src] < u:
                src += 1
            t = horizon * np.random.random()
            q = e
            while q > 0 and times[q - 1] > t:
                times[q] = times[q - 1]
                which[q] = which[q - 1]
                q -= 1
            times[q] = t
            which[q] = src
        for i in range(npools):
            pools[i] = pools0[i]
        for j in range(ntok):
            units[j] = 0.0
        # Between events every pool grows at g: the stake, the fee rate and the token
        # rates are linear in the pools, kept as aggregates that grow with them, and the
        # pools themselves are brought up to date only at events (from t_pools).
        stake, fee_rate = aggregate(pools, fee_coef, unit_coef, unit_rate)
        fees, t, t_pools, c = 0.0, 0.0, 0.0, first_cp
        for e in range(m + 1):
            t_next = times[e] if e < m else horizon
            while True:
                # The next stop: a checkpoint before the event, or the event.
                at_cp = fan and c < ncp - 1 and checkpoints[c] <= t_next
                stop = checkpoints[c] if at_cp else t_next
                dt = stop - t
                if dt > 0.0:
                    if dt == step:
                        grow, integral = step_grow, step_integral
                    else:
                        grow = math.exp(g * dt)
                        integral = math.expm1(g * dt) / g if g != 0.0 else dt
                    fees += fee_rate * integral
                    for j in range(ntok):
                        units[j] += unit_rate[j] * integral
                        unit_rate[j] *= grow
                    stake *= grow
                    fee_rate *= grow
                    t = stop
                if not at_cp:
                    break
                v = stake + fees
                for j in range(ntok):
                    v += units[j] * price[c, j]
                b = int(v / principal * (FAN_BINS / FAN_MAX))
                hist[c, min(max(b, -1), FAN_BINS) + 1] += 1
                c += 1
            if e == m:
                break
            grow = math.exp(g * (t - t_pools))
            for i in range(npools):
                pools[i] *= grow
            t_pools = t
            kind, k, ref = src_kind[which[e]], src_op[which[e]], src_ref[which[e]]
            if kind == OP_AVS:
                i = holder_avs[ref]
                if veto[i] == 0.0 or np.random.random() >= veto[i]:
                    cut(pools, holder_pool[ref], holder_share[ref], draw_severity(slash_sev[i]), shared)
            elif kind == INCIDENT:
                if veto[ref] == 0.0 or np.random.random() >= veto[ref]:
                    s = draw_severity(incident_sev[ref])
                    for h in range(holder_avs.size):
                        if holder_avs[h] == ref:
                            cut(pools, holder_pool[h], holder_share[h], s, shared)
            elif kind == FAULT:
                for h in range(holder_avs.size):
                    if holder_op[h] == k:
                        i = holder_avs[h]
                        if veto[i] == 0.0 or np.random.random() >= veto[i]:
                            cut(pools, holder_pool[h], holder_share[h], draw_severity(slash_sev[i]), shared)
            elif kind == BEACON:
                s = draw_severity(beacon_sev)
                for i in range(op_first[k], op_first[k + 1]):
                    pools[i] *= 1.0 - s
            else:
                s = draw_severity(exploit_sev)
                for i in range(npools):
                    pools[i] *= 1.0 - s
            stake, fee_rate = aggregate(pools, fee_coef, unit_coef, unit_rate)
        v = stake + fees
        for j in range(ntok):
            v += units[j] * price[ncp - 1, j]
        if depeg_p > 0.0 and np.random.random() < depeg_p:
            v -= draw_severity(depeg_sev) * stake
        if fan:
            b = int(v / principal * (FAN_BINS / FAN_MAX))
            hist[ncp - 1, min(max(b, -1), FAN_BINS) + 1] += 1
        returns[path] = v / principal - 1.0
    return returns, hist


def fan_quantiles(row, n):
    """The FAN_LEVELS quantiles of V/P from one checkpoint's histogram (bin midpoints)."""
    cum = np.cumsum(row)
    out = []
    for q in FAN_LEVELS:
        b = int(np.searchsorted(cum, math.ceil(q * n)))
        out.append((b - 1 + 0.5) * FAN_MAX / FAN_BINS)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--paths", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--horizon-only", action="store_true", help="no fan chart")
    args = ap.parse_args()
    with open(args.scenario, "rb") as f:
        scenario = tomllib.load(f)
    for table in ["systematic", "leverage", "stress"]:
        if scenario.get(table):
            sys.exit(f"{args.scenario}: the numba peer has no [{table}]; compare.py runs it without")
    model = compile_scenario(scenario)
    fan = not args.horizon_only
    simulate(1000, args.seed + 1, fan, **model)  # compiles (or loads the cache)
    start = time.perf_counter()
    returns, hist = simulate(args.paths, args.seed, fan, **model)
    summary = report(returns, time.perf_counter() - start)
    summary["fan_chart"] = fan
    summary["fan_chart_horizon_p50"] = fan_quantiles(hist[-1], returns.size)[3] if fan else None
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
