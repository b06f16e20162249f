"""Aggregation rules as pure functions on flat state vectors."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def weighted_mean(vectors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Σ w_i v_i / Σ w_i — FedAvg (McMahan et al., 2017) when w_i are sample counts.

    Accumulates in float64 and rounds once: Adam amplifies tiny rounding differences
    in BatchNorm-shadowed biases, so the average should not add its own.
    """
    if not vectors:
        raise ValueError("nothing to aggregate")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    acc = torch.zeros_like(vectors[0], dtype=torch.float64)
    last, last_double = None, None
    for v, w in zip(vectors, weights):
        if v is not last:  # consecutive updates may share a state (the system-only surrogate's do): convert it once
            last, last_double = v, v.double()
        acc.add_(last_double, alpha=float(w))
    return (acc / float(sum(weights))).to(vectors[0].dtype)
