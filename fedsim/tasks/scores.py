"""Scores of a binary detector: AUC-ROC from ranks, and accuracy, precision, recall and F1 of its flags."""

from __future__ import annotations

import numpy as np


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
