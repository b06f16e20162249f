"""Metrics of a model state on a labelled set: loss, accuracy, AUC-ROC, precision, recall, F1."""

from __future__ import annotations

import numpy as np
import torch

from fedsim.models.base import AnomalyModel
from fedsim.train.flat import FlatLayout

EVAL_CHUNK = 8192  # rows per forward pass; bounds memory on large test sets


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (``scipy.stats.rankdata``'s default, without importing scipy.stats)."""
    values = np.ravel(values)
    order = np.argsort(values, kind="quicksort")
    inverse = np.empty(len(values), dtype=np.intp)
    inverse[order] = np.arange(len(values), dtype=np.intp)
    ordered = values[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = new.cumsum()[inverse]
    bounds = np.r_[np.nonzero(new)[0], len(new)]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def auc_roc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney rank statistic (ties averaged; NaN if a score is NaN)."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0 or np.isnan(scores).any():
        return float("nan")
    ranks = average_ranks(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(y: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of binary flags against labels (1 = anomaly)."""
    tp = float(np.sum(flagged & (y == 1)))
    fp = float(np.sum(flagged & (y == 0)))
    fn = float(np.sum(~flagged & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float(np.mean(flagged == (y == 1))),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


@torch.no_grad()
def loss_and_scores(model: AnomalyModel, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    """Mean loss and per-row anomaly scores in eval mode, in chunks."""
    model.eval()
    total, scores = 0.0, []
    for start in range(0, len(x), EVAL_CHUNK):
        xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
        total += float(model.loss(xb, yb)) * len(xb)
        scores.append(model.scores(xb).float().cpu())
    return total / max(len(x), 1), torch.cat(scores).numpy()


def evaluate(
    model: AnomalyModel,
    layout: FlatLayout,
    flat: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    threshold: float,
) -> dict[str, float]:
    """Load ``flat`` into ``model`` and score it on ``(x, y)``; rows scoring above ``threshold`` are flagged."""
    layout.load(model, flat)
    loss, scores = loss_and_scores(model, x, y)
    y_np = y.cpu().numpy()
    return {"loss": loss, "auc": auc_roc(y_np, scores), **classification_metrics(y_np, scores > threshold)}
