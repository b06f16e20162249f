"""Adaptive server optimisers: FedAdam and FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021).

Clients train as in FedAvg; the server treats the averaged change Δ = mean(x_k) − x
as a pseudo-gradient and steps with moments m, v (Algorithm 2 of the paper):

    m ← β₁·m + (1 − β₁)·Δ
    v ← β₂·v + (1 − β₂)·Δ²                     (Adam)
    v ← v − (1 − β₂)·Δ²·sign(v − Δ²)           (Yogi)
    x ← x + η·m / (√v + τ)

with m₀ = 0 and v₀ = τ² as the paper prescribes, and no bias correction. Only the
model's trainable parameters step this way; buffers (BatchNorm running statistics,
counters) take the plain average, since a moment-scaled step could, for instance,
drive a running variance negative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from fedsim.fl.aggregate import weighted_mean
from fedsim.fl.messages import Update
from fedsim.fl.strategies.fedavg import FedAvg


def adaptive_step(
    x: torch.Tensor, delta: torch.Tensor, m: torch.Tensor, v: torch.Tensor, *, rule: str, lr: float, beta1: float, beta2: float, tau: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One server step of FedAdam (``rule="adam"``) or FedYogi (``"yogi"``); returns new (x, m, v)."""
    m = beta1 * m + (1 - beta1) * delta
    d2 = delta * delta
    if rule == "adam":
        v = beta2 * v + (1 - beta2) * d2
    elif rule == "yogi":
        v = v - (1 - beta2) * d2 * torch.sign(v - d2)
    else:
        raise ValueError(f"unknown server optimiser rule {rule!r}; use adam or yogi")
    return x + lr * m / (v.sqrt() + tau), m, v


class FedOpt(FedAvg):
    """FedAvg clients, an adaptive optimiser on the server; ``params`` marks the trainable positions of the flat state."""

    rule = "adam"

    def __init__(
        self,
        *,
        params: torch.Tensor | None = None,
        server_lr: float = 0.01,
        beta1: float = 0.9,
        beta2: float = 0.99,
        tau: float = 1e-3,
        fraction: float = 1.0,
        min_clients: int = 1,
    ) -> None:
        super().__init__(fraction=fraction, min_clients=min_clients)
        self.params = params  # bool mask over the flat state; None = every position
        self.lr, self.beta1, self.beta2, self.tau = server_lr, beta1, beta2, tau
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """The plain average for buffers; an adaptive step along the averaged change for parameters."""
        avg = weighted_mean([u.flat for u in updates], [u.num_samples for u in updates])
        mask = self.params if self.params is not None else torch.ones_like(current, dtype=torch.bool)
        x, delta = current[mask].double(), (avg[mask].double() - current[mask].double())
        if self.m is None or self.v is None:
            self.m, self.v = torch.zeros_like(x), torch.full_like(x, self.tau**2)
        x, self.m, self.v = adaptive_step(x, delta, self.m, self.v, rule=self.rule, lr=self.lr, beta1=self.beta1, beta2=self.beta2, tau=self.tau)
        out = avg.clone()
        out[mask] = x.to(out.dtype)
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The server moments (empty before the first aggregation)."""
        return {} if self.m is None or self.v is None else {"m": self.m.clone(), "v": self.v.clone()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore the moments."""
        self.m, self.v = (state["m"].clone(), state["v"].clone()) if state else (None, None)


class FedAdam(FedOpt):
    """FedOpt with Adam's second moment."""

    rule = "adam"


class FedYogi(FedOpt):
    """FedOpt with Yogi's additive, sign-controlled second moment."""

    rule = "yogi"
