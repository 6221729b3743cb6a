"""The worked example of docs/python.md: a sweep plotted with matplotlib, then the
worst 1% of paths and the AVSs and operators that drove them, in pandas.

Run from the repository's root: python crates/restake-py/examples/sweep_and_worst_paths.py
It writes eigenda_sweep.png into the current folder.
"""

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt

import restake_mc as rm

# 1. How the tail of the ether.fi weETH position grows with EigenDA's annual
#    probability of slashing an operator, on common random numbers.
probs = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]
sweep = rm.sweep("etherfi-weeth", {"avs.EigenDA.slash_prob": probs}, paths=500_000)
t = sweep.table
print(f"coupled: {sweep.coupled}")
print(t[["avs.EigenDA.slash_prob", "mean_net_return", "prob_loss", "es_99", "es_99_std_error"]]
      .to_string(index=False))

fig, ax = plt.subplots(figsize=(6, 4))
for metric, label in [("var_99", "VaR 99"), ("es_99", "ES 99")]:
    ax.errorbar(t["avs.EigenDA.slash_prob"], 100 * t[metric],
                yerr=196 * t[f"{metric}_std_error"], marker="o", capsize=3, label=label)
ax.set_xlabel("EigenDA slash_prob (per operator, a year)")
ax.set_ylabel("loss over a year, % of principal")
ax.set_title("etherfi-weeth: the tail against EigenDA's slashing (95% intervals)")
ax.legend()
fig.tight_layout()
fig.savefig("eigenda_sweep.png", dpi=120)

# 2. The worst 1% of one million paths, and what drove them.
paths = rm.paths("etherfi-weeth", paths=1_000_000, seed=42)
worst = paths.nsmallest(len(paths) // 100, "net_return")
summary = rm.run("etherfi-weeth", paths=1_000_000, seed=42)
print(f"\nES 99 from the worst 1% of paths: {-worst.net_return.mean():.4%}; "
      f"summary.csv: {summary.metric('es_99'):.4%}")

drivers = worst.filter(regex="^(avs|operator):")
table = (
    drivers.mean().to_frame("mean_loss_eth")
    .assign(share_of_worst_paths=(drivers > 0).mean())
    .sort_values("mean_loss_eth", ascending=False)
)
print("\nslashing through each AVS and operator on the worst 1% of paths (ETH):")
print(table.to_string(float_format=lambda x: f"{x:.4f}"))
through_avs = drivers.filter(like="avs:").sum(axis=1)
print(f"\nnot through any AVS (the protocol exploit, beacon-chain slashing): "
      f"{(worst.slashing_loss_eth - through_avs).mean():.3f} ETH a path")
print(f"worst 1%: mean slashing {worst.slashing_loss_eth.mean():.3f} ETH, "
      f"mean net return {worst.net_return.mean():.2%}; "
      f"paths with no slashing at all: {(worst.slashing_loss_eth == 0).mean():.1%}")
