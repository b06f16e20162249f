"""The strategy interface: select clients, instruct their training, combine their updates.

The shape follows Flower's strategies: paired hooks per round, ``configure_round``
(who trains) and ``configure_fit`` (what the server sends them: the global state and
instructions for the client half of the strategy), then ``aggregate``. A strategy
keeps its own server state (server optimiser moments, meta-networks) across rounds
and hands it out through ``state_dict`` so server checkpoints and run snapshots
carry it. Guards, timing and metrics live once in the server loop, not here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from fedsim.fl.messages import FitIns, Update


class Strategy:
    """Base class: uniform client selection and plain instructions; subclasses aggregate.

    ``fraction`` of the clients (at least ``min_clients``) are drawn uniformly each round.
    """

    def __init__(self, *, fraction: float = 1.0, min_clients: int = 1) -> None:
        self.fraction = fraction
        self.min_clients = min_clients

    def configure_round(self, rnd: int, clients: Sequence[int], rng: np.random.Generator) -> list[int]:
        """The clients asked to train in round ``rnd``: a uniform sample, everyone when ``fraction`` is 1."""
        k = min(len(clients), max(self.min_clients, math.ceil(self.fraction * len(clients))))
        if k == len(clients):
            return list(clients)
        return sorted(int(c) for c in rng.choice(np.asarray(clients), size=k, replace=False))

    def configure_fit(self, rnd: int, current: torch.Tensor) -> FitIns:
        """What every selected client receives in round ``rnd``: here, just the global state."""
        return FitIns(flat=current)

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """The new global state from ``current`` and this round's updates (never empty)."""
        raise NotImplementedError

    def personalization(self, current: torch.Tensor) -> FitIns | None:
        """Instructions each client uses to personalise ``current`` before it is evaluated; ``None`` = evaluate it as is."""
        return None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The server-side state that must survive a restart (empty for stateless strategies)."""
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")


class AsyncStrategy(Strategy):
    """Base of asynchronous strategies: updates are folded in one at a time as they arrive
    (:meth:`receive`), and the strategy says when the server takes a step (:meth:`step`),
    which makes a new model version. The server keeps ``concurrency`` clients busy (None:
    as many as ``fraction`` of the fleet) and drops updates staler than ``max_staleness``
    versions (None: none are dropped).
    """

    asynchronous = True

    def __init__(self, *, concurrency: int | None = None, max_staleness: int | None = None, fraction: float = 1.0, min_clients: int = 1) -> None:
        super().__init__(fraction=fraction, min_clients=min_clients)
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be ≥ 1 or None (got {concurrency})")
        if max_staleness is not None and max_staleness < 0:
            raise ValueError(f"max_staleness must be ≥ 0 or None (got {max_staleness})")
        self.concurrency, self.max_staleness = concurrency, max_staleness

    def select(self, k: int, idle: Sequence[int], rng: np.random.Generator) -> list[int]:
        """The ``k`` idle clients to dispatch (uniformly drawn; all of them when there are no more)."""
        if k >= len(idle):
            return list(idle)
        return sorted(int(c) for c in rng.choice(np.asarray(idle), size=k, replace=False))

    def receive(self, current: torch.Tensor, base: torch.Tensor, update: Update, staleness: int) -> bool:
        """Fold in ``update``, trained from ``base`` and ``staleness`` versions behind ``current``; returns whether to step now."""
        raise NotImplementedError

    def step(self, current: torch.Tensor) -> torch.Tensor:
        """The new global state after a server step from ``current``."""
        raise NotImplementedError

    def aggregate(self, rnd: int, current: torch.Tensor, updates: Sequence[Update]) -> torch.Tensor:
        """Asynchronous strategies fold updates in one at a time (:meth:`receive`)."""
        raise TypeError(f"{type(self).__name__} is asynchronous: it folds updates in with receive(), not aggregate()")
