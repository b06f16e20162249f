"""FedBuff (Nguyen et al., "Federated Learning with Buffered Asynchronous Aggregation", AISTATS 2022).

Clients train from the version they downloaded and return the change Δ = x_client − x_base.
The server adds each to a buffer, weighted 1/√(1 + staleness) (Algorithm 1; ``staleness_weighting``
off: weight 1), and after ``buffer_size`` (K) updates takes a server step with rate η_g:

    x ← x + η_g · (Σ w_i Δ_i) / K

With K = concurrency = every client, equal speeds, η_g = 1 and no staleness weighting, every
version is the plain mean of the clients' models: FedAvg with equal shards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from fedsim.fl.messages import Update
from fedsim.fl.strategies.base import AsyncStrategy


class FedBuff(AsyncStrategy):
    """Buffers K staleness-weighted client changes, then steps the global model with their mean."""

    def __init__(
        self,
        *,
        buffer_size: int = 10,
        server_lr: float = 1.0,
        staleness_weighting: bool = True,
        concurrency: int | None = None,
        max_staleness: int | None = None,
        fraction: float = 1.0,
        min_clients: int = 1,
    ) -> None:
        super().__init__(concurrency=concurrency, max_staleness=max_staleness, fraction=fraction, min_clients=min_clients)
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be ≥ 1 (got {buffer_size})")
        if server_lr <= 0:
            raise ValueError(f"server_lr must be > 0 (got {server_lr})")
        self.buffer_size, self.server_lr, self.staleness_weighting = buffer_size, server_lr, staleness_weighting
        self.buffer: torch.Tensor | None = None  # Σ w_i Δ_i, float64
        self.count = 0

    def receive(self, current: torch.Tensor, base: torch.Tensor, update: Update, staleness: int) -> bool:
        """Add the weighted change of ``update`` from the model it trained on; step once K are in."""
        weight = 1 / math.sqrt(1 + staleness) if self.staleness_weighting else 1.0
        delta = (update.flat.double() - base.double()).mul_(weight)
        self.buffer = delta if self.buffer is None else self.buffer.add_(delta)
        self.count += 1
        return self.count >= self.buffer_size

    def step(self, current: torch.Tensor) -> torch.Tensor:
        """x + η_g · mean of the buffered changes; the buffer empties."""
        assert self.buffer is not None
        out = (current.double() + self.buffer.mul_(self.server_lr / self.count)).to(current.dtype)
        self.buffer, self.count = None, 0
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The buffer and its count (empty right after a step, when the server checkpoints)."""
        return {} if self.buffer is None else {"buffer": self.buffer.clone(), "count": torch.tensor(self.count)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore the buffer."""
        self.buffer = state["buffer"].clone() if state else None
        self.count = int(state["count"]) if state else 0
