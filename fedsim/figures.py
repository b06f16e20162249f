"""Figures drawn from result tables (never from live simulation objects)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from fedsim.results import atomic_write  # noqa: E402


def save(fig: plt.Figure, path: Path) -> Path:
    """Save atomically and close; the format follows the suffix (png, svg, pdf)."""
    path = Path(path)
    out = atomic_write(path, lambda p: fig.savefig(p, format=path.suffix.lstrip("."), dpi=150, bbox_inches="tight"))
    plt.close(fig)
    return out


def learning_curve(rounds: pd.DataFrame, path: Path) -> Path:
    """Test accuracy and loss against virtual time, one marker per round."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.2)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.5))
    sns.lineplot(data=rounds, x="time_s", y="accuracy", marker="o", ax=ax_acc)
    sns.lineplot(data=rounds, x="time_s", y="loss", marker="o", ax=ax_loss, color="C3")
    ax_acc.set(xlabel="virtual time (s)", ylabel="test accuracy", title="Accuracy")
    ax_loss.set(xlabel="virtual time (s)", ylabel="test loss (BCE)", title="Loss")
    fig.tight_layout()
    return save(fig, path)
