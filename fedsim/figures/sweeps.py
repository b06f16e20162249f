"""Figures of collected sweeps (tables from ``fedsim collect``), one function per study.

Each takes the collected table (one row per job × round; see :mod:`fedsim.collect`)
and returns a figure. Only ``complete`` jobs are drawn. Bands are 95 % confidence
intervals of the mean over the jobs that share an x value and a line (in the
scenarios: over seeds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fedsim.errors import FedsimError
from fedsim.figures import theme

CI = ("ci", 95)
LABELS = {
    "failure.dropout": "client dropout probability per round",
    "data.num_clients": "number of clients",
    "checkpoint.tau_s": "checkpoint interval τ (virtual s of local compute)",
    "accuracy": "final test accuracy",
    "auc": "final test AUC-ROC",
    "summary.virtual_s": "virtual time to finish (s)",
    "round": "round",
    "time_s": "virtual time (s)",
    "strategy.name": "strategy",
}
ACCOUNTS = ("summary.useful_s", "summary.checkpoint_s", "summary.lost_s", "summary.recovery_s")


def _need(table: pd.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise FedsimError(f"the table lacks column(s) {', '.join(missing)}; collect a sweep that sets them (fedsim collect <sweep dir>)")


def complete(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of finished jobs only (tables without a ``status`` column are taken as they are)."""
    out = table[table["status"] == "complete"] if "status" in table.columns else table
    if out.empty:
        raise FedsimError("the table has no complete jobs to plot")
    return out


def final_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One row per complete job: its last round (final metrics, plus the job's columns)."""
    t = complete(table)
    if "round" not in t.columns:
        return t
    key = "job" if "job" in t.columns else "job_num"
    return t.sort_values([key, "round"], kind="stable").groupby(key, sort=False).tail(1).reset_index(drop=True)


def _hue(table: pd.DataFrame, hue: str | None) -> str | None:
    """The line grouping: ``hue`` if given, else the strategy when the table has it."""
    if hue is not None:
        _need(table, hue)
        return hue
    return "strategy.name" if "strategy.name" in table.columns else None


def _label(column: str) -> str:
    return LABELS.get(column, column)


def _panels(n: int) -> tuple[plt.Figure, Sequence[plt.Axes]]:
    theme()
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.6), squeeze=False)
    return fig, list(axes[0])


def _lines(data: pd.DataFrame, x: str, ys: Sequence[str], hue: str | None, logx: bool = False) -> plt.Figure:
    fig, axes = _panels(len(ys))
    for ax, y in zip(axes, ys, strict=True):
        sns.lineplot(data=data, x=x, y=y, hue=hue, marker="o", errorbar=CI, err_style="band", ax=ax, legend=ax is axes[-1] and hue is not None)
        ax.set(xlabel=_label(x), ylabel=_label(y))
        if logx:
            ax.set_xscale("log")
            xs = np.sort(data[x].unique())
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
            ax.minorticks_off()
    if hue is not None and axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.0, 1.0), title=_label(hue))
    fig.tight_layout()
    return fig


def dropout_sweep(table: pd.DataFrame, hue: str | None = None) -> plt.Figure:
    """Final accuracy and AUC against the dropout rate; one line per strategy, CI band over seeds."""
    _need(table, "failure.dropout", "accuracy", "auc")
    data = final_rows(table)
    return _lines(data, "failure.dropout", ["accuracy", "auc"], _hue(data, hue))


def client_scaling(table: pd.DataFrame, hue: str | None = None) -> plt.Figure:
    """Final accuracy and virtual time to finish against the number of clients (log x)."""
    _need(table, "data.num_clients", "accuracy")
    data = final_rows(table)
    time_col = "summary.virtual_s" if "summary.virtual_s" in data.columns else "time_s"
    return _lines(data, "data.num_clients", ["accuracy", time_col], _hue(data, hue), logx=True)


def learning_curves(table: pd.DataFrame, hue: str | None = None, x: str = "round") -> plt.Figure:
    """Test accuracy and loss per round (or virtual time), one line per ``hue`` value, CI band over the rest."""
    _need(table, x, "accuracy", "loss")
    data = complete(table)
    if hue is None:  # the swept parameter with the most values, seeds aside
        params = [c for c in data.columns if "." in c and not c.startswith("summary.") and c != "run.seed"]
        varying = sorted((c for c in params if data[c].nunique() > 1), key=lambda c: -data[c].nunique())
        hue = varying[0] if varying else None
    else:
        _need(data, hue)
    fig = _lines(data, x, ["accuracy", "loss"], hue)
    fig.axes[0].set_ylabel("test accuracy")
    fig.axes[1].set_ylabel("test loss (BCE)")
    return fig


def simulated_overhead(data: pd.DataFrame) -> pd.Series | None:
    """Per-job overhead (checkpoint + lost + recovery) ÷ useful time, or ``summary.overhead`` if the run wrote it."""
    if "summary.overhead" in data.columns:
        return data["summary.overhead"].astype(float)
    if all(c in data.columns for c in ACCOUNTS):
        useful = data["summary.useful_s"].astype(float)
        return (data["summary.checkpoint_s"] + data["summary.lost_s"] + data["summary.recovery_s"]).astype(float) / useful
    return None


def ctau(
    table: pd.DataFrame,
    *,
    delta: float | None = None,
    restart: float | None = None,
    shape: float | None = None,
    scale: float | None = None,
    model: str = "renewal",
) -> plt.Figure:
    """C(τ): the analytic expected overhead (exact ``model`` and the paper's form) with simulated points.

    Parameters default to the table's ``checkpoint.delta_s``, ``checkpoint.restart_s`` +
    ``failure.repair_mean_s`` (R: down time plus restart), ``failure.shape`` and
    ``failure.scale``. Simulated points are each job's overhead (see
    :func:`simulated_overhead`); a table without the time accounts shows
    ``summary.virtual_s`` on a second axis instead.
    """
    from fedsim.checkpoint import expected_overhead, optimal_interval, paper_cost  # the maths module, imported when drawn

    _need(table, "checkpoint.tau_s")
    data = final_rows(table)

    def param(value: float | None, *columns: str) -> float:
        if value is not None:
            return float(value)
        _need(data, *columns)
        return float(sum(data[c].astype(float).iloc[0] for c in columns))

    d = param(delta, "checkpoint.delta_s")
    restart_s = float(data["checkpoint.restart_s"].iloc[0]) if "checkpoint.restart_s" in data.columns else 0.0
    r = float(restart) if restart is not None else param(None, "failure.repair_mean_s") + restart_s
    k, lam = param(shape, "failure.shape"), param(scale, "failure.scale")
    taus = data["checkpoint.tau_s"].astype(float)
    best = optimal_interval(d, r, k, lam, model=model)  # type: ignore[arg-type]
    grid = np.geomspace(min(taus.min(), best.tau) / 4, max(taus.max(), best.tau) * 4, 400)
    exact = np.asarray(expected_overhead(grid, d, r, k, lam, model=model))  # type: ignore[arg-type]
    paper = np.asarray(paper_cost(grid, d, r, k, lam))

    theme()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.plot(grid, exact, color="C0", label=f"expected overhead ({model} model)")
    ax.plot(grid, paper, color="C0", linestyle=":", label="paper's C(τ) per unit of work")
    ax.axvline(best.tau, color="0.4", linestyle="--", linewidth=1, label=f"τ* = {best.tau:.3g} s")
    sim = simulated_overhead(data)
    if sim is not None:
        ax.scatter(taus, sim, color="C3", zorder=3, label="simulated (one point per job)")
        top = max(float(sim.max()), 3 * best.overhead)
    else:
        twin = ax.twinx()
        twin.scatter(taus, data["summary.virtual_s"].astype(float), color="C3", zorder=3)
        twin.set_ylabel("simulated virtual time (s, points)", color="C3")
        twin.grid(False)
        top = 3 * best.overhead
    ax.set(xscale="log", xlabel=_label("checkpoint.tau_s"), ylabel="overhead (total ÷ useful time − 1)")
    ticks = np.sort(taus.unique())
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, top * 1.1 if math.isfinite(top) and top > 0 else None)
    ax.set_title(f"Weibull k = {k:g}, λ = {lam:g} s; δ = {d:g} s, R = {r:g} s", fontsize="medium")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize="small")
    fig.tight_layout()
    return fig


KINDS = {"dropout": dropout_sweep, "scaling": client_scaling, "learning": learning_curves, "ctau": ctau}
