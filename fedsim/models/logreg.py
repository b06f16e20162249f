"""Multinomial logistic regression: the convex model of FedProx's synthetic and MNIST experiments.

Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020, §5.1 train a
multinomial logistic regression on Synthetic(α, β); here it is one linear layer on the
flattened sample, whose logits the classification task's cross-entropy turns into the softmax
loss.
"""

from __future__ import annotations

import torch
from torch import nn

from fedsim.errors import FedsimError


class LogisticRegression(nn.Module):
    """``num_classes`` logits per sample from one linear map of its ``num_features`` flattened values
    (one logit under task=binary_anomaly: binary logistic regression)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        if num_features < 1 or num_classes < 1:
            raise FedsimError(f"model=logreg needs num_features ≥ 1 and num_classes ≥ 1 (got {num_features}, {num_classes}); use data with features and task=classification")
        self.linear = nn.Linear(num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``(n, num_classes)``."""
        return self.linear(x.flatten(1))
