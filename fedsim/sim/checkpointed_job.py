"""One node running a checkpointed job under Weibull failures: the simulation that checks C(τ).

The job of T useful work is split into n = ⌈T/τ⌉ equal chunks; each chunk is
followed by a checkpoint of cost δ. Assumption shared with
:mod:`fedsim.checkpoint.cost` (so they agree exactly in expectation): failures strike
during work and checkpoints, never during restarts. A failure anywhere in a segment
(chunk + checkpoint) loses it; the node is down for the restart cost R (its age frozen)
and then redoes the segment from the last checkpoint.

How the node ages is the failure model, drawn with the engine's own
:mod:`fedsim.sim.failures` draws:

* ``segment``: a fresh lifetime at the start of every segment attempt;
* ``renewal``: a fresh lifetime after each restart, ageing across checkpoints;
* ``minimal_repair``: the next failure age is the previous one plus a residual life
  at that age (``weibull_residual_life``): a power-law process in node age.

Only one node and its own failures are involved, so the job process races each
segment against the node's next failure itself rather than being interrupted by a
separate clock: the node's state decides the race, and nothing else can interrupt.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import simpy

from fedsim.checkpoint.cost import STUCK_HAZARD, segments
from fedsim.checkpoint.weibull import cumulative_hazard, require_non_negative, require_positive
from fedsim.errors import FedsimError
from fedsim.seeding import rng as stream
from fedsim.sim.failures import weibull_residual_life, weibull_time_to_failure

SIM_MODELS = ("segment", "renewal", "minimal_repair")
EventLog = Callable[[float, str], None]  # (virtual time, "failure" | "restart" | "checkpoint")


@dataclass(frozen=True)
class JobResult:
    """What one job measured."""

    total_time: float  # wall (virtual) time from start to the last checkpoint
    work: float  # useful work T
    failures: int
    checkpoints: int

    @property
    def overhead(self) -> float:
        """Total time / useful work − 1."""
        return self.total_time / self.work - 1.0


class NodeLife:
    """The node's failure state under one failure model; time is uptime since the job started."""

    def __init__(self, model: str, shape: float, scale: float, rng: np.random.Generator) -> None:
        if model not in SIM_MODELS:
            raise FedsimError(f"model must be one of {', '.join(SIM_MODELS)}, got {model!r}")
        self.model, self.shape, self.scale, self.rng = model, shape, scale, rng
        self.age = 0.0  # uptime since the node was last renewed (minimal repair: since new)
        self.fail_age = weibull_time_to_failure(rng, shape, scale)  # age at which it next fails

    def until_failure(self) -> float:
        """Uptime left before the next failure, at the start of a segment attempt."""
        if self.model == "segment":  # as good as new at every segment start
            self.age, self.fail_age = 0.0, weibull_time_to_failure(self.rng, self.shape, self.scale)
        return self.fail_age - self.age

    def segment_hazard(self, length: float) -> float:
        """Expected failures during the next attempt of ``length`` (−log of its success probability)."""
        start = self.age if self.model == "minimal_repair" else 0.0
        return float(cumulative_hazard(start + length, self.shape, self.scale) - cumulative_hazard(start, self.shape, self.scale))

    def run(self, uptime: float) -> None:
        """Age the node by ``uptime`` without a failure."""
        self.age += uptime

    def fail(self) -> None:
        """The node has just failed (its age is ``fail_age``); draw when it fails next."""
        if self.model == "minimal_repair":
            self.age = self.fail_age
            self.fail_age += weibull_residual_life(self.rng, self.shape, self.scale, self.age)
        else:  # renewal (and segment, which redraws anyway): as good as new after repair
            self.age, self.fail_age = 0.0, weibull_time_to_failure(self.rng, self.shape, self.scale)


def checkpointed_job(
    env: simpy.Environment,
    node: NodeLife,
    *,
    work: float,
    tau: float,
    delta: float,
    restart: float,
    log: EventLog | None = None,
) -> Generator[simpy.Event, object, JobResult]:
    """SimPy process: do ``work`` in n = ⌈T/τ⌉ checkpointed chunks on ``node``; return a :class:`JobResult`.

    Stops with FedsimError once a segment's own cumulative hazard exceeds 30 (success
    < e^{-30} per attempt, the analytic side's cut-off): e.g. under minimal repair with
    k > 1 an old node fails faster than it can ever finish a segment.
    """
    require_positive("work", work)
    require_positive("tau", tau)
    require_non_negative("delta", delta)
    require_non_negative("restart", restart)
    n = segments(tau, work)
    segment = work / n + delta
    start, failures = env.now, 0
    for _ in range(n):
        while (left := node.until_failure()) < segment:
            yield env.timeout(left)
            node.fail()
            failures += 1
            if node.segment_hazard(segment) > STUCK_HAZARD:
                raise FedsimError(f"after {failures} failures the node can no longer finish a segment; shorten tau or work")
            if log is not None:
                log(env.now, "failure")
            yield env.timeout(restart)  # down: no failures, no ageing
            if log is not None:
                log(env.now, "restart")
        yield env.timeout(segment)
        node.run(segment)
        if log is not None:
            log(env.now, "checkpoint")
    return JobResult(total_time=env.now - start, work=work, failures=failures, checkpoints=n)


def run_job(
    *,
    work: float,
    tau: float,
    delta: float,
    restart: float,
    shape: float,
    scale: float,
    model: str,
    seed: int,
    replicate: int = 0,
    log: EventLog | None = None,
) -> JobResult:
    """Run one job in its own environment, on stream ``rng(seed, "checkpointed_job", replicate)``."""
    require_positive("shape", shape)
    require_positive("scale", scale)
    env = simpy.Environment()
    node = NodeLife(model, shape, scale, stream(seed, "checkpointed_job", replicate))
    proc = env.process(checkpointed_job(env, node, work=work, tau=tau, delta=delta, restart=restart, log=log))
    env.run()
    return proc.value
