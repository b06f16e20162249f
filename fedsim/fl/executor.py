"""Runs the real torch work that client processes ask for, and times it.

The executor owns the client datasets (as tensors already on the compute device)
and one scratch model; a job is fully described by (client, start state, seed,
stop step), so where and when it runs never changes its result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fedsim.fl.messages import FitIns
from fedsim.train import personalize
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainResult, TrainState, local_train, steps_per_epoch


class SequentialExecutor:
    """Trains one client at a time on a shared scratch model (the reference path)."""

    def __init__(
        self,
        model: nn.Module,
        layout: FlatLayout,
        data: Sequence[tuple[torch.Tensor, torch.Tensor]],
        spec: LocalSpec,
    ) -> None:
        self.model = model
        self.layout = layout
        self.data = list(data)
        self.spec = spec
        self._parts: dict[tuple[int, int, int], int] = {}
        self.wall_s = 0.0  # real seconds spent training, summed over jobs

    def num_samples(self, client: int) -> int:
        """Training rows held by ``client``."""
        return len(self.data[client][0])

    def split(self, origin: int, parts: int, index: int) -> tuple[int, int]:
        """Dataset id and size in bytes of the ``index``-th of ``parts`` contiguous shares of ``origin``'s data.

        Used when the server redistributes a failed client's data; shares are registered once.
        """
        key = (origin, parts, index)
        if key not in self._parts:
            x, y = self.data[origin]
            rows = np.array_split(np.arange(len(x)), parts)[index]
            self._parts[key] = len(self.data)
            self.data.append((x[rows], y[rows]))
        x, y = self.data[self._parts[key]]
        return self._parts[key], x.numel() * x.element_size() + y.numel() * y.element_size()

    def round_steps(self, client: int) -> int:
        """Local steps in one round: ``epochs`` passes over the client's rows."""
        return self.spec.epochs * steps_per_epoch(self.num_samples(client), self.spec.batch_size)

    def train(self, client: int, start: TrainState, *, seed: int, stop_step: int, fit: FitIns | None = None) -> TrainResult:
        """Train ``client`` from ``start`` to ``stop_step`` as ``fit`` instructs; adds the real time taken to ``wall_s``."""
        t0 = time.perf_counter()
        x, y = self.data[client]
        mu = fit.prox_mu if fit is not None else 0.0
        anchor = fit.flat if fit is not None else None
        result = local_train(self.model, self.layout, start, x, y, spec=self.spec, seed=seed, stop_step=stop_step, anchor=anchor, prox_mu=mu)
        self.wall_s += time.perf_counter() - t0
        return result

    def meta_gradient(self, client: int, fit: FitIns, *, seed: int) -> dict[str, torch.Tensor]:
        """FedL2P's client step on dataset ``client``: the hypergradient of the meta-nets (and the meta-validation loss)."""
        t0 = time.perf_counter()
        p = fit.personalize
        assert p is not None
        x, y = self.data[client]
        loss, grad = personalize.meta_gradient(self.model, self.layout, fit.flat, p.meta, x, y, spec=p.spec, seed=seed)
        self.wall_s += time.perf_counter() - t0
        return {"meta_grad": grad, "meta_loss": torch.tensor(loss)}

    def personalize_all(self, clients: Sequence[int], fit: FitIns, seeds: Sequence[int]) -> list[torch.Tensor]:
        """Each client's personalisation of ``fit.flat`` on its own training rows (for evaluation)."""
        p = fit.personalize
        assert p is not None
        return [personalize.personalize(self.model, self.layout, fit.flat, p.meta, *self.data[c], spec=p.spec, seed=s) for c, s in zip(clients, seeds)]
