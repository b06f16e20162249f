"""Figures drawn from result tables (never from live simulation objects).

:func:`learning_curve` draws one run (``run_and_write`` calls it); :mod:`.sweeps`
draws collected sweeps (``fedsim plot``). Every function takes a table and returns
or saves a matplotlib figure; :func:`save` writes it atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from fedsim.results import atomic_write  # noqa: E402

FORMATS = ("png", "svg")
RC = {
    "svg.fonttype": "none",  # SVG text stays text: editable, searchable, journal fonts apply
    "pdf.fonttype": 42,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def theme() -> None:
    """Publication defaults: white grid, paper context with readable (≥ 10 pt) fonts."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.3, rc=RC)


def save(fig: plt.Figure, path: Path, close: bool = True) -> Path:
    """Save atomically; the format follows the suffix (png, svg, pdf)."""
    path = Path(path)
    out = atomic_write(path, lambda p: fig.savefig(p, format=path.suffix.lstrip("."), dpi=200, bbox_inches="tight"))
    if close:
        plt.close(fig)
    return out


def save_all(fig: plt.Figure, path: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save ``fig`` once per format (``path``'s suffix is replaced), then close it."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lstrip(".") in {"png", "svg", "pdf"} else path
    outs = [save(fig, stem.with_name(f"{stem.name}.{fmt}"), close=False) for fmt in formats]
    plt.close(fig)
    return outs


def learning_curve(rounds: pd.DataFrame, path: Path, metric: str = "accuracy", loss: str = "loss") -> Path:
    """The task's target ``metric`` and its ``loss`` against virtual time, one marker per round."""
    theme()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.5))
    sns.lineplot(data=rounds, x="time_s", y=metric, marker="o", ax=ax_acc)
    sns.lineplot(data=rounds, x="time_s", y=loss, marker="o", ax=ax_loss, color="C3")
    ax_acc.set(xlabel="virtual time (s)", ylabel=metric.replace("_", " "), title=metric.replace("_", " ").capitalize())
    ax_loss.set(xlabel="virtual time (s)", ylabel=loss.replace("_", " "), title="Loss")
    fig.tight_layout()
    return save(fig, path)


def grid(rows: int, cols: int, sharey: str | bool = False) -> tuple[plt.Figure, list[list[plt.Axes]]]:
    """A ``rows`` × ``cols`` grid of panels in the publication theme."""
    theme()
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.6 * rows), squeeze=False, sharey=sharey)
    return fig, [list(r) for r in axes]


def bottom_legend(fig: plt.Figure, axes: list[list[plt.Axes]]) -> None:
    """One legend for the whole figure, below the panels (the first panel's entries; every panel's own removed)."""
    handles, labels = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))


def metric_grid(
    data: pd.DataFrame, *, x: str, xlabel: str, ys: Sequence[tuple[str, str]], column: str, title: Callable[[object], str], order: Sequence[str], marker: str | None = None
) -> plt.Figure:
    """One row of panels per metric ``ys`` (column, label), one column per value of ``column``; a line per method
    (``order``) against ``x``, a band of ± one standard deviation over seeds; one legend below."""
    values = sorted(data[column].unique())
    fig, axes = grid(len(ys), len(values), sharey="row")
    for col, value in enumerate(values):
        part = data[data[column] == value]
        for row, (y, label) in enumerate(ys):
            ax = axes[row][col]
            sns.lineplot(data=part, x=x, y=y, hue="method", hue_order=list(order), marker=marker, errorbar="sd", err_style="band", ax=ax)
            ax.set(xlabel=xlabel, ylabel=label, title=title(value) if row == 0 else "")
    bottom_legend(fig, axes)
    return fig
