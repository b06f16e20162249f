"""Coordinate-wise trimmed mean (Yin et al., "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates", ICML 2018): per coordinate, drop the ``trim`` share of the largest
and of the smallest client values and average the rest, so a few wild updates cannot drag the
global model. It ignores sample counts, as in the paper."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from fedsim.fl.messages import Update
from fedsim.fl.strategies import Strategy


class TrimmedMean(Strategy):
    """FedAvg's selection and client training; the trimmed mean instead of the weighted one.

    ``trim`` = β of the paper, in [0, 0.5): 0 is the plain mean, near 0.5 the coordinate-wise
    median. ``fraction`` and ``min_clients`` are fedsim's base strategy settings.
    """

    def __init__(self, *, trim: float = 0.2, fraction: float = 1.0, min_clients: int = 1) -> None:
        if not 0 <= trim < 0.5:
            raise ValueError(f"strategy.trim={trim} must be in [0, 0.5)")
        super().__init__(fraction=fraction, min_clients=min_clients)
        self.trim = trim

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """Sort each coordinate over the clients, cut ⌊β·n⌋ from each end, average the rest (in float64)."""
        stacked = torch.stack([u.flat.double() for u in updates]).sort(dim=0).values
        k = math.floor(self.trim * len(updates))
        return stacked[k : len(updates) - k].mean(dim=0).to(current.dtype)
