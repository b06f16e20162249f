"""The server node: its state, its failure clock, its checkpoints, and the protocol it runs.

What the server does round after round is its protocol's, which the engine picks and hands
in: :class:`~fedsim.fl.sync.SyncRounds` (select → broadcast → wait → aggregate → evaluate)
or :class:`~fedsim.fl.asynchronous.AsyncVersions` (keep clients busy, fold updates in as
they arrive, a row per model version). Both use the same parts: an
:class:`~fedsim.fl.aggregator.Aggregator`, a :class:`~fedsim.fl.monitor.Monitor`, an optional
:class:`~fedsim.fl.detector.FailureDetector`. The server has its own failure clock: a failure
abandons the protocol's open work and the server restarts from its last checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import simpy
import torch

from fedsim.checkpoint.store import CheckpointCorrupt, MemoryStore
from fedsim.fl.aggregation_cost import AggregationCost
from fedsim.fl.aggregator import Aggregator
from fedsim.fl.client import Client
from fedsim.fl.detector import FailureDetector
from fedsim.fl.monitor import Evaluation, Monitor, Record, Stopping
from fedsim.fl.recovery import Checkpointing, Detection, Drop, Redistribute, Wait
from fedsim.fl.replay import Replay
from fedsim.fl.strategies import Strategy
from fedsim.sim.failures import Repairable
from fedsim.sim.recorder import Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundPolicy:
    """When a synchronous round stops waiting (``wait_all`` reporters, or a ``deadline`` in virtual seconds)
    and what becomes of stragglers: ``drop`` (late work is refused; FedProx's stragglers do not report) or
    ``partial`` (they send the local steps that fit, as FedProx lets them)."""

    kind: str = "wait_all"
    deadline_s: float = math.inf
    stragglers: str = "drop"  # drop | partial


@dataclass(frozen=True)
class Rules:
    """What the server does, as configured."""

    seed: int  # selection, dropout and straggler draws come from per-round streams of it
    policy: RoundPolicy = RoundPolicy()
    stopping: Stopping = Stopping()
    dropout: float = 0.0  # probability a selected client never reports
    straggler_share: float = 0.0  # share of selected clients that do fewer local epochs (FedProx's systems heterogeneity)
    aggregation_s: float = 0.0
    aggregation: AggregationCost = AggregationCost()  # time beyond aggregation_s
    check_finite: bool = False  # a NaN/inf aggregate stops the run
    detection: Detection | None = None
    on_failure: Wait | Redistribute | Drop = Wait()
    checkpointing: Checkpointing = Checkpointing()
    model_bytes: int = 0  # of the global state, for the server checkpoint's write time
    server_fails: bool = False  # the server has a failure clock: a failure abandons the open rounds


@dataclass(frozen=True)
class Hooks:
    """Calls into the rest of the run: progress per row, snapshots at round ends, the executor's data splitting."""

    on_round: Callable[[dict[str, object]], None] | None = None
    on_round_end: Callable[[], None] | None = None  # after every round that does not end the run
    split_data: Callable[[int, int, int], tuple[int, int]] | None = None  # (origin, parts, index) -> (dataset id, bytes)


@dataclass
class ServerState:
    """What a server checkpoint keeps: the global model, the next round (or version) number, early stopping's record."""

    global_flat: torch.Tensor
    number: int = 1
    record: Record = field(default_factory=Record)


class Play(Protocol):
    """What the server needs of its protocol (:class:`~fedsim.fl.protocol.ServerProtocol`)."""

    def play(self): ...  # generator: the rounds (or versions) until the run ends

    def abandon(self) -> None: ...

    def on_detected(self, cid: int) -> None: ...


@dataclass(frozen=True)
class ServerDown:
    """Interrupt cause: the server's node went down."""


class Server(Repairable):
    """The server node; its protocol plays the rounds (or versions)."""

    def __init__(
        self,
        env: simpy.Environment,
        clients: Sequence[Client],
        *,
        strategy: Strategy,
        initial: torch.Tensor,
        recorder: Recorder,
        rules: Rules,
        evaluation: Evaluation,
        store: MemoryStore | None = None,
        replay: Replay | None = None,
        hooks: Hooks = Hooks(),
        protocol: Callable[[Server], Play],
    ) -> None:
        self.env, self.clients, self.strategy, self.recorder = env, clients, strategy, recorder
        self.rules, self.hooks, self.replay = rules, hooks, replay
        self.store = store if store is not None else MemoryStore()
        self.initial, self.initial_strategy = initial, strategy.state_dict()  # what a restart without a checkpoint goes back to
        self.state = ServerState(initial)
        self.aggregator = Aggregator(env, rules.aggregation_s, rules.aggregation, check_finite=rules.check_finite, replay=replay)
        self.monitor = Monitor(evaluation, rules.stopping, recorder, self.state.record, replay=replay, on_round=hooks.on_round)
        self.stop_reason = "max_rounds"
        self.up, self.restarting = True, False
        self.repaired: simpy.Event | None = None  # the next repair, made when the restart waits for it
        for c in clients:
            c.server = self
        self.cohort = clients[0].shared.cohort if clients else None  # what a burst of the clients' starts runs within
        self.protocol = protocol(self)
        self.process = env.process(self.run())
        self.detector = None if rules.detection is None else FailureDetector(env, clients, rules.detection, recorder, lambda: self.up, self.protocol.on_detected)

    # --- what the protocols read ---------------------------------------------------------
    @property
    def suspected(self) -> dict[int, float]:
        """Clients the detector holds failed (client -> since when); empty without detection."""
        return self.detector.suspected if self.detector is not None else {}

    @property
    def global_flat(self) -> torch.Tensor:
        """The current global model."""
        return self.state.global_flat

    # --- failure clock and heartbeat interface ---------------------------------------------
    def fail(self) -> None:
        """The server goes down: the open work is abandoned, state since the last checkpoint is lost."""
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
        if self.detector is not None:
            self.detector.heartbeat(cid, arrival)

    # --- the process --------------------------------------------------------------------
    def run(self):
        """Play the protocol to its end; a server failure rewinds to the last checkpoint."""
        while True:
            try:
                if self.restarting:
                    if not self.up:
                        yield self.back_up()
                    yield self.env.timeout(self.rules.checkpointing.restart_s)
                    self.restore()
                yield from self.protocol.play()
                return
            except simpy.Interrupt:
                self.protocol.abandon()
                self.restarting = True

    def finish_round(self, number: int):
        """After model ``number`` is scored: checkpoint it, and say whether the run ends here (early stopping or the last round)."""
        self.state.number = number + 1
        if self.checkpoints:
            state = self.checkpoint_state()
            extra = sum(t.numel() * t.element_size() for t in state["strategy"].values())
            yield self.env.timeout(self.rules.checkpointing.cost(self.rules.model_bytes + extra))
            self.store.save("server", state)
            self.recorder.event("server_checkpoint", round=number)
        if self.monitor.exhausted:
            self.stop_reason = "early_stopping"
            self.recorder.event("early_stop", round=number)
            return True
        if self.state.number > self.rules.stopping.max_rounds:
            return True
        if self.hooks.on_round_end is not None:
            self.hooks.on_round_end()
        return False

    # --- checkpoints -------------------------------------------------------------------
    @property
    def checkpoints(self) -> bool:
        """Whether the server checkpoints its state after every round."""
        return self.rules.checkpointing.server and self.rules.checkpointing.enabled

    def checkpoint_state(self) -> dict:
        """What a server checkpoint holds: the last round done, the global state, early stopping's and the strategy's state."""
        s = self.state
        return {"round": s.number - 1, "global": s.global_flat, "best": s.record.best, "stale": s.record.stale, "strategy": self.strategy.state_dict()}

    def restore(self) -> None:
        """Reload the last server checkpoint (or start over from the initial model)."""
        try:
            payload = self.store.load("server")
        except CheckpointCorrupt as exc:
            log.warning("server: %s", exc)
            self.recorder.event("checkpoint_corrupt")
            payload = None
        s = self.state
        if payload is None:
            s.global_flat, s.number, s.record.best, s.record.stale = self.initial, 1, math.inf, 0
            self.strategy.load_state_dict(self.initial_strategy)
        else:
            s.global_flat, s.number = payload["global"], int(payload["round"]) + 1
            s.record.best, s.record.stale = float(payload["best"]), int(payload["stale"])
            self.strategy.load_state_dict(payload["strategy"])
        if self.detector is not None:
            self.detector.forget_silence()
        self.restarting = False
        self.recorder.event("server_restore", round=s.number)
