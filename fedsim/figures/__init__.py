"""Figures drawn from result tables (never from live simulation objects).

:func:`learning_curve` draws one run (``run_and_write`` calls it); :mod:`.sweeps`
draws collected sweeps (``fedsim plot``). Every function takes a table and returns
or saves a matplotlib figure; :func:`save` writes it atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
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
