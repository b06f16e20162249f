"""Fig. 2 and Fig. 3 of the checkpointing paper's comparison, from the tidy tables of :mod:`fedsim.experiments.paper`.

Lines are methods; bands are 95 % confidence intervals of the mean over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns

from fedsim.figures import bottom_legend, grid, save_all

CI = ("ci", 95)
ORDER = ["Proposed", "FedAvg", "FedL2P", "FedProx", "FedAdam", "FedYogi"]


def _order(methods: Sequence[str]) -> list[str]:
    return [m for m in ORDER if m in set(methods)] + sorted(set(methods) - set(ORDER))


def fig2(rounds: pd.DataFrame, path: Path) -> list[Path]:
    """Loss and accuracy per round of each method (clients' own models on their own test rows), per dataset."""
    datasets = list(dict.fromkeys(rounds["dataset"]))
    ys = [("client_loss", "test loss (BCE), mean over clients"), ("client_accuracy", "test accuracy, mean over clients")]
    fig, axes = grid(len(datasets), len(ys))
    order = _order(rounds["method"].unique())
    for row, dataset in zip(axes, datasets):
        data = rounds[rounds["dataset"] == dataset]
        for ax, (y, label) in zip(row, ys):
            sns.lineplot(data=data, x="round", y=y, hue="method", hue_order=order, errorbar=CI, err_style="band", ax=ax)
            ax.set(xlabel="round", ylabel=label, title=dataset)
    bottom_legend(fig, axes)
    return save_all(fig, path)


def fig3(runs: pd.DataFrame, path: Path) -> list[Path]:
    """Final accuracy against the number of clients and against the dropout rate, per dataset."""
    panels = [(s, x, label) for s, x, label in (("clients", "num_clients", "number of clients"), ("dropout", "dropout", "client dropout rate per round")) if (runs["study"] == s).any()]
    datasets = list(dict.fromkeys(runs["dataset"]))
    fig, axes = grid(len(datasets), len(panels))
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
    bottom_legend(fig, axes)
    return save_all(fig, path)
