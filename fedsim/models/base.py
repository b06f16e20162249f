"""What the training and evaluation functions need from a model."""

from __future__ import annotations

import torch
from torch import nn


class AnomalyModel(nn.Module):
    """A torch module that knows its own training loss and anomaly score.

    Keeping the objective on the model lets one local-training function serve a
    supervised classifier (the checkpointing paper's DNN) and an unsupervised
    density model (DAGMM) alike.
    """

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean training loss of a batch (``y`` may be ignored by unsupervised models)."""
        raise NotImplementedError

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Anomaly score per row, higher = more anomalous; called in eval mode."""
        raise NotImplementedError

    def threshold(self, train_scores: torch.Tensor, anomaly_ratio: float) -> float:
        """Score above which a row is flagged; a probability model flags at 0.5."""
        return 0.5
