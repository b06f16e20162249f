"""The server's act of aggregating: the strategy's rule, its time on the virtual clock, a finite check.

Shared by the synchronous and asynchronous protocols. The time is ``run.aggregation_s``
plus the variable part of :class:`~fedsim.fl.aggregation_cost.AggregationCost`; a
resumed run replays the recorded variable parts instead of measuring again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import simpy
import torch

from fedsim.errors import FedsimError
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.replay import Replay


class Aggregator:
    """Runs an aggregation, pays its time, and refuses a non-finite result (unless told to let it through)."""

    def __init__(self, env: simpy.Environment, fixed_s: float, cost: AggregationCost, *, check_finite: bool, replay: Replay | None) -> None:
        self.env, self.fixed_s, self.cost = env, fixed_s, cost
        self.check_finite = check_finite  # a NaN/inf aggregate stops the run
        self.replay = replay
        self.extras: list[float] = []  # the variable time of every aggregation so far (a snapshot keeps them)

    def run(self, combine: Callable[[], torch.Tensor], updates: int, number: int):
        """Generator: ``combine()`` the ``updates`` into model ``number``, wait out the aggregation time, return the result."""
        t0 = time.perf_counter()
        merged = combine()
        if self.replay is not None and self.replay.active:  # a measured cost is not measured twice
            extra = self.replay.aggregation_extra(len(self.extras))
        else:
            extra = self.cost.extra_s(updates, time.perf_counter() - t0)
        self.extras.append(extra)
        yield self.env.timeout(self.fixed_s + extra)
        if self.check_finite and not bool(torch.isfinite(merged).all()):
            raise FedsimError(f"the aggregated model of round {number} is not finite (NaN/inf); lower strategy.server_lr or strategy.lr, or set run.on_divergence=ignore")
        return merged
