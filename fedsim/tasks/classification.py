"""Multi-class classification: one logit per class, cross-entropy, accuracy and macro-F1."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.tasks.base import Task, outputs


def integer_labels(y: np.ndarray, what: str) -> np.ndarray:
    """``y`` as int64 class labels; a one-line error when they are not whole numbers ≥ 0."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise FedsimError(f"{what} have shape {y.shape}, but task=classification needs one class label per row; use task=regression")
    if y.dtype.kind == "f" and (not np.isfinite(y).all() or np.any(y != np.round(y))):
        raise FedsimError(f"{what} are float values (e.g. {y[np.flatnonzero(y != np.round(y))[:1]].tolist() or y[:1].tolist()}), but task=classification needs integer class labels; use task=regression")
    if y.dtype.kind not in "iuf" or (len(y) and y.min() < 0):
        raise FedsimError(f"{what} must be class labels 0, 1, 2, …; task=classification cannot use them")
    return y.astype(np.int64)


@dataclass(frozen=True)
class Classification(Task):
    """Labels 0..C−1; the model outputs C logits per row. Reports accuracy, macro-F1, the recall of
    every class (``recall_<c>``, up to ``max_class_columns`` classes) and top-k accuracy (C > k)."""

    num_classes: int | None = None  # C; None: one more than the largest label in the data
    top_k: int = 5  # also report top-k accuracy when there are more than k classes (0: never)
    max_class_columns: int = 20  # per-class recall columns only up to this many classes
    name = "classification"
    headline = ("accuracy", "macro_f1")

    def __post_init__(self) -> None:
        if self.num_classes is not None and self.num_classes < 2:
            raise FedsimError(f"task.num_classes={self.num_classes} is out of range: must be ≥ 2 (or null: from the data)")
        if self.top_k < 0:
            raise FedsimError(f"task.top_k={self.top_k} is out of range: must be ≥ 0 (0: no top-k accuracy)")

    def prepare(self, data: Dataset) -> Classification:
        """Check the targets are class labels within ``num_classes``; take the class count from them if unset."""
        train = integer_labels(data.y_train, f"the training targets of {data.name}")
        test = integer_labels(data.y_test, f"the test targets of {data.name}")
        top = int(max(train.max(initial=0), test.max(initial=0)))
        if self.num_classes is not None and top >= self.num_classes:
            raise FedsimError(f"the targets of {data.name} go up to class {top}, beyond task.num_classes={self.num_classes}; raise task.num_classes or set it to null")
        return self if self.num_classes is not None else replace(self, num_classes=max(top + 1, 2))

    @property
    def num_outputs(self) -> int | None:
        """One logit per class."""
        return self.num_classes

    def criterion(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the logits."""
        return F.cross_entropy(output, y.long())

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, calibration: object = None) -> dict[str, float]:
        """Loss, accuracy, macro-F1, per-class recall and top-k accuracy of the logits on ``(x, y)``."""
        from sklearn.metrics import f1_score, recall_score  # loaded when a classifier is first scored

        logits = outputs(model, x)
        target = y.cpu().long()
        labels = list(range(self.num_classes or logits.shape[1]))
        pred = logits.argmax(1).numpy()
        truth = target.numpy()
        out = {
            "loss": float(F.cross_entropy(logits, target)) if len(target) else float("nan"),
            "accuracy": float(np.mean(pred == truth)) if len(truth) else float("nan"),
            "macro_f1": float(f1_score(truth, pred, labels=labels, average="macro", zero_division=0)),
        }
        if self.top_k and len(labels) > self.top_k:
            top = logits.topk(self.top_k, dim=1).indices
            out[f"top{self.top_k}_accuracy"] = float((top == target[:, None]).any(1).float().mean())
        if len(labels) <= self.max_class_columns:
            recall = recall_score(truth, pred, labels=labels, average=None, zero_division=0)
            out |= {f"recall_{c}": float(r) for c, r in zip(labels, recall)}
        return out

    def metric_names(self) -> tuple[str, ...]:
        """The keys :meth:`evaluate` returns for this class count."""
        labels = range(self.num_classes or 0)
        top = (f"top{self.top_k}_accuracy",) if self.top_k and len(labels) > self.top_k else ()
        recall = tuple(f"recall_{c}" for c in labels) if len(labels) <= self.max_class_columns else ()
        return ("loss", "accuracy", "macro_f1", *top, *recall)
