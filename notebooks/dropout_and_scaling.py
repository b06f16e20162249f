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
# # Dropout and client-count sweeps
#
# This notebook only reads results. The tables in `results/sweeps/` were made by
#
# ```bash
# fedsim scenarios=dropout_sweep   && fedsim collect multirun/dropout_sweep
# fedsim scenarios=client_scaling  && fedsim collect multirun/client_scaling
# ```
#
# and copied there; point `TABLES` at your own `multirun/<name>/collected.parquet` to
# look at a fresh (or paper-size) sweep. Each table has one row per job × round, a
# column per swept parameter (`failure.dropout`, `data.num_clients`, `run.seed`), the
# job's `summary.*` and its `status`.

# %%
from pathlib import Path

import pandas as pd

from fedsim.figures.sweeps import client_scaling, dropout_sweep, final_rows, learning_curves

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())
TABLES = ROOT / "results" / "sweeps"
dropout = pd.read_parquet(TABLES / "dropout_sweep.parquet")
scaling = pd.read_parquet(TABLES / "client_scaling.parquet")
dropout["status"].value_counts()

# %% [markdown]
# ## Dropout rate
# Final accuracy and AUC per dropout rate: mean and spread over seeds.

# %%
final = final_rows(dropout)
final.groupby("failure.dropout")[["accuracy", "auc", "summary.virtual_s"]].agg(["mean", "std"]).round(3)

# %%
dropout_sweep(dropout)

# %% [markdown]
# Learning curves, one line per dropout rate (band: 95 % CI over seeds).

# %%
learning_curves(dropout, hue="failure.dropout")

# %% [markdown]
# ## Number of clients
# The same data split over more, smaller clients: accuracy, and virtual time to
# finish the rounds (log x).

# %%
final_rows(scaling).groupby("data.num_clients")[["accuracy", "summary.virtual_s"]].agg(["mean", "std"]).round(3)

# %%
client_scaling(scaling)
