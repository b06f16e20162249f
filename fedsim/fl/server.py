"""The server process: rounds of select → broadcast → wait → aggregate → evaluate → checkpoint.

Early stopping follows Algorithm 1 of the checkpointing paper: training stops at
``max_rounds`` or once the validation loss has not improved for ``patience`` rounds.
With detection on, the server learns of client failures only through missing
heartbeats and then applies its aggregation policy (wait, redistribute, drop). The
server has its own failure clock: it restarts from its last checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import simpy
import torch

from fedsim.checkpoint.store import CheckpointCorrupt, MemoryStore
from fedsim.errors import FedsimError
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.client import Client
from fedsim.fl.messages import Job
from fedsim.fl.recovery import Checkpointing, Detection, Drop, Redistribute, Wait
from fedsim.fl.replay import Replay
from fedsim.fl.round import Key, Round, Task
from fedsim.fl.strategies import Strategy
from fedsim.seeding import rng
from fedsim.sim.failures import Repairable
from fedsim.sim.recorder import Recorder

log = logging.getLogger(__name__)
Evaluator = Callable[[torch.Tensor], dict[str, float]]


@dataclass(frozen=True)
class RoundPolicy:
    """When the server stops waiting: ``wait_all`` reporters, or a ``deadline`` in virtual seconds."""

    kind: str = "wait_all"
    deadline_s: float = math.inf


@dataclass(frozen=True)
class Stopping:
    """Stop after ``max_rounds``, or when the metric ``monitor`` (lower is better) fails to improve by
    ``min_delta`` for ``patience`` rounds."""

    max_rounds: int = 10
    patience: int = 0  # 0 disables early stopping
    min_delta: float = 0.0
    monitor: str = "val_loss"  # a key of the evaluation's metrics (simulate sets the task's)


@dataclass(frozen=True)
class ServerDown:
    """Interrupt cause: the server's node went down."""


def _mean_defined(values: list[float]) -> float:
    """Mean of the values that are defined (a client whose test rows hold one class has no AUC)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


class Server(Repairable):
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
        seed: int,
        wall_clock: Callable[[], float],
        on_round: Callable[[dict[str, object]], None] | None = None,
        detection: Detection | None = None,
        on_failure: Wait | Redistribute | Drop = Wait(),
        checkpointing: Checkpointing = Checkpointing(),
        store: MemoryStore | None = None,
        model_bytes: int = 0,
        split_data: Callable[[int, int, int], tuple[int, int]] | None = None,
        evaluate_clients: Callable[[torch.Tensor], list[dict[str, float]]] | None = None,
        client_metrics: tuple[str, ...] = ("loss",),
        replay: Replay | None = None,
        on_round_end: Callable[[], None] | None = None,
        check_finite: bool = False,
        aggregation: AggregationCost = AggregationCost(),
    ) -> None:
        self.env = env
        self.clients = clients
        self.strategy = strategy
        self.initial_strategy = strategy.state_dict()  # what a restart without a checkpoint goes back to
        self.initial = initial
        self.global_flat = initial
        self.evaluate = evaluate
        self.recorder = recorder
        self.policy = policy
        self.stopping = stopping
        self.aggregation_s = aggregation_s
        self.dropout = dropout
        self.seed = seed  # selection and dropout draw from per-round streams of it
        self.wall_clock = wall_clock  # real seconds of torch work so far (train + eval)
        self.on_round = on_round  # sees each round's row as it is recorded (progress bars)
        self.detection = detection
        self.on_failure = on_failure
        self.checkpointing = checkpointing
        self.store = store if store is not None else MemoryStore()
        self.model_bytes = model_bytes
        self.split_data = split_data  # (origin, parts, index) -> (dataset id, bytes)
        self.evaluate_clients = evaluate_clients  # each client's own model on its own test rows
        self.client_metrics = client_metrics  # the round's row gets their means over clients, as client_<name>
        self.replay = replay  # a resumed run: recorded results until the snapshot's boundary
        self.on_round_end = on_round_end  # after every round that does not stop the run (snapshots)
        self.check_finite = check_finite  # a NaN/inf aggregate stops the run
        self.aggregation = aggregation  # time beyond aggregation_s: linear in updates, or measured
        self.aggregation_extras: list[float] = []  # that time, per aggregation (a snapshot keeps the measured ones)
        self.stop_reason = "max_rounds"
        self.number, self.best, self.stale = 1, math.inf, 0
        self.current: Round | None = None
        self.up, self.restarting = True, False
        self.repaired: simpy.Event | None = None  # the next repair, made when the restart waits for it
        self.last_heartbeat = dict.fromkeys(range(len(clients)), 0.0)
        self.suspected: dict[int, float] = {}  # client -> when the server declared it failed
        for c in clients:
            c.server = self
        self.process = env.process(self.run())
        if detection is not None:
            env.process(self.monitor())

    # --- failure clock interface -------------------------------------------------
    def fail(self) -> None:
        """The server goes down: the open round is abandoned, state since the last checkpoint is lost."""
        if not self.process.is_alive:
            return
        self.up = False
        self.recorder.event("server_failure")
        self.process.interrupt(ServerDown())

    def repair(self) -> None:
        """The server's node is back; the process restarts from its checkpoint."""
        self.up = True
        self.recorder.event("server_repair")
        self.wake_waiters()

    def heartbeat(self, cid: int, arrival: float) -> None:
        """A heartbeat from ``cid`` reaches the server at ``arrival``."""
        if self.up:
            self.last_heartbeat[cid] = max(self.last_heartbeat[cid], arrival)

    # --- processes -------------------------------------------------------------------
    def run(self):
        """Rounds until ``max_rounds`` or early stopping; a server failure rewinds to the last checkpoint."""
        while self.number <= self.stopping.max_rounds:
            try:
                if self.restarting:
                    if not self.up:
                        yield self.back_up()
                    yield self.env.timeout(self.checkpointing.restart_s)
                    self.restore()
                stop = yield from self.play_round()
                if stop:
                    return
            except simpy.Interrupt:
                self.abandon_round()
                self.restarting = True

    def play_round(self):
        """One round; returns whether training should stop."""
        number, start = self.number, self.env.now
        failures_before = self.recorder.count("failure")
        alive = [c.cid for c in self.clients if c.cid not in self.suspected] or [c.cid for c in self.clients]
        selected = self.strategy.configure_round(number, alive, rng(self.seed, "selection", number))
        drops = self.dropouts(number, selected)
        rnd = self.current = Round(self.env, number, self.strategy.configure_fit(number, self.global_flat), selected, self.recorder)
        rnd.on_dropout = lambda cid: self.dropout_reported(rnd, cid)
        self.recorder.event("round_start", round=number, value=len(selected))
        for cid, drop in zip(selected, drops):
            self.clients[cid].inbox.put(Task(rnd, dropout=bool(drop)))
        for cid in selected:
            if cid in self.suspected:
                self.handle_failure(rnd, cid)
        if self.policy.kind == "deadline":
            yield rnd.all_in | self.env.timeout(self.policy.deadline_s)
        else:
            yield rnd.all_in
        self.close(rnd)
        updates = sorted(rnd.updates, key=lambda u: (u.origin, u.client))
        if updates:
            t0 = time.perf_counter()
            merged = self.strategy.aggregate(number, self.global_flat, updates)
            if self.replay is not None and self.replay.active:  # a measured cost is not measured twice
                extra = self.replay.aggregation_extra(len(self.aggregation_extras))
            else:
                extra = self.aggregation.extra_s(len(updates), time.perf_counter() - t0)
            self.aggregation_extras.append(extra)
            yield self.env.timeout(self.aggregation_s + extra)
            if self.check_finite and not bool(torch.isfinite(merged).all()):
                raise FedsimError(f"the aggregated model of round {number} is not finite (NaN/inf); lower strategy.server_lr or strategy.lr, or set run.on_divergence=ignore")
            self.global_flat = merged
            self.recorder.event("aggregate", round=number, value=len(updates))
        if self.replay is not None and self.replay.active:
            metrics = self.replay.metrics()
        else:
            metrics = self.evaluate(self.global_flat)
            if self.evaluate_clients is not None:
                metrics.update(self.client_means(number, self.evaluate_clients(self.global_flat)))
        watched = metrics[self.stopping.monitor]
        improved = watched < self.best - self.stopping.min_delta
        self.best, self.stale = (watched, 0) if improved else (self.best, self.stale + 1)
        row = {
            "round": number,
            "time_s": self.env.now,
            "round_time_s": self.env.now - start,
            "wall_s": self.wall_clock(),
            "selected": len(selected),
            "participants": len({u.origin for u in updates}),
            "dropouts": int(drops.sum()),
            "failures": self.recorder.count("failure") - failures_before,
            "train_loss": float(np.mean([u.loss for u in updates])) if updates else float("nan"),
            **metrics,
        }
        self.recorder.rounds.append(row)
        for u in updates:
            self.recorder.clients.add(number, u.client, u.origin, u.num_samples, u.loss)
        if self.on_round is not None:
            self.on_round(row)
        self.number += 1
        if self.checkpoints:
            state = self.checkpoint_state()
            extra = sum(t.numel() * t.element_size() for t in state["strategy"].values())
            yield self.env.timeout(self.checkpointing.cost(self.model_bytes + extra))
            self.store.save("server", state)
            self.recorder.event("server_checkpoint", round=number)
        if self.stopping.patience and self.stale >= self.stopping.patience:
            self.stop_reason = "early_stopping"
            self.recorder.event("early_stop", round=number)
            return True
        if self.on_round_end is not None and self.number <= self.stopping.max_rounds:
            self.on_round_end()
        return False

    def client_means(self, number: int, rows: list[dict[str, float]]) -> dict[str, float]:
        """Record the per-client scores of round ``number``; the round's row gets their means."""
        self.recorder.client_evals.extend({"round": number, **r} for r in rows)
        return {f"client_{key}": _mean_defined([r[key] for r in rows]) for key in self.client_metrics}

    def dropouts(self, number: int, selected: list[int]) -> np.ndarray:
        """Which selected clients drop out of round ``number``.

        One uniform draw per client of the fleet, from a stream of the round alone, so a
        client's dropout depends only on (seed, round, client): every strategy and
        recovery policy sees the same dropouts, whoever it selects.
        """
        if not self.dropout:
            return np.zeros(len(selected), dtype=bool)
        u = rng(self.seed, "dropout", number).random(len(self.clients))
        return u[np.asarray(selected, dtype=np.int64)] < self.dropout

    def dropout_reported(self, rnd: Round, cid: int) -> None:
        """A client said it will not report: under redistribution its data goes to the others."""
        if self.on_failure.redistribute:
            self.redistribute(rnd, cid)

    @property
    def checkpoints(self) -> bool:
        """Whether the server checkpoints its state after every round."""
        return self.checkpointing.server and self.checkpointing.enabled

    def checkpoint_state(self) -> dict:
        """What a server checkpoint holds: the last round done, the global state, early stopping's and the strategy's state."""
        return {"round": self.number - 1, "global": self.global_flat, "best": self.best, "stale": self.stale, "strategy": self.strategy.state_dict()}

    def close(self, rnd: Round) -> None:
        """Stop accepting updates for ``rnd`` and cancel work still running for it."""
        rnd.closed = True
        rnd.on_dropout = None  # it refers back to rnd: let reference counting free the round and its updates
        for cid in sorted({k[0] for k in rnd.waiting}):
            self.clients[cid].cancel(rnd)

    def abandon_round(self) -> None:
        """The server failed mid-round: the round is lost."""
        if self.current is not None and not self.current.closed:
            self.close(self.current)

    def restore(self) -> None:
        """Reload the last server checkpoint (or start over from the initial model)."""
        try:
            payload = self.store.load("server")
        except CheckpointCorrupt as exc:
            log.warning("server: %s", exc)
            self.recorder.event("checkpoint_corrupt")
            payload = None
        if payload is None:
            self.global_flat, self.number, self.best, self.stale = self.initial, 1, math.inf, 0
            self.strategy.load_state_dict(self.initial_strategy)
        else:
            self.global_flat, self.number = payload["global"], int(payload["round"]) + 1
            self.best, self.stale = float(payload["best"]), int(payload["stale"])
            self.strategy.load_state_dict(payload["strategy"])
        self.last_heartbeat = dict.fromkeys(self.last_heartbeat, self.env.now)
        self.restarting = False
        self.recorder.event("server_restore", round=self.number)

    def monitor(self):
        """SimPy process: declare clients failed after ``timeout_s`` of silence, and alive again on a heartbeat."""
        assert self.detection is not None
        while True:
            yield self.env.timeout(self.detection.heartbeat_s)
            if not self.up:
                continue
            now = self.env.now
            for cid, last in self.last_heartbeat.items():
                if cid not in self.suspected and now - last > self.detection.timeout_s:
                    self.suspected[cid] = now
                    client = self.clients[cid]
                    latency = now - client.failed_at if not client.up else float("nan")
                    self.recorder.event("detected", client=cid, value=latency)
                    if self.current is not None and not self.current.closed:
                        self.handle_failure(self.current, cid)
                elif cid in self.suspected and last > self.suspected[cid]:
                    del self.suspected[cid]
                    self.recorder.event("rejoined", client=cid)

    def handle_failure(self, rnd: Round, cid: int) -> None:
        """Apply the aggregation policy to the work ``cid`` owes in ``rnd``."""
        for key in sorted(k for k in rnd.waiting if k[0] == cid):
            if self.on_failure.redistribute and key[0] == key[1]:
                self.redistribute(rnd, key[1])
            if self.on_failure.wait_s == 0:
                rnd.give_up(key)
            elif math.isfinite(self.on_failure.wait_s):
                self.env.process(self.give_up_later(rnd, key, self.on_failure.wait_s))
        if not any(k[0] == cid for k in rnd.wanted):
            self.clients[cid].cancel(rnd)

    def give_up_later(self, rnd: Round, key: Key, after_s: float):
        """SimPy process: stop waiting for ``key`` after ``after_s`` unless it arrived."""
        yield self.env.timeout(after_s)
        if key in rnd.waiting and not rnd.closed:
            rnd.give_up(key)
            self.clients[key[0]].cancel(rnd)

    def redistribute(self, rnd: Round, origin: int) -> None:
        """Split ``origin``'s data among the round's active clients; each trains its share."""
        helpers = [c for c in rnd.selected if c != origin and c not in self.suspected and c not in rnd.dropouts]
        if not helpers or self.split_data is None:
            return
        for i, helper in enumerate(helpers):
            data, nbytes = self.split_data(origin, len(helpers), i)
            rnd.expect((helper, origin))
            self.clients[helper].inbox.put(Task(rnd, job=Job(data=data, origin=origin, extra_bytes=nbytes)))
        self.recorder.event("redistribute", client=origin, round=rnd.number, value=len(helpers))
