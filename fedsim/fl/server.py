"""The server process: rounds of select → broadcast → wait → aggregate → evaluate.

Early stopping follows Algorithm 1 of the checkpointing paper: training stops at
``max_rounds`` or once the validation loss has not improved for ``patience`` rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import simpy
import torch

from fedsim.fl.client import Client, Task
from fedsim.fl.strategy import Strategy, Update
from fedsim.sim.recorder import Recorder

Evaluator = Callable[[torch.Tensor], dict[str, float]]


@dataclass(frozen=True)
class RoundPolicy:
    """When the server stops waiting: ``wait_all`` reporters, or a ``deadline`` in virtual seconds."""

    kind: str = "wait_all"
    deadline_s: float = float("inf")


@dataclass(frozen=True)
class Stopping:
    """Stop after ``max_rounds``, or when validation loss fails to improve by ``min_delta`` for ``patience`` rounds."""

    max_rounds: int = 10
    patience: int = 0  # 0 disables early stopping
    min_delta: float = 0.0


class Round:
    """One round's shared state: the model sent out and the updates coming back."""

    def __init__(
        self, env: simpy.Environment, number: int, global_flat: torch.Tensor, expected: Sequence[int], recorder: Recorder
    ) -> None:
        self.number = number
        self.recorder = recorder
        self.global_flat = global_flat
        self.waiting = set(expected)
        self.updates: list[Update] = []
        self.closed = False
        self.all_in = env.event()
        if not self.waiting:
            self.all_in.succeed()

    def _settle(self, cid: int) -> None:
        self.waiting.discard(cid)
        if not self.waiting and not self.all_in.triggered:
            self.all_in.succeed()

    def receive(self, update: Update) -> None:
        """An update arrived at the server; kept only while the round is open."""
        if self.closed:
            self.recorder.event("late", client=update.client, round=self.number)
            return
        self.recorder.event("receive", client=update.client, round=self.number)
        self.updates.append(update)
        self._settle(update.client)

    def dropped(self, cid: int) -> None:
        """The server learned that ``cid`` will not report this round."""
        if not self.closed:
            self._settle(cid)


class Server:
    """Runs the federated rounds on the simulated clock."""

    def __init__(
        self,
        env: simpy.Environment,
        clients: Sequence[Client],
        *,
        strategy: Strategy,
        initial: torch.Tensor,
        evaluate: Evaluator,
        recorder: Recorder,
        policy: RoundPolicy,
        stopping: Stopping,
        aggregation_s: float,
        dropout: float,
        rng: np.random.Generator,
        wall_clock: Callable[[], float],
        on_round: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.env = env
        self.clients = clients
        self.strategy = strategy
        self.global_flat = initial
        self.evaluate = evaluate
        self.recorder = recorder
        self.policy = policy
        self.stopping = stopping
        self.aggregation_s = aggregation_s
        self.dropout = dropout
        self.rng = rng
        self.wall_clock = wall_clock  # real seconds of torch work so far (train + eval)
        self.on_round = on_round  # sees each round's row as it is recorded (progress bars)
        self.stop_reason = "max_rounds"
        for c in clients:
            c.server = self
        self.process = env.process(self.run())

    def run(self):
        """All rounds, then return."""
        best, stale = float("inf"), 0
        ids = [c.cid for c in self.clients]
        for number in range(1, self.stopping.max_rounds + 1):
            start, failures_before = self.env.now, self.recorder.counts["failure"]
            selected = self.strategy.configure_round(number, ids, self.rng)
            drops = self.rng.random(len(selected)) < self.dropout
            rnd = Round(self.env, number, self.global_flat, selected, self.recorder)
            self.recorder.event("round_start", round=number, value=len(selected))
            for cid, drop in zip(selected, drops):
                self.clients[cid].inbox.put(Task(rnd, dropout=bool(drop)))
            if self.policy.kind == "deadline":
                yield rnd.all_in | self.env.timeout(self.policy.deadline_s)
            else:
                yield rnd.all_in
            rnd.closed = True
            for cid in sorted(rnd.waiting):
                self.clients[cid].cancel(rnd)
            if rnd.updates:
                yield self.env.timeout(self.aggregation_s)
                updates = sorted(rnd.updates, key=lambda u: u.client)
                self.global_flat = self.strategy.aggregate(number, self.global_flat, updates)
                self.recorder.event("aggregate", round=number, value=len(updates))
            metrics = self.evaluate(self.global_flat)
            self.recorder.rounds.append(
                {
                    "round": number,
                    "time_s": self.env.now,
                    "round_time_s": self.env.now - start,
                    "wall_s": self.wall_clock(),
                    "selected": len(selected),
                    "participants": len(rnd.updates),
                    "dropouts": int(drops.sum()),
                    "failures": self.recorder.counts["failure"] - failures_before,
                    "train_loss": float(np.mean([u.loss for u in rnd.updates])) if rnd.updates else float("nan"),
                    **metrics,
                }
            )
            if self.on_round is not None:
                self.on_round(self.recorder.rounds[-1])
            for u in rnd.updates:
                self.recorder.clients.append({"round": number, "client": u.client, "num_samples": u.num_samples, "train_loss": u.loss})
            if self.stopping.patience:
                if metrics["val_loss"] < best - self.stopping.min_delta:
                    best, stale = metrics["val_loss"], 0
                else:
                    stale += 1
                if stale >= self.stopping.patience:
                    self.stop_reason = "early_stopping"
                    self.recorder.event("early_stop", round=number)
                    return
