"""Classification trained with label smoothing (Szegedy et al., CVPR 2016): fedsim's scoring, another loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from fedsim.tasks import Classification


@dataclass(frozen=True)
class SmoothedClassification(Classification):
    """Cross-entropy against targets smoothed by ``smoothing``; metrics and checks are Classification's."""

    smoothing: float = 0.1
    name = "smoothed_classification"

    def criterion(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Label-smoothed cross-entropy of the logits."""
        return F.cross_entropy(output, y.long(), label_smoothing=self.smoothing)
