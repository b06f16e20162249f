# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tuning the checkpoint interval τ
#
# A client that checkpoints every τ seconds of work pays δ per checkpoint; after a
# failure it is down for a repair, restarts (R in total) and redoes the work since its
# last checkpoint. Short τ wastes time on checkpoints, long τ on lost work; the
# expected overhead C(τ)/T has a minimum at τ*. Below: the analytic curve from
# `fedsim.checkpoint`, then the simulated sweep of `scenarios/checkpoint_interval.yaml`
# (read from `results/sweeps/`, made by `fedsim scenarios=checkpoint_interval` and
# `fedsim collect multirun/checkpoint_interval`).

# %%
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.checkpoint import daly_interval, expected_overhead, optimal_interval, weibull_mean, young_interval
from fedsim.figures.sweeps import ctau, final_rows, simulated_overhead

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())
table = pd.read_parquet(ROOT / "results" / "sweeps" / "checkpoint_interval.parquet")
final = final_rows(table)
row = final.iloc[0]
delta, shape, scale = row["checkpoint.delta_s"], row["failure.shape"], row["failure.scale"]
restart = row["checkpoint.restart_s"] + row["failure.repair_mean_s"]  # down time plus restart
dict(delta=delta, restart=restart, shape=shape, scale=scale, mtbf=weibull_mean(shape, scale))

# %% [markdown]
# ## τ* under each model, and the exponential rules of thumb

# %%
mtbf = weibull_mean(shape, scale)
rows = [(m, optimal_interval(delta, restart, shape, scale, model=m)) for m in ["paper", "segment", "renewal"]]
pd.DataFrame(
    [{"rule": m, "tau_s": o.tau, "overhead": o.overhead} for m, o in rows]
    + [{"rule": "Young √(2δM)", "tau_s": young_interval(delta, mtbf)}, {"rule": "Daly", "tau_s": daly_interval(delta, mtbf)}]
).round(3)

# %% [markdown]
# ## Simulated overhead per τ
# Overhead of a job = (checkpoint + lost + recovery time) ÷ useful time, summed over
# its clients (the `summary.*_s` time accounts); next to it the analytic value.

# %%
final = final.assign(simulated=simulated_overhead(final).to_numpy())
by_tau = final.groupby("checkpoint.tau_s")["simulated"].agg(["mean", "std", "count"])
by_tau["analytic (renewal)"] = expected_overhead(by_tau.index.to_numpy(dtype=float), delta, restart, shape, scale, model="renewal")
by_tau.round(3)

# %%
best = by_tau["mean"].idxmin()
print(f"simulated best τ = {best:g} s; analytic τ* = {optimal_interval(delta, restart, shape, scale).tau:.2f} s")

# %%
ctau(table)
