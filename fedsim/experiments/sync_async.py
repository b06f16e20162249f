"""Synchronous against asynchronous under time heterogeneity and failures, on paired traces.

``fedsim scenarios=sync_async/grid`` runs the sweep: FedAvg (wait), the proposed
checkpointing method, a deadline with partial work, FedAsync and FedBuff, over client
speed spread σ × Weibull failure scale λ × seeds, each run on the same virtual-time budget.
A seed fixes every failure, repair and speed, so the methods meet the same ones. When it
ends, :func:`report` writes ``results/sync_async/``: ``runs.csv`` (one row per job),
``summary.md`` (mean (std) over seeds of the virtual time to the target accuracy, the final
accuracy and the client updates spent), ``speedup.md`` (FedBuff against FedAvg, and where
checkpointing beats both asynchronous methods) and ``grid.png``/``.svg``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.collect import collect, copy_configs
from fedsim.errors import FedsimError
from fedsim.results import markdown_table, mean_std, write_table, write_text

METHODS = {"fedavg": "FedAvg (wait)", "proposed": "Proposed (checkpoints)", "deadline_partial": "Deadline + partial", "fedasync": "FedAsync", "fedbuff": "FedBuff"}
KEYS = {"strategy.name": "method", "compute.speed_spread": "sigma", "failure.scale": "scale", "run.seed": "seed"}
FACTS = {"summary.time_to_target_s": "time_to_target_s", "summary.final_accuracy": "final_accuracy", "summary.updates_to_target": "updates_to_target",
         "summary.updates": "updates", "summary.rounds": "rounds", "summary.virtual_s": "virtual_s", "summary.wall_total_s": "wall_s"}  # fmt: skip


def gather(sweep_dir: Path) -> pd.DataFrame:
    """One row per finished job: method, σ, λ, seed and what it reached."""
    jobs = collect(sweep_dir).jobs
    done = jobs[jobs["status"] == "complete"]
    if done.empty:
        raise FedsimError(f"no complete jobs under {sweep_dir}; run fedsim scenarios=sync_async/grid first")
    runs = done.rename(columns={**KEYS, **FACTS})[[*KEYS.values(), *FACTS.values()]]
    methods = runs["method"].map(METHODS).fillna(runs["method"])
    order = [*(m for m in METHODS.values() if m in set(methods)), *sorted(set(methods) - set(METHODS.values()))]
    runs = runs.assign(method=pd.Categorical(methods, categories=order, ordered=True))
    return runs.sort_values(["scale", "sigma", "method", "seed"], ascending=[False, True, True, True], kind="stable", ignore_index=True)


def _scale(value: float) -> str:
    return "none" if value >= 1e8 else f"{value:g} s"


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean (std) over seeds per grid point and method; times and updates to the target over the runs that reached it."""
    rows = []
    for (scale, sigma, method), g in runs.groupby(["scale", "sigma", "method"], sort=False, observed=True):
        reached = int(g["time_to_target_s"].notna().sum())
        rows.append({
            "failure scale λ": _scale(scale), "speed spread σ": f"{sigma:g}", "method": method,
            "virtual s to target": f"{mean_std(g['time_to_target_s'], 1)} [{reached}/{len(g)}]",
            "final accuracy": mean_std(g["final_accuracy"]),
            "updates to target": mean_std(g["updates_to_target"], 0), "updates in budget": mean_std(g["updates"], 0),
        })  # fmt: skip
    return pd.DataFrame(rows)


def speedup(runs: pd.DataFrame) -> pd.DataFrame:
    """Per grid point: FedBuff's speed-up over FedAvg (virtual time and updates to the target, mean over the seeds where
    both reached it) and whether the proposed method reached the target sooner than both asynchronous methods."""
    key = ["scale", "sigma", "seed"]
    by = {m: runs[runs["method"] == METHODS[m]].set_index(key) for m in ("fedavg", "fedbuff", "fedasync", "proposed")}
    both = by["fedavg"].join(by["fedbuff"], lsuffix="_sync", rsuffix="_buff", how="inner")
    both["time_ratio"] = both["time_to_target_s_sync"] / both["time_to_target_s_buff"]
    both["updates_ratio"] = both["updates_to_target_sync"] / both["updates_to_target_buff"]
    first_async = np.fmin(by["fedbuff"]["time_to_target_s"], by["fedasync"]["time_to_target_s"]).fillna(np.inf)
    checkpoint_wins = by["proposed"]["time_to_target_s"].fillna(np.inf) < first_async
    rows = []
    for (scale, sigma), g in both.groupby(level=["scale", "sigma"], sort=False):
        wins = checkpoint_wins.xs((scale, sigma), level=["scale", "sigma"])
        rows.append({
            "failure scale λ": _scale(scale), "speed spread σ": f"{sigma:g}",
            "FedBuff speed-up, virtual time": _ratio(g["time_ratio"], g["time_to_target_s_sync"], g["time_to_target_s_buff"]),
            "FedBuff speed-up, updates": _ratio(g["updates_ratio"], g["updates_to_target_sync"], g["updates_to_target_buff"]),
            "proposed first (seeds)": f"{int(wins.sum())}/{len(wins)}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def _ratio(ratio: pd.Series, sync: pd.Series, other: pd.Series) -> str:
    """The mean ratio over seeds where both reached the target, and how many seeds only the second did."""
    only = int((sync.isna() & other.notna()).sum())
    text = f"{ratio.dropna().mean():.2f}×" if ratio.notna().any() else "n/a"
    return text + (f" (+{only} seeds only FedBuff reached it)" if only else "")


def figure(runs: pd.DataFrame, path: Path) -> list[Path]:
    """Virtual time to the target (top; a run that never reached it is left out) and final accuracy (bottom)
    against σ, one column per failure scale, a line per method (± one standard deviation over seeds)."""
    from fedsim.figures import metric_grid, save_all

    order = [m for m in METHODS.values() if m in set(runs["method"])]
    ys = [("time_to_target_s", "virtual s to target accuracy"), ("final_accuracy", "accuracy at the budget's end")]
    data = runs.assign(scale=-runs["scale"])  # columns from no failures to the most
    fig = metric_grid(data, x="sigma", xlabel="client speed spread σ", ys=ys, column="scale", title=lambda v: f"failure scale λ: {_scale(-v)}", order=order, marker="o")
    return save_all(fig, path)


def report(sweep_dir: Path, out: Path) -> list[Path]:
    """Gather ``sweep_dir`` into ``out``: runs, summary, speed-ups, the figure and the configs."""
    runs = gather(sweep_dir)
    table, gains = summary(runs), speedup(runs)
    written = [write_table(runs, out / "runs.csv"), write_table(table, out / "summary.csv"), write_table(gains, out / "speedup.csv")]
    written += [write_text(markdown_table(table) + "\n", out / "summary.md"), write_text(markdown_table(gains) + "\n", out / "speedup.md")]
    return written + figure(runs, out / "grid") + copy_configs(sweep_dir, out)
