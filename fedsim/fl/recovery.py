"""Fault-tolerance settings and the recovery policies of the checkpointing paper (§IV-B).

Client side, after a failure:
- :class:`ReinitGlobal`: restart the round's work from the latest global weights
  (the paper's path without checkpointing);
- :class:`RestoreCheckpoint`: pay restart time R, restore the latest checkpoint and
  lose only the work since (the paper's path with checkpointing).

Server side, when a failure is detected during a round:
- :class:`Wait`: keep waiting for the client to recover, up to a deadline;
- :class:`Redistribute`: hand the client's data to the active clients (the paper's option);
- :class:`Drop`: aggregate without it (plain FedAvg partial participation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fedsim.checkpoint.adaptive import Law


@dataclass(frozen=True)
class TauRule:
    """How clients choose τ when it is not a fixed number (:mod:`fedsim.fl.tuning`)."""

    mode: str  # auto | adaptive
    prior: Law | None  # the configured law (virtual s); None: no client failure clocks, so τ = ∞
    repair_mean_s: float = 0.0  # mean down time after a failure; R in C(τ) is this plus restart_s
    model: str = "renewal"  # failure model of C(τ): renewal | segment | paper
    refit_every: int = 1
    refit_on: str = "failures"  # failures | rounds
    min_failures: int = 5  # own failures before k and λ come from the client's own fit
    prior_failures: float = 1.0  # weight of the prior, in failures, while it is in use


@dataclass(frozen=True)
class Checkpointing:
    """Client checkpoints every τ of local compute (virtual seconds or steps), each costing δ.

    δ = ``delta_s`` + checkpoint bytes × 8 ÷ ``storage_bps``; restoring costs ``restart_s`` (R).
    """

    tau_s: float = math.inf
    tau_steps: int = 0  # > 0 switches τ to local steps
    delta_s: float = 0.0
    storage_bps: float = math.inf
    restart_s: float = 0.0
    server: bool = True  # the server also checkpoints the global model and round state
    rule: TauRule | None = None  # τ chosen per client (auto | adaptive, fedsim.fl.tuning); tau_s is then each client's

    def cost(self, nbytes: int) -> float:
        """Virtual seconds to write a checkpoint of ``nbytes``."""
        return self.delta_s + 8 * nbytes / self.storage_bps

    @property
    def enabled(self) -> bool:
        """Whether clients checkpoint at all."""
        return self.tau_steps > 0 or math.isfinite(self.tau_s) or self.rule is not None


def checkpoint_steps(step_seconds: np.ndarray, plan: Checkpointing, start: int = 0) -> list[int]:
    """Step boundaries after which a client checkpoints, strictly between ``start`` and the round's end.

    With ``tau_steps``, every ``tau_steps`` steps; with ``tau_s``, at the first step
    boundary where compute since the last checkpoint reaches τ seconds.
    """
    total = len(step_seconds)
    if plan.tau_steps > 0:
        return [s for s in range(plan.tau_steps, total, plan.tau_steps) if s > start]
    if not math.isfinite(plan.tau_s):
        return []
    out, since = [], 0.0
    for s in range(start, total - 1):
        since += step_seconds[s]
        if since >= plan.tau_s:
            out.append(s + 1)
            since = 0.0
    return out


def steps_by(deadline: float, step_seconds: np.ndarray, plan: Checkpointing, checkpoint_s: float, *, start: int, now: float, upload_s: float) -> int:
    """The most local steps, counted from step ``start`` at ``now``, whose compute, checkpoint writes (``checkpoint_s``
    each) and upload end by ``deadline``: the partial work FedProx lets a straggler send."""
    t, done = now, start
    for stop in [*checkpoint_steps(step_seconds, plan, start=start), len(step_seconds)]:
        ends = t + np.cumsum(step_seconds[done:stop])
        fits = int(np.searchsorted(ends + upload_s, deadline, side="right"))
        if fits < stop - done:
            return done + fits
        t, done = float(ends[-1]) + (checkpoint_s if stop < len(step_seconds) else 0.0), stop
    return done


@dataclass(frozen=True)
class Detection:
    """Heartbeats every ``heartbeat_s``; a client silent for ``timeout_s`` is declared failed."""

    heartbeat_s: float = 1.0
    timeout_s: float = 3.0


class ReinitGlobal:
    """After a failure, start over from the latest global weights."""

    uses_checkpoints = False


class RestoreCheckpoint:
    """After a failure, restore the latest checkpoint of this round (paying R), else fall back to the global weights."""

    uses_checkpoints = True


class Drop:
    """Stop waiting for a client as soon as its failure is detected."""

    wait_s = 0.0
    redistribute = False


@dataclass(frozen=True)
class Wait:
    """Keep waiting for a detected-failed client, at most ``wait_s`` after detection."""

    wait_s: float = math.inf
    redistribute = False


class Redistribute:
    """Split a detected-failed client's data among the round's active clients, who train it too."""

    wait_s = 0.0
    redistribute = True


CLIENT_POLICIES = {"reinit_global": ReinitGlobal, "restore_checkpoint": RestoreCheckpoint}
AGGREGATION_POLICIES = ("wait", "redistribute", "drop")


def aggregation_policy(name: str, wait_deadline_s: float = math.inf) -> Wait | Redistribute | Drop:
    """The server-side policy object for ``name``."""
    if name == "wait":
        return Wait(wait_deadline_s)
    if name == "redistribute":
        return Redistribute()
    if name == "drop":
        return Drop()
    raise ValueError(f"unknown aggregation policy {name!r}; use one of {AGGREGATION_POLICIES}")
