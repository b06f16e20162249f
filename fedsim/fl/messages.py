"""What travels between the server and the clients: instructions out, updates back.

Kept apart from the processes that exchange them so that the client and server
modules both depend on this one and never on each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import torch

from fedsim.train.personalize import PersonalizeSpec

META_STEP = -1  # the step number under which a divergence in FedL2P's meta step is reported
NO_EXTRAS: Mapping[str, torch.Tensor] = MappingProxyType({})  # an update's payload beyond the model, when it has none


@dataclass(frozen=True)
class Personalization:
    """FedL2P's instructions: the meta-nets' parameters (flat) and how to fine-tune with them."""

    meta: torch.Tensor
    spec: PersonalizeSpec

    def work_rows(self, n_rows: int) -> int:
        """Virtual cost of a client's meta step, in training-row equivalents.

        The fine-tuning steps' rows count three times (forward, backward, and the
        backward through the unrolled steps for the hypergradient), the
        meta-validation rows twice (forward and backward). A modelling assumption,
        like the per-row cost of local training.
        """
        n_val = max(1, round(self.spec.val_fraction * n_rows))
        return 3 * self.spec.steps * self.spec.batch_size + 2 * n_val


@dataclass(frozen=True)
class FitIns:
    """The server's instructions for one round of local training (Flower's ``FitIns``).

    Every selected client starts from ``flat``; the other fields change what its
    training does, so a strategy with a client half (FedProx, FedL2P) says so here
    rather than in the client code.
    """

    flat: torch.Tensor  # global state to start from
    prox_mu: float = 0.0  # FedProx: weight μ of the proximal term μ/2·‖w − flat‖²; 0 = plain training
    personalize: Personalization | None = None  # FedL2P: also return the meta-nets' hypergradient

    @property
    def extra_bytes(self) -> int:
        """Bytes sent along with the model (the meta-nets)."""
        meta = self.personalize.meta if self.personalize is not None else None
        return 0 if meta is None else meta.numel() * meta.element_size()


class Update(NamedTuple):
    """A client's result for one round, as it arrives at the server. A named tuple: immutable, and made in a third of
    a frozen dataclass's time (a round of a million clients makes 900,000 of them and holds them until it aggregates)."""

    client: int
    round: int
    flat: torch.Tensor
    num_samples: int
    loss: float
    origin: int = -1  # whose data was trained (differs from ``client`` after redistribution)
    extras: Mapping[str, torch.Tensor] = NO_EXTRAS  # strategy payload (FedL2P hypergradients)
    version: int = 0  # the global model version it trained from (round − 1 in synchronous rounds)

    @property
    def extra_bytes(self) -> int:
        """Bytes uploaded along with the model."""
        return sum(t.numel() * t.element_size() for t in self.extras.values()) if self.extras else 0


class Job(NamedTuple):
    """Training on dataset ``data`` on behalf of client ``origin`` (itself, unless redistributed). A named tuple, as
    :class:`Update`: a round makes one per selected client."""

    data: int
    origin: int
    extra_bytes: int = 0  # training data shipped along with the task (redistribution)
    epochs: int | None = None  # a straggler's share of the local epochs (FedProx's systems heterogeneity); None = all
