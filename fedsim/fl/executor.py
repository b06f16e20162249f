"""Runs the real torch work that client processes ask for, and times it.

The executor owns the client datasets (as tensors already on the compute device)
and one scratch model; a job is fully described by (client, start state, seed,
stop step), so where and when it runs never changes its result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from fedsim.models.base import AnomalyModel
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainResult, TrainState, local_train, steps_per_epoch


class SequentialExecutor:
    """Trains one client at a time on a shared scratch model (the reference path)."""

    def __init__(
        self,
        model: AnomalyModel,
        layout: FlatLayout,
        data: Sequence[tuple[torch.Tensor, torch.Tensor]],
        spec: LocalSpec,
    ) -> None:
        self.model = model
        self.layout = layout
        self.data = data
        self.spec = spec
        self.wall_s = 0.0  # real seconds spent training, summed over jobs

    def num_samples(self, client: int) -> int:
        """Training rows held by ``client``."""
        return len(self.data[client][0])

    def round_steps(self, client: int) -> int:
        """Local steps in one round: ``epochs`` passes over the client's rows."""
        return self.spec.epochs * steps_per_epoch(self.num_samples(client), self.spec.batch_size)

    def train(self, client: int, start: TrainState, *, seed: int, stop_step: int) -> TrainResult:
        """Train ``client`` from ``start`` to ``stop_step``; adds the real time taken to ``wall_s``."""
        t0 = time.perf_counter()
        x, y = self.data[client]
        result = local_train(self.model, self.layout, start, x, y, spec=self.spec, seed=seed, stop_step=stop_step)
        self.wall_s += time.perf_counter() - t0
        return result
