"""The client process: receive the global model, train, send the update back.

Time passes only here and in the links; the training itself is one call to the
executor made when the simulated compute finishes, so work that a failure cuts
short is never computed at all. A failure is delivered as a SimPy interrupt by the
client's failure clock (see :mod:`fedsim.sim.failures`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import simpy

from fedsim.fl.strategy import Update
from fedsim.sim.compute import ComputeModel
from fedsim.sim.network import Link
from fedsim.sim.recorder import Recorder
from fedsim.seeding import torch_seed
from fedsim.train.local import TrainState, samples_in_steps

if TYPE_CHECKING:
    from fedsim.fl.executor import SequentialExecutor
    from fedsim.fl.server import Round, Server


@dataclass(frozen=True)
class Failure:
    """Interrupt cause: the client's node went down."""


@dataclass(frozen=True)
class Cancel:
    """Interrupt cause: the server closed the round this work belongs to."""


@dataclass(frozen=True)
class Task:
    """The server's request to train in a round (``dropout``: the client will not report)."""

    round: Round
    dropout: bool = False


class Client:
    """A federated client with its own links, speed and failure state."""

    def __init__(
        self,
        env: simpy.Environment,
        cid: int,
        *,
        speed: float,
        downlink: Link,
        uplink: Link,
        compute: ComputeModel,
        executor: SequentialExecutor,
        recorder: Recorder,
        seed: int,
    ) -> None:
        self.env = env
        self.cid = cid
        self.speed = speed
        self.downlink = downlink
        self.uplink = uplink
        self.compute = compute
        self.executor = executor
        self.recorder = recorder
        self.seed = seed
        self.server: Server | None = None
        self.inbox: simpy.Store = simpy.Store(env)
        self.up = True
        self.repaired = env.event()
        self.working_on: Round | None = None
        self.process = env.process(self.run())

    # --- failure clock interface -------------------------------------------------
    def fail(self) -> None:
        """Go down now; any work in progress is lost."""
        self.up = False
        self.repaired = self.env.event()
        self.recorder.event("failure", client=self.cid)
        if self.working_on is not None:
            self.process.interrupt(Failure())

    def repair(self) -> None:
        """Come back up; a pending task restarts from the latest global model."""
        self.up = True
        self.recorder.event("repair", client=self.cid)
        self.repaired.succeed()

    def cancel(self, rnd: Round) -> None:
        """Abandon work for ``rnd`` (the server closed it without this client)."""
        if self.working_on is rnd:
            self.process.interrupt(Cancel())

    # --- the process ---------------------------------------------------------------
    def run(self):
        """Serve tasks forever: one attempt per task, retried after each failure."""
        while True:
            task: Task = yield self.inbox.get()
            if task.dropout:
                self.recorder.event("dropout", client=self.cid, round=task.round.number)
                yield from self.uplink.send(0)
                task.round.dropped(self.cid)
                continue
            while not task.round.closed:
                if not self.up:
                    yield self.repaired
                    continue
                self.working_on = task.round
                try:
                    yield from self.attempt(task.round)
                    break
                except simpy.Interrupt as stop:
                    kind = "work_lost" if isinstance(stop.cause, Failure) else "cancelled"
                    self.recorder.event(kind, client=self.cid, round=task.round.number)
                finally:
                    self.working_on = None

    def attempt(self, rnd: Round):
        """Download, train, upload; raises Interrupt if a failure or cancel cuts it short."""
        layout = self.executor.layout
        self.recorder.event("broadcast", client=self.cid, round=rnd.number)
        yield from self.downlink.send(layout.nbytes())
        stop_step = self.executor.round_steps(self.cid)
        samples = samples_in_steps(self.executor.num_samples(self.cid), self.executor.spec.batch_size, 0, stop_step)
        busy = self.compute.duration(samples, self.speed)
        self.recorder.event("train_start", client=self.cid, round=rnd.number, value=busy)
        yield self.env.timeout(busy)
        result = self.executor.train(
            self.cid,
            TrainState(flat=rnd.global_flat),
            seed=torch_seed(self.seed, "train", rnd.number, self.cid),
            stop_step=stop_step,
        )
        self.recorder.event("upload", client=self.cid, round=rnd.number)
        yield from self.uplink.send(layout.nbytes())
        n = self.executor.num_samples(self.cid)
        rnd.receive(Update(client=self.cid, round=rnd.number, flat=result.state.flat, num_samples=n, loss=result.loss))
