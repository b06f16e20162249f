"""FedAsync (Xie, Koyejo and Gupta, "Asynchronous Federated Optimization", 2019).

Every arriving update is mixed into the global model at once,

    x ← (1 − α_s)·x + α_s·x_client,   α_s = α·s(staleness),

with the staleness function ``s`` one of the paper's: ``constant`` (s = 1), ``polynomial``
(s = (1 + staleness)^−a) or ``hinge`` (s = 1 up to b versions, then 1 / (a·(staleness − b) + 1)).
Defaults are the paper's: α = 0.6, polynomial with a = 0.5; hinge with a = 10, b = 4.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fedsim.fl.messages import Update
from fedsim.fl.strategies.base import AsyncStrategy

STALENESS = ("constant", "polynomial", "hinge")


def staleness_weight(staleness: int, kind: str, a: float, b: float) -> float:
    """s(staleness) of the FedAsync paper."""
    if kind == "constant":
        return 1.0
    if kind == "polynomial":
        return float((1 + staleness) ** -a)
    if kind == "hinge":
        return 1.0 if staleness <= b else 1.0 / (a * (staleness - b) + 1)
    raise ValueError(f"unknown staleness function {kind!r}; use {', '.join(STALENESS)}")


class FedAsync(AsyncStrategy):
    """Mixes each update in as it arrives, with a weight that decays with its staleness."""

    def __init__(
        self,
        *,
        alpha: float = 0.6,
        staleness: str = "polynomial",
        a: float = 0.5,
        b: float = 4.0,
        concurrency: int | None = None,
        max_staleness: int | None = None,
        fraction: float = 1.0,
        min_clients: int = 1,
    ) -> None:
        super().__init__(concurrency=concurrency, max_staleness=max_staleness, fraction=fraction, min_clients=min_clients)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1] (got {alpha})")
        staleness_weight(0, staleness, a, b)  # an unknown kind fails here, before the run
        self.alpha, self.staleness, self.a, self.b = alpha, staleness, a, b
        self.mixed: torch.Tensor | None = None

    def receive(self, current: torch.Tensor, base: torch.Tensor, update: Update, staleness: int) -> bool:
        """Mix ``update`` into ``current`` with α·s(staleness): every update is a server step."""
        weight = self.alpha * staleness_weight(staleness, self.staleness, self.a, self.b)
        self.mixed = ((1 - weight) * current.double() + weight * update.flat.double()).to(current.dtype)
        return True

    def step(self, current: torch.Tensor) -> torch.Tensor:
        """The mixed model."""
        assert self.mixed is not None
        out, self.mixed = self.mixed, None
        return out

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Nothing survives a step: a restart starts clean."""
        self.mixed = None
        super().load_state_dict(state)
