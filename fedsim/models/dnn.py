"""The checkpointing paper's anomaly-detection DNN (§V-A3).

Dense 1024-768-512-256-128-64-32 with ReLU, batch normalisation after every dense
layer, dropout paired with the last three dense layers, one sigmoid output, binary
cross-entropy. The input width comes from the data (43 in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from fedsim.models.base import AnomalyModel
from fedsim.models.dropout import SeededDropout

PAPER_HIDDEN: tuple[int, ...] = (1024, 768, 512, 256, 128, 64, 32)


class AnomalyDNN(AnomalyModel):
    """Binary classifier; the logit is kept for a numerically stable BCE."""

    def __init__(
        self,
        num_features: int,
        *,
        hidden: Sequence[int] = PAPER_HIDDEN,
        dropout: float = 0.2,
        dropout_last: int = 3,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = num_features
        for i, h in enumerate(hidden):
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if i >= len(hidden) - dropout_last and dropout > 0:
                layers.append(SeededDropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of P(anomaly), shape ``(n,)``, in ``x``'s dtype (float32 under bf16 autocast too: a stable BCE)."""
        return self.net(x).squeeze(-1).to(x.dtype)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy on the sigmoid output."""
        return F.binary_cross_entropy_with_logits(self(x), y.to(x.dtype))

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """P(anomaly)."""
        return torch.sigmoid(self(x))
