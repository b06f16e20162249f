"""Fig. 2 and Fig. 3 of the checkpointing paper's comparison, from the tidy tables of :mod:`fedsim.experiments.paper`.

Lines are methods; bands are 95 % confidence intervals of the mean over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from fedsim.figures import save_all, theme

CI = ("ci", 95)
ORDER = ["Proposed", "FedAvg", "FedL2P", "FedProx", "FedAdam", "FedYogi"]


def _grid(rows: int, cols: int) -> tuple[plt.Figure, list[list[plt.Axes]]]:
    theme()
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.6 * rows), squeeze=False)
    return fig, [list(r) for r in axes]


def _order(methods: Sequence[str]) -> list[str]:
    return [m for m in ORDER if m in set(methods)] + sorted(set(methods) - set(ORDER))


def _legend(fig: plt.Figure, axes: list[list[plt.Axes]]) -> None:
    handles, labels = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))


def fig2(rounds: pd.DataFrame, path: Path) -> list[Path]:
    """Loss and accuracy per round of each method (clients' own models on their own test rows), per dataset."""
    datasets = list(dict.fromkeys(rounds["dataset"]))
    ys = [("client_loss", "test loss (BCE), mean over clients"), ("client_accuracy", "test accuracy, mean over clients")]
    fig, axes = _grid(len(datasets), len(ys))
    order = _order(rounds["method"].unique())
    for row, dataset in zip(axes, datasets):
        data = rounds[rounds["dataset"] == dataset]
        for ax, (y, label) in zip(row, ys):
            sns.lineplot(data=data, x="round", y=y, hue="method", hue_order=order, errorbar=CI, err_style="band", ax=ax)
            ax.set(xlabel="round", ylabel=label, title=dataset)
    _legend(fig, axes)
    return save_all(fig, path)


def fig3(runs: pd.DataFrame, path: Path) -> list[Path]:
    """Final accuracy against the number of clients and against the dropout rate, per dataset."""
    panels = [(s, x, label) for s, x, label in (("clients", "num_clients", "number of clients"), ("dropout", "dropout", "client dropout rate per round")) if (runs["study"] == s).any()]
    datasets = list(dict.fromkeys(runs["dataset"]))
    fig, axes = _grid(len(datasets), len(panels))
    order = _order(runs["method"].unique())
    for row, dataset in zip(axes, datasets):
        for ax, (study, x, label) in zip(row, panels):
            data = runs[(runs["dataset"] == dataset) & (runs["study"] == study)]
            sns.lineplot(data=data, x=x, y="client_accuracy", hue="method", hue_order=order, marker="o", errorbar=CI, err_style="band", ax=ax)
            ax.set(xlabel=label, ylabel="final test accuracy, mean over clients", title=dataset)
            if study == "clients":
                ax.set_xscale("log")
                xs = sorted(data[x].unique())
                ax.set_xticks(xs, [f"{v:g}" for v in xs])
                ax.minorticks_off()
    _legend(fig, axes)
    return save_all(fig, path)
