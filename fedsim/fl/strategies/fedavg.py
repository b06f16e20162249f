"""FedAvg (McMahan et al., AISTATS 2017) and FedProx (Li et al., MLSys 2020).

FedProx is FedAvg whose clients add the proximal term μ/2·‖w − w_global‖² to their
local objective; its only server-side difference is the instruction it sends.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedsim.fl.aggregate import weighted_mean
from fedsim.fl.messages import FitIns, Update
from fedsim.fl.strategies.base import Strategy


class FedAvg(Strategy):
    """Sample-weighted mean of the client states."""

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """Weighted by each client's number of training samples n_k / n."""
        return weighted_mean([u.flat for u in updates], [u.num_samples for u in updates])


class FedProx(FedAvg):
    """FedAvg with a proximal term of weight ``mu`` in every client's local loss (μ = 0 is FedAvg)."""

    def __init__(self, *, mu: float = 0.01, fraction: float = 1.0, min_clients: int = 1) -> None:
        super().__init__(fraction=fraction, min_clients=min_clients)
        self.mu = mu

    def configure_fit(self, rnd: int, current: torch.Tensor) -> FitIns:
        """The global state, and μ for the clients' proximal term."""
        return FitIns(flat=current, prox_mu=self.mu)
