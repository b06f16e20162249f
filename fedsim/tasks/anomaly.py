"""Binary anomaly detection: one anomaly score per row, flagged above a threshold (the two papers' task)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.models.base import AnomalyModel
from fedsim.tasks.base import Task, chunks
from fedsim.tasks.scores import auc_roc, classification_metrics


@dataclass(frozen=True)
class BinaryAnomalyDetection(Task):
    """Labels 0 (normal) and 1 (anomaly). A plain model outputs one logit per row (BCE); an
    :class:`~fedsim.models.base.AnomalyModel` brings its own loss, score and threshold (DAGMM's
    energy percentile at ``anomaly_ratio``, by default the training rows' share of anomalies)."""

    anomaly_ratio: float | None = None  # share of rows a percentile threshold flags; None: from the training labels
    name = "binary_anomaly"
    headline = ("accuracy", "auc")

    def prepare(self, data: Dataset) -> BinaryAnomalyDetection:
        """Check the labels are 0/1 with both classes in train and test; take the anomaly share from them."""
        for part, labels in (("training", data.y_train), ("test", data.y_test)):
            values = set(np.unique(labels).tolist())
            if not values <= {0, 1}:
                shown = sorted(values)[:6]
                raise FedsimError(
                    f"the {part} targets of {data.name} are {shown}{'…' if len(values) > 6 else ''}, but task=binary_anomaly needs "
                    f"labels 0 (normal) and 1 (anomaly); use task=classification (or task=regression for float targets)"
                )
            missing = {0, 1} - values
            if missing:
                kind = "normal" if 0 in missing else "anomalous"
                raise FedsimError(f"the {part} rows of {data.name} hold no {kind} rows; an anomaly detector needs both classes: use another file or split")
        return self if self.anomaly_ratio is not None else replace(self, anomaly_ratio=float(np.mean(data.y_train)))

    @property
    def num_outputs(self) -> int:
        """One logit per row."""
        return 1

    def criterion(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy on the logit."""
        return F.binary_cross_entropy_with_logits(output.reshape(len(y)), y.to(output.dtype))

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """An AnomalyModel's own loss (DAGMM is unsupervised), else BCE on the logit."""
        return model.loss(x, y) if isinstance(model, AnomalyModel) else super().loss(model, x, y)

    @torch.no_grad()
    def loss_and_scores(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
        """Mean loss and per-row anomaly scores in eval mode, in one pass of chunks."""
        model.eval()
        total, scores = 0.0, []
        score = model.scores if isinstance(model, AnomalyModel) else (lambda xb: torch.sigmoid(model(xb).reshape(len(xb))))
        for xb, yb in chunks(x, y):
            total += float(self.loss(model, xb, yb)) * len(xb)
            scores.append(score(xb).float().cpu())
        return total / max(len(x), 1), torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)

    def calibrate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Validation loss, and the score threshold: the model's own (a percentile) or 0.5 on a probability."""
        loss, scores = self.loss_and_scores(model, x, y)
        if isinstance(model, AnomalyModel):
            return loss, model.threshold(torch.from_numpy(scores), self.anomaly_ratio if self.anomaly_ratio is not None else 0.5)
        return loss, 0.5

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, calibration: float | None = None) -> dict[str, float]:
        """Loss, AUC-ROC and the flags' accuracy, precision, recall and F1 at the calibrated threshold."""
        loss, scores = self.loss_and_scores(model, x, y)
        y_np = y.cpu().numpy()
        threshold = 0.5 if calibration is None else calibration
        return {"loss": loss, "auc": auc_roc(y_np, scores), **classification_metrics(y_np, scores > threshold)}

    def metric_names(self) -> tuple[str, ...]:
        """Loss, AUC and the thresholded scores."""
        return ("loss", "auc", "accuracy", "precision", "recall", "f1")
