"""Dropout whose masks come from a generator the trainer hands it, not from torch's global RNG.

A client's masks must be a function of (training seed, step) alone, so that a
restored checkpoint replays the same steps and the batched path can draw the same
masks for each stacked client. Seeding the global RNG every step did that at about
ten times the cost of seeding a private generator. Masks are drawn on the CPU and
moved to the data's device: the same masks on CPU and CUDA, and the same bits as
``nn.Dropout`` on CPU after ``torch.manual_seed`` with the generator's seed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """Keep-mask scaled by 1/(1 − p), drawn as ATen's CPU dropout draws it (``bernoulli_`` then ``div_``)."""
    return torch.empty(shape, dtype=dtype).bernoulli_(1 - p, generator=generator).div_(1 - p)


class SeededDropout(nn.Dropout):
    """``nn.Dropout`` that draws from ``self.generator`` while one is set (by :func:`fedsim.train.local.local_train`)."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.generator is None or not self.training or self.p == 0:
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * dropout_mask(x.shape, self.p, x.dtype, self.generator).to(x.device)
