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
# # A quick tour of fedsim
#
# One small simulated federation: 4 clients on the embedded synthetic data, Weibull
# client failures and 10 % dropout, 3 rounds of real torch training. We run it through
# the `fedsim` command exactly as on a terminal, then read what it wrote: the resolved
# config, the per-round table, the event log and the summary.

# %%
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

out = Path(tempfile.mkdtemp()) / "run"
overrides = [
    "data.num_clients=4", "data.source.n_samples=800", "model.hidden=[32,16,8]", "strategy.lr=0.01",
    "failure=weibull", "failure.scale=2.0", "failure.repair_mean_s=0.3", "failure.dropout=0.1",
    "run.max_rounds=3", "compute.threads=1", f"hydra.run.dir={out}",
]
proc = subprocess.run([sys.executable, "-m", "fedsim", *overrides], capture_output=True, text=True)
assert proc.returncode == 0, proc.stderr
sorted(p.name for p in out.iterdir())

# %% [markdown]
# `summary.json` is written last, so its presence marks a finished run (a re-run sweep
# skips such jobs). It holds the final metrics and both clocks: *virtual* seconds of
# simulated federation time and *wall* seconds of real compute.

# %%
summary = json.loads((out / "summary.json").read_text())
{k: summary[k] for k in ["rounds", "final_accuracy", "final_auc", "virtual_s", "wall_total_s", "failures", "dropouts"]}

# %% [markdown]
# One row per round: virtual time, participants, failures, and test metrics.

# %%
rounds = pd.read_csv(out / "rounds.csv")
rounds[["round", "time_s", "selected", "participants", "dropouts", "failures", "loss", "accuracy", "auc"]]

# %% [markdown]
# Every simulated event, in virtual-time order: broadcasts, training, uploads,
# failures and repairs, dropouts, aggregation.

# %%
events = pd.read_csv(out / "events.csv")
events["kind"].value_counts()

# %%
events.head(10)

# %% [markdown]
# The run also drew its learning curve (accuracy and loss against virtual time).

# %%
from IPython.display import Image

Image(filename=str(out / "learning_curve.png"), width=640)

# %% [markdown]
# Next: `notebooks/dropout_and_scaling.py` reads whole sweeps, and
# `notebooks/checkpoint_interval.py` compares simulated checkpoint overhead with C(τ).
