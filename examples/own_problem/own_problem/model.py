"""A small 1-D conv net for short sequences."""

from __future__ import annotations

import torch
from torch import nn


class SeqConvNet(nn.Module):
    """Conv1d → ReLU → Conv1d → ReLU → global max pool → linear head.

    fedsim offers ``input_shape`` (one sample's shape, here ``(length,)``) and ``num_outputs``
    (what the task needs per row: a logit per class, or one value for regression) because the
    signature names them; ``channels`` and ``kernel`` come from ``conf/model/seqconv.yaml``.
    """

    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, channels: int = 16, kernel: int = 5) -> None:
        super().__init__()
        in_channels = 1 if len(input_shape) == 1 else input_shape[0]  # (length,) or (channels, length)
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, channels, kernel, padding=kernel // 2), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, length)`` or ``(n, channels, length)`` → ``(n, num_outputs)``."""
        h = self.features(x.unsqueeze(1) if x.dim() == 2 else x)
        return self.head(h.amax(dim=2))
