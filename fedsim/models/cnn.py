"""A small CNN for image classification: FedAvg's MNIST CNN, sized by the data.

McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017, §3: two 5×5 convolutions (32, 64 channels) each followed by 2×2 max pooling, a
512-unit ReLU layer and a linear output. Convolutions pad to keep the size, so the width of
the dense layer follows from ``input_shape``. No BatchNorm and no dropout: the model is a pure
function of its weights, so it can be trained under ``torch.func.vmap`` and stays
deterministic for a given step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from fedsim.errors import FedsimError


@dataclass
class CNNConfig:
    """Config of :class:`CNN` (hydra ``model=cnn``); ``input_shape`` and ``num_classes`` come from the data and task."""

    _target_: str = "fedsim.models.cnn.CNN"
    channels: list[int] = field(default_factory=lambda: [32, 64])
    """Output channels of each convolution (each followed by ReLU and 2×2 max pooling)."""
    kernel_size: int = 5
    hidden: int = 512
    """Width of the dense ReLU layer before the logits."""


class CNN(nn.Module):
    """Conv–ReLU–MaxPool blocks, then a dense ReLU layer and ``num_classes`` logits."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 5,
        hidden: int = 512,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise FedsimError(f"model=cnn needs image samples (C, H, W), and the data's are {tuple(input_shape)}; use model=logreg or model=dnn")
        c, h, w = (int(d) for d in input_shape)
        shrink = 2 ** len(channels)
        if min(h, w) < shrink:
            raise FedsimError(f"model.channels={list(channels)} pools {h}×{w} images below 1×1 (each block halves them); use at most {max(min(h, w), 1).bit_length() - 1} entries")
        for key, value in (("channels", min(channels, default=1)), ("kernel_size", kernel_size), ("hidden", hidden)):
            if value < 1:
                raise FedsimError(f"model.{key} has {value}, out of range: must be ≥ 1; fix the override or conf/model/cnn.yaml")
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, kernel_size, padding="same"), nn.ReLU(), nn.MaxPool2d(2)]
            c = out
        layers += [nn.Flatten(), nn.Linear(c * (h // shrink) * (w // shrink), hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``(n, num_classes)``."""
        return self.net(x)
