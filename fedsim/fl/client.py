"""The client process: receive the global model, train, checkpoint, send the update back.

Time passes only here and in the links. This module is the client's lifecycle: its
state, its failures and repairs, and the loop that serves one task at a time; the work
of one attempt is :mod:`fedsim.fl.attempt`. Failures arrive as SimPy interrupts from
the client's (or its links') failure clock, carrying a cause object.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import simpy

from fedsim.checkpoint.store import MemoryStore
from fedsim.fl.attempt import Attempts, Park, Parked
from fedsim.fl.client_shared import ClientShared
from fedsim.fl.closed_form import Cursor, RunOver
from fedsim.fl.interrupts import CANCELLED, FAILED, FAILS_AHEAD, LINK_DOWN, Failure
from fedsim.fl.messages import Job
from fedsim.fl.recovery import Checkpointing, ReinitGlobal, RestoreCheckpoint
from fedsim.fl.round import Round, Task
from fedsim.sim.compute import ComputeModel
from fedsim.sim.events import Burst, Process, call_at
from fedsim.sim.failures import Repairable
from fedsim.sim.inbox import Inbox
from fedsim.sim.ledger import Ledger, lapse_all
from fedsim.sim.network import Link
from fedsim.sim.recorder import Recorder

if TYPE_CHECKING:
    from fedsim.fl.executor import SequentialExecutor


class Coordinator(Protocol):
    """What a client needs of the server beyond the round it serves: somewhere to send heartbeats."""

    def heartbeat(self, cid: int, arrival: float) -> None: ...


class Client(Attempts, Repairable):
    """A federated client with its links, speed, failure state and time ledger.

    Slotted, with its inbox, links and ledger slotted too, and events made only when
    needed (``repaired`` once a task waits for a repair, its process while it has a task
    and its attempt is not parked): a million of them fit in a few GiB.
    """

    __slots__ = (
        "env", "cid", "speed", "downlink", "uplink", "compute", "executor", "recorder", "seed", "recovery", "checkpointing",
        "store", "checkpoint_bytes", "server", "inbox", "ledger", "up", "next_failure_s", "failed_at", "repaired",
        "working_on", "sending_on", "_interrupted", "process", "shared", "on_divergence", "cursor", "unsaved", "parked",
    )  # fmt: skip

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
        recovery: ReinitGlobal | RestoreCheckpoint = ReinitGlobal(),
        checkpointing: Checkpointing = Checkpointing(),
        store: MemoryStore | None = None,
        checkpoint_bytes: int = 0,
        on_divergence: str = "stop",
        shared: ClientShared | None = None,
    ) -> None:
        self.env = env
        self.cid = cid
        self.speed = speed
        self.downlink, self.uplink = downlink, uplink  # shared by the fleet when they cannot fail and have one rate
        self.compute = compute
        self.executor = executor
        self.recorder = recorder
        self.seed = seed
        self.recovery = recovery
        self.checkpointing = checkpointing
        self.store = store if store is not None else MemoryStore()
        self.checkpoint_bytes = checkpoint_bytes
        self.on_divergence = on_divergence  # stop | skip_client | ignore
        self.shared = shared if shared is not None else ClientShared(executor, compute)
        self.server: Coordinator | None = None
        self.inbox = Inbox(env)
        self.ledger = Ledger()
        self.up = True
        self.next_failure_s = math.inf  # virtual time of the next failure already drawn (set by simulate)
        self.failed_at = math.nan  # one shared float, not one per client
        self.repaired: simpy.Event | None = None  # the next repair, made when a task waits for it
        self.working_on: Round | None = None
        self.sending_on: Link | None = None
        self._interrupted = False
        self.cursor: Cursor | None = None  # the clock of an attempt's waits after the download, in closed form
        self.unsaved: tuple[str, dict] | None = None  # the last checkpoint, saved when it could be read (pure executor)
        self.process: Process | None = None  # while it has a task and no parked attempt (give, wake)
        self.parked: Parked | None = None  # an attempt waiting for one event without a process (Attempts.park)

    # --- failure clocks and the server call these ----------------------------------
    def fail(self, at: float | None = None) -> None:
        """Go down now (or at the past instant ``at``, played late by a sleeping clock); work since the last usable
        checkpoint is lost."""
        t = self.env.now if at is None else at
        self.up = False
        self.failed_at = t
        self.ledger.enter("recovery", t)
        self.ledger.failures += 1
        self.recorder.event("failure", client=self.cid, at=t)
        self._interrupt(FAILED)

    def repair(self, at: float | None = None) -> None:
        """Come back up (now, or at the past instant ``at``); a pending task resumes under the recovery policy."""
        t = self.env.now if at is None else at
        self.up = True
        self.ledger.enter("waiting", t)
        self.recorder.event("repair", client=self.cid, at=t)
        self.wake_waiters()

    @property
    def idle(self) -> bool:
        """Whether a failure now would interrupt nothing and no task waits for a repair."""
        return self.working_on is None and self.repaired is None

    def lapse(self, times: list[float], failing: bool, logged: bool = False) -> None:
        """Failures and repairs at the past instants ``times`` (alternating, the first a failure iff ``failing``) while
        idle: what :meth:`fail` and :meth:`repair` in turn would do, in one go (a sleeping clock catching up; ``logged``:
        the fleet's clocks logged the rows, for many clients at once)."""
        self.ledger.lapse(times, failing)
        fails = (len(times) + failing) // 2
        self.ledger.failures += fails
        if fails:
            self.failed_at = times[-1] if len(times) % 2 == failing else times[-2]
        self.up = (len(times) % 2 == 0) == failing  # up iff the last transition was a repair
        if not logged:
            self.recorder.alternating(("failure", "repair") if failing else ("repair", "failure"), times, client=self.cid)

    def failure_drawn(self, ttfs: Sequence[float], fails_at: float) -> None:
        """The failure clock drew this client's next lifetimes ``ttfs``: the last fails at ``fails_at`` (draws are ahead
        of time)."""
        self.next_failure_s = fails_at
        self.shared.lifetimes.extend(ttfs)

    def fail_ahead(self) -> float:
        """Work played ahead met this client's next failure (:data:`~fedsim.fl.interrupts.FAILS_AHEAD`): the failure
        clock takes that step now, which fails the client at the step's own instant; returns that instant."""
        self._interrupted = True  # the work it cuts has stopped already: nothing to interrupt
        return self.shared.sleepers.play_next(self.cid)  # type: ignore[union-attr]

    def cancel(self, rnd: Round) -> None:
        """Abandon work for ``rnd`` (the server closed it, or gave up on this client)."""
        if self.working_on is rnd:
            self._interrupt(CANCELLED)

    def finish(self) -> None:
        """The run is over: work waiting for its one event (closed form) plays the waits that ended by now, and the
        last checkpoint is saved."""
        if self.cursor is not None:
            if self.parked is not None:
                self.wake()  # its process waits for the work's one event, and takes the run's end there
            try:
                self.process._generator.throw(RunOver())  # type: ignore[attr-defined]  # SimPy steps no more
            except RunOver:
                pass
        self.save()

    def heartbeats(self, period_s: float):
        """SimPy process: tell the server we are alive every ``period_s`` while node and uplink are up."""
        while True:
            yield self.env.timeout(period_s)
            if self.up and self.uplink.up and self.server is not None:
                self.server.heartbeat(self.cid, self.env.now + self.uplink.latency_s)

    def link_failed(self, link: Link) -> None:
        """One of this client's links went down: a message in flight on it is lost."""
        if self.sending_on is link:
            self._interrupt(LINK_DOWN)

    def link_event(self, kind: str) -> None:
        """Log a failure or repair of one of this client's links."""
        self.recorder.event(kind, client=self.cid)

    def _interrupt(self, cause: object) -> None:
        if self.working_on is not None and not self._interrupted:
            self._interrupted = True
            if self.parked is not None:
                self.wake()  # its process waits where the attempt parked, and takes the interrupt there
            self.process.interrupt(cause)

    # --- the process ---------------------------------------------------------------
    def give(self, task: Task, starts: Burst | None = None) -> None:
        """Queue ``task``; the first one starts this client's process, so a client never given one holds none (nor
        one whose attempt is parked: the process that goes on with it takes the task after). ``starts``: the start
        is one of a burst the server hands out at once."""
        self.inbox.put(task)
        if self.process is None and self.parked is None and len(self.inbox.items) == 1:  # else one is started, or will be
            if starts is None:
                call_at(self.env, self.env.now, self.start)
            else:
                starts.add(self.start)

    def start(self, _: object = None) -> None:
        """Start the process, at the instant of the task that starts it, after the events already queued for it: where
        a process waiting for the task would resume. Made only now, so a round's tasks handed out hold none. Within a
        burst of starts, a clean first attempt is finished with the others' (:mod:`fedsim.fl.cohort`)."""
        cohort = self.shared.cohort
        if cohort is not None and cohort.open and cohort.takes(self):
            return
        self.process = Process(self.env, self.run())  # held before it runs: it may end at once
        self.process.run_now()

    def run(self, parked: Parked | None = None):
        """Serve tasks forever, one at a time, in arrival order, from the one whose arrival started the process, or
        from ``parked`` work (its event, or a cancel, started the process: :meth:`wake`). A task's attempt that parks
        ends the process."""
        task: Task | None = self.inbox.take() if parked is None else None  # type: ignore[assignment]
        while True:
            if task is not None and self.shared.sleepers is not None:  # failures due while idle are played now
                self.shared.sleepers.catch_up(self.cid, self.env.now)
            if task is not None and (task.dropout or task.straggler):
                value = float(task.job.epochs) if task.straggler and task.job is not None and task.job.epochs else float("nan")
                self.recorder.event("dropout" if task.dropout else "straggler", client=self.cid, round=task.round.number, value=value)
                yield from self.uplink.send(0)
                task.round.dropped(self.cid)
            else:
                try:
                    if task is None:
                        yield from self.serve(parked.rnd, parked.job, parked)  # type: ignore[union-attr]
                    else:
                        yield from self.serve(task.round, task.job or Job(data=self.cid, origin=self.cid))
                except Park:
                    self.process = None  # the parked attempt's event starts the process that goes on with it
                    return
                self.save()
            parked = None  # not held while the process waits
            if not self.inbox.items:  # nothing queued: the process ends, and the next task starts one (give)
                self.process = None
                return
            task = yield self.inbox.get()

    def serve(self, rnd: Round, job: Job, parked: Parked | None = None):
        """Attempt ``job`` until it is delivered or the server stops wanting it (``parked``: go on with that attempt)."""
        key, resume = (self.cid, job.origin), parked is not None and parked.resume
        while parked is not None or rnd.wants(key):
            if not self.up:
                self.watch()
                yield self.back_up()
                resume = True
                continue
            self.working_on = rnd
            try:
                delivered = yield from self.attempt(rnd, job, resume, parked)
                if delivered:
                    return
            except simpy.Interrupt as stop:
                now = self.fail_ahead() if stop.cause is FAILS_AHEAD else self.env.now
                self._interrupted = False
                keep = isinstance(stop.cause, Failure) and self.recovery.uses_checkpoints
                self.ledger.enter("recovery" if not self.up else "waiting", now)
                self.ledger.lose(keep_banked=keep)
                kind = "work_lost" if isinstance(stop.cause, Failure) else "cancelled"
                self.recorder.event(kind, client=self.cid, round=rnd.number, at=now)
            finally:
                parked = None
                if self.parked is None:  # a parked attempt keeps its round and its cursor
                    self.working_on = self.cursor = None
        self.ledger.lose(keep_banked=False)


class IdleClients:
    """A fleet's clients as their sleeping failure clocks see them (:class:`~fedsim.sim.sleeping_clocks.Targets`):
    many idle clients' lifetimes and transitions taken at once, what :meth:`Client.failure_drawn` and
    :meth:`Client.lapse` (logged) would do for each, with the ledgers' sums made as columns."""

    __slots__ = ("clients", "lifetimes")

    def __init__(self, clients: Sequence[Client], lifetimes: array) -> None:
        self.clients, self.lifetimes = clients, lifetimes  # the clients' shared record of every lifetime drawn

    def drawn(self, ids: np.ndarray, lifetimes: np.ndarray, ends: np.ndarray) -> None:
        """Client ``ids[i]`` drew ``lifetimes[i]``, failing at ``ends[i]`` (rows by client, each client's in order)."""
        self.lifetimes.frombytes(np.asarray(lifetimes, dtype=np.float64).tobytes())
        last = np.flatnonzero(np.append(ids[1:] != ids[:-1], True)) if len(ids) else ids
        clients = self.clients
        for cid, fails_at in zip(ids[last].tolist(), ends[last].tolist()):
            clients[cid].next_failure_s = fails_at

    def lapse(self, ids: np.ndarray, times: np.ndarray, failed: np.ndarray) -> None:
        """Idle client ``ids[i]`` failed (``failed[i]``) or was repaired at ``times[i]``, logged already (rows by
        client, each client's in order)."""
        if not len(ids):
            return
        starts = np.flatnonzero(np.append(True, ids[1:] != ids[:-1]))
        last = np.append(starts[1:], len(ids)) - 1
        clients = [self.clients[cid] for cid in ids[starts].tolist()]
        lapse_all([client.ledger for client in clients], times, failed, starts)
        fails = np.add.reduceat(failed.astype(np.int64), starts)
        failed_at = np.where(failed[last], times[last], times[last - 1])  # rows alternate; read only where it failed
        for client, n, at, down in zip(clients, fails.tolist(), failed_at.tolist(), failed[last].tolist()):
            client.ledger.failures += n
            if n:
                client.failed_at = at
            client.up = not down
