"""Strategies: which clients train each round, and how their updates are combined.

The shape follows Flower's strategies: a pair of hooks, ``configure_round`` and
``aggregate``, with the maths in free functions (:mod:`fedsim.fl.aggregate`). Guards,
timing and metrics live once in the server loop, not in each strategy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedsim.fl.aggregate import weighted_mean


@dataclass(frozen=True)
class Update:
    """A client's result for one round, as it arrives at the server."""

    client: int
    round: int
    flat: torch.Tensor
    num_samples: int
    loss: float
    origin: int = -1  # whose data was trained (differs from ``client`` after redistribution)


class Strategy:
    """Base class: select clients, then aggregate their updates."""

    def configure_round(self, rnd: int, clients: Sequence[int], rng: np.random.Generator) -> list[int]:
        """The clients asked to train in round ``rnd``."""
        raise NotImplementedError

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """The new global state from ``current`` and this round's updates (never empty)."""
        raise NotImplementedError


class FedAvg(Strategy):
    """FedAvg (McMahan et al., AISTATS 2017): sample-weighted mean of client states.

    ``fraction`` of the clients (at least ``min_clients``) are drawn uniformly each round.
    """

    def __init__(self, *, fraction: float = 1.0, min_clients: int = 1) -> None:
        self.fraction = fraction
        self.min_clients = min_clients

    def configure_round(self, rnd: int, clients: Sequence[int], rng: np.random.Generator) -> list[int]:
        """Uniform sample without replacement; everyone when ``fraction`` is 1."""
        k = min(len(clients), max(self.min_clients, math.ceil(self.fraction * len(clients))))
        if k == len(clients):
            return list(clients)
        return sorted(int(c) for c in rng.choice(np.asarray(clients), size=k, replace=False))

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """Weighted by each client's number of training samples n_k / n."""
        return weighted_mean([u.flat for u in updates], [u.num_samples for u in updates])
