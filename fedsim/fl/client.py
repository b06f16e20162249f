"""The client process: receive the global model, train, checkpoint, send the update back.

Time passes only here and in the links. The real training is a call to the
executor made when a simulated compute segment finishes, so work that a failure
cuts short is never computed at all. Failures arrive as SimPy interrupts from the
client's (or its links') failure clock, carrying a cause object.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Protocol

import numpy as np
import simpy
import torch

from fedsim.checkpoint.store import CheckpointCorrupt, MemoryStore
from fedsim.errors import FedsimError
from fedsim.fl.client_shared import ClientShared
from fedsim.fl.closed_form import Cursor, RunOver, segment_ends
from fedsim.fl.interrupts import CANCELLED, FAILED, LINK_DOWN, Failure, LinkDown
from fedsim.fl.messages import META_STEP, Job, Update
from fedsim.fl.recovery import Checkpointing, ReinitGlobal, RestoreCheckpoint, checkpoint_steps, steps_by
from fedsim.fl.round import Round, Task
from fedsim.seeding import torch_seed
from fedsim.sim.compute import ComputeModel
from fedsim.sim.failures import Repairable
from fedsim.sim.inbox import Inbox
from fedsim.sim.ledger import Ledger
from fedsim.sim.network import Link
from fedsim.sim.recorder import Recorder
from fedsim.sim.sleeping_clocks import event_at
from fedsim.train.local import TrainState

if TYPE_CHECKING:
    from fedsim.fl.executor import SequentialExecutor

log = logging.getLogger(__name__)


class Coordinator(Protocol):
    """What a client needs of the server beyond the round it serves: somewhere to send heartbeats."""

    def heartbeat(self, cid: int, arrival: float) -> None: ...


class Client(Repairable):
    """A federated client with its own links, speed, failure state and time ledger.

    Slotted, with its inbox, links and ledger slotted too, and events made only when
    needed (``repaired`` once a task waits for a repair): a million of them fit in a few GiB.
    """

    __slots__ = (
        "env", "cid", "speed", "downlink", "uplink", "compute", "executor", "recorder", "seed", "recovery", "checkpointing",
        "store", "checkpoint_bytes", "server", "inbox", "ledger", "up", "next_failure_s", "failed_at", "repaired",
        "working_on", "sending_on", "_interrupted", "process", "shared", "on_divergence", "cursor",
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
        self.downlink, self.uplink = downlink, uplink
        downlink.owner = uplink.owner = self
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
        self.failed_at = float("nan")
        self.repaired: simpy.Event | None = None  # the next repair, made when a task waits for it
        self.working_on: Round | None = None
        self.sending_on: Link | None = None
        self._interrupted = False
        self.cursor: Cursor | None = None  # the clock of work played after the fact (closed form), while it plays
        self.process = env.process(self.run())

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

    def lapse(self, times: list[float], failing: bool) -> None:
        """Failures and repairs at the past instants ``times`` (alternating, the first a failure iff ``failing``) while
        idle: what :meth:`fail` and :meth:`repair` in turn would do, in one go (a sleeping clock catching up)."""
        self.ledger.lapse(times, failing)
        fails = (len(times) + failing) // 2
        self.ledger.failures += fails
        if fails:
            self.failed_at = times[-1] if len(times) % 2 == failing else times[-2]
        self.up = (len(times) % 2 == 0) == failing  # up iff the last transition was a repair
        self.recorder.alternating(("failure", "repair") if failing else ("repair", "failure"), times, client=self.cid)

    def failure_drawn(self, ttf: float, fails_at: float) -> None:
        """The failure clock drew this client's next lifetime ``ttf``: it fails at ``fails_at`` (draws are ahead of time)."""
        self.next_failure_s = fails_at
        self.shared.lifetimes.append(ttf)

    def cancel(self, rnd: Round) -> None:
        """Abandon work for ``rnd`` (the server closed it, or gave up on this client)."""
        if self.working_on is rnd:
            self._interrupt(CANCELLED)

    def finish(self) -> None:
        """The run is over: work waiting for its one event (closed form) plays the waits that ended by now."""
        if self.cursor is not None:
            try:
                self.process._generator.throw(RunOver())  # type: ignore[attr-defined]  # SimPy steps no more
            except RunOver:
                pass

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
            self.process.interrupt(cause)

    # --- the process ---------------------------------------------------------------
    def run(self):
        """Serve tasks forever, one at a time, in arrival order."""
        while True:
            task: Task = yield self.inbox.get()
            if self.shared.sleepers is not None:  # failures due while idle are played now, before the task looks at them
                self.shared.sleepers.catch_up(self.cid, self.env.now)
            if task.dropout or task.straggler:
                value = float(task.job.epochs) if task.straggler and task.job is not None and task.job.epochs else float("nan")
                self.recorder.event("dropout" if task.dropout else "straggler", client=self.cid, round=task.round.number, value=value)
                yield from self.uplink.send(0)
                task.round.dropped(self.cid)
            else:
                yield from self.serve(task.round, task.job or Job(data=self.cid, origin=self.cid))

    def serve(self, rnd: Round, job: Job):
        """Attempt ``job`` until it is delivered or the server stops wanting it."""
        key, resume = (self.cid, job.origin), False
        while rnd.wants(key):
            if not self.up:
                self.watch()
                yield self.back_up()
                resume = True
                continue
            self.working_on = rnd
            try:
                delivered = yield from self.attempt(rnd, job, resume)
                if delivered:
                    return
            except simpy.Interrupt as stop:
                self._interrupted = False
                keep = isinstance(stop.cause, Failure) and self.recovery.uses_checkpoints
                self.ledger.enter("recovery" if not self.up else "waiting", self.env.now)
                self.ledger.lose(keep_banked=keep)
                kind = "work_lost" if isinstance(stop.cause, Failure) else "cancelled"
                self.recorder.event(kind, client=self.cid, round=rnd.number)
            finally:
                self.working_on = None
        self.ledger.lose(keep_banked=False)

    def attempt(self, rnd: Round, job: Job, resume: bool):
        """Restore or download, then :meth:`work`; returns whether the update was accepted, raises Interrupt when cut.

        After the download, work that nothing but a cancel can cut waits for one event at
        its end (:mod:`fedsim.fl.closed_form`)."""
        state = (yield from self.restore(rnd, job)) if resume else None
        if state is None:
            self.ledger.enter("work", self.env.now)
            self.recorder.event("broadcast", client=self.cid, round=rnd.number)
            yield from self.send(self.downlink, self.shared.model_bytes + job.extra_bytes + rnd.fit.extra_bytes)
            state = TrainState(flat=rnd.fit.flat)
            end = self.chain_end(rnd, job)
            if end is not None:
                return (yield from self.at_once(end, rnd, job, state))
        return (yield from self.work(rnd, job, state))

    def chain_end(self, rnd: Round, job: Job) -> float | None:
        """When the training and upload of a fresh attempt starting now end, if only a cancel can cut them; else None."""
        shared = self.shared
        if not shared.closed_form or rnd.partial or rnd.fit.personalize is not None or not self.uplink.constant:
            return None
        clock = shared.sleepers.clocks[self.cid]  # type: ignore[union-attr]
        step_s = self.step_seconds(job.data, job.epochs)
        if clock is None or not len(step_s):
            return None
        stops = [*checkpoint_steps(step_s, self.checkpointing), len(step_s)]
        end = segment_ends(self.env.now, step_s, stops, 0, self.checkpointing.cost(self.checkpoint_bytes))[-1]
        end += self.uplink.transfer_time(shared.model_bytes)
        return end if clock.when > end else None

    def at_once(self, end: float, rnd: Round, job: Job, state: TrainState):
        """:meth:`work` with one event, at ``end``, for all its waits: it runs up to its first wait now, the rest then
        on a cursor (or up to the wait a cancel cut, if one came first)."""
        cursor = self.cursor = Cursor(self.env.now, event_at(self.env, end))
        try:
            accepted = yield from self.work(rnd, job, state)
            assert cursor.now == end, "the closed form and the work it stands for disagree on when it ends"
            return accepted
        finally:
            self.cursor = None
            if cursor.checkpoint is not None:
                self.store.save(*cursor.checkpoint)

    def work(self, rnd: Round, job: Job, state: TrainState):
        """Train segment by segment with checkpoints, then upload; returns whether the update was accepted.

        Each wait is :meth:`wait`, which says when it ended: on SimPy's clock, or on the
        cursor of work played after the fact, so every row and account takes that instant.
        """
        key = (self.cid, job.origin)
        nbytes = self.shared.model_bytes
        t = self.env.now
        step_s = self.step_seconds(job.data, job.epochs)
        if rnd.partial:  # the steps that fit before the deadline, with the upload at the uplink's own rate
            total = steps_by(rnd.deadline, step_s, self.checkpointing, self.checkpointing.cost(self.checkpoint_bytes),
                             start=state.step, now=t, upload_s=self.uplink.transfer_time(nbytes))  # fmt: skip
        else:
            total = len(step_s)
        if total <= state.step:  # not one step fits before the deadline: nothing worth sending
            rnd.give_up(key)
            self.recorder.event("no_time", client=self.cid, round=rnd.number)
            return False
        step_s = step_s[:total]
        seed = self.train_seed(rnd, job.origin)
        losses = []
        stops = [*checkpoint_steps(step_s, self.checkpointing, start=state.step), total]
        self.plan(rnd, job.data, state, seed, stops, step_s, t)
        for stop in stops:
            self.ledger.enter("work", t)
            busy = float(step_s[state.step : stop].sum())
            self.recorder.event("train_start", client=self.cid, round=rnd.number, value=busy, at=t)
            t = yield from self.wait(busy)
            result = self.executor.train(job.data, state, seed=seed, stop_step=stop, fit=rnd.fit)
            if result.diverged_step is not None and self.diverged(rnd, job, seed, result.diverged_step):
                return False
            state = result.state
            losses.append((result.loss, result.samples))
            if stop < total:
                self.ledger.enter("checkpoint", t)
                t = yield from self.wait(self.checkpointing.cost(self.checkpoint_bytes))
                payload = {"round": rnd.number, "repeat": rnd.repeat, "step": state.step, "flat": state.flat, "optimizer": state.optimizer}
                if self.cursor is None:
                    self.store.save(self.checkpoint_key(key), payload)
                else:  # closed form: each overwrites the one before, which nothing read
                    self.cursor.checkpoint = (self.checkpoint_key(key), payload)
                self.ledger.checkpointed()
                self.recorder.event("checkpoint", client=self.cid, round=rnd.number, value=state.step, at=t)
        self.ledger.enter("work", t)
        extras = {}
        if rnd.fit.personalize is not None:  # FedL2P: the meta step after local training
            busy = self.meta_seconds(job.data, rnd)
            self.recorder.event("meta_step", client=self.cid, round=rnd.number, value=busy, at=t)
            t = yield from self.wait(busy)
            extras = self.executor.meta_gradient(job.data, rnd.fit, seed=seed)
            if not bool(torch.isfinite(extras["meta_grad"]).all()) and self.diverged(rnd, job, seed, META_STEP):
                return False
        loss = sum(l * n for l, n in losses) / max(sum(n for _, n in losses), 1)
        samples = self.executor.num_samples(job.data)
        update = Update(client=self.cid, round=rnd.number, flat=state.flat, num_samples=samples, loss=loss, origin=job.origin, extras=extras, version=rnd.version)
        self.recorder.event("upload", client=self.cid, round=rnd.number, at=t)
        t = yield from self.wait(0.0, self.uplink, nbytes + update.extra_bytes)
        accepted = rnd.receive(update)
        self.ledger.enter("waiting", t)
        if accepted:
            self.ledger.succeed()
        else:
            self.ledger.lose(keep_banked=False)
        return accepted

    def wait(self, seconds: float, link: Link | None = None, nbytes: int = 0):
        """Hold for ``seconds``, or send ``nbytes`` on ``link``; returns the instant the wait ended."""
        cursor = self.cursor
        if cursor is not None:  # closed form: one event for every wait, then each ends where its timeout would have
            if cursor.pending is not None:
                try:
                    yield cursor.take()
                except (simpy.Interrupt, RunOver) as stop:
                    cursor.cut(self.env.now, stop)
            return cursor.advance(seconds if link is None else link.transfer_time(nbytes))  # a constant link that cannot fail
        if link is None:
            yield self.hold(seconds)
        else:
            yield from self.send(link, nbytes)
        return self.env.now

    def plan(self, rnd: Round, data: int, state: TrainState, seed: int, stops: list[int], step_s: np.ndarray, t: float) -> None:
        """Tell a planning executor which segments this attempt, starting at ``t``, will ask for.

        Segments whose compute ends after the failure already drawn for this client
        (``next_failure_s``) will never be asked for: ``useful_stop`` is the last step
        that will, and a batched executor trains no further.
        """
        plan = getattr(self.executor, "plan", None)
        if plan is None:
            return
        ends = segment_ends(t, step_s, stops, state.step, self.checkpointing.cost(self.checkpoint_bytes))
        reached = [stop for stop, end in zip(stops, ends) if end <= self.next_failure_s]
        plan(data, state, seed=seed, stop_step=stops[-1], snapshots=stops[:-1], useful_stop=reached[-1] if reached else state.step, fit=rnd.fit)
        plan_meta = getattr(self.executor, "plan_meta", None)
        if plan_meta is not None and rnd.fit.personalize is not None and reached[-1:] == stops[-1:]:
            if ends[-1] + self.meta_seconds(data, rnd) <= self.next_failure_s:
                plan_meta(data, rnd.fit, seed=seed)

    def diverged(self, rnd: Round, job: Job, seed: int, step: int) -> bool:
        """Training produced NaN/inf at ``step``: stop the run, or drop this update; returns whether it was dropped.

        ``ignore`` lets the update through (its NaN reaches the global model).
        """
        where = f"client {self.cid}{'' if job.origin == self.cid else f' (data of client {job.origin})'}, round {rnd.number}, "
        where += "meta step" if step == META_STEP else f"step {step}"
        if self.on_divergence == "stop":
            raise FedsimError(f"training diverged (NaN/inf loss or weights) at {where}; lower strategy.lr, or set run.on_divergence=skip_client")
        if self.on_divergence == "ignore":
            return False
        log.warning("training diverged at %s: update dropped", where)
        self.recorder.event("diverged", client=self.cid, round=rnd.number, value=step)
        self.recorder.diverged.append((seed, step))
        rnd.give_up((self.cid, job.origin))
        return True

    def meta_seconds(self, data: int, rnd: Round) -> float:
        """Virtual seconds of FedL2P's meta step on dataset ``data``."""
        assert rnd.fit.personalize is not None
        return rnd.fit.personalize.work_rows(self.executor.num_samples(data)) * self.compute.cost_per_sample_s / self.speed

    def restore(self, rnd: Round, job: Job):
        """Under ``restore_checkpoint``: pay R and load this round's checkpoint, else ``None`` (use the global model)."""
        if not self.recovery.uses_checkpoints:
            return None
        name = self.checkpoint_key((self.cid, job.origin))
        try:
            payload = self.store.load(name)
        except CheckpointCorrupt as exc:
            log.warning("client %d: %s", self.cid, exc)
            self.recorder.event("checkpoint_corrupt", client=self.cid, round=rnd.number)
            payload = None
        if payload is None or (int(payload["round"]), int(payload.get("repeat", 0))) != (rnd.number, rnd.repeat):  # another task's
            self.ledger.lose(keep_banked=False)
            return None
        self.ledger.enter("recovery", self.env.now)
        yield self.hold(self.checkpointing.restart_s)
        self.recorder.event("restore", client=self.cid, round=rnd.number, value=int(payload["step"]))
        return TrainState(flat=payload["flat"], step=int(payload["step"]), optimizer=payload["optimizer"])

    def send(self, link: Link, nbytes: int):
        """Send a message, waiting out link outages and resending what an outage cut off."""
        while True:
            if not link.up:
                self.ledger.enter("recovery", self.env.now)
                self.watch()
                yield link.back_up()
                self.ledger.enter("work", self.env.now)
            start = self.env.now
            self.sending_on = link
            self.watch(start + link.transfer_time(nbytes) if link.constant else math.inf)
            try:
                yield from link.send(nbytes)
                return
            except simpy.Interrupt as stop:
                if not isinstance(stop.cause, LinkDown):
                    raise
                self._interrupted = False
                self.ledger.enter("work", self.env.now)
                self.ledger.discard(self.env.now - start)
                self.recorder.event("message_lost", client=self.cid)
            finally:
                self.sending_on = None

    def hold(self, delay: float) -> simpy.Timeout:
        """A timeout of ``delay`` in which a failure would interrupt this client: one due by its end becomes an event."""
        self.watch(self.env.now + delay)
        return self.env.timeout(delay)

    def watch(self, until: float = math.inf) -> None:
        """Before a wait that ends at ``until`` (∞: unknown): the failure clock's transitions due by then must be events."""
        if self.shared.sleepers is not None:
            self.shared.sleepers.arm_by(self.cid, until)

    def step_seconds(self, data: int, epochs: int | None = None) -> np.ndarray:
        """Virtual seconds of each local step of one round on dataset ``data`` (of its first ``epochs`` epochs, if given)."""
        costs = self.shared.costs(data)
        if epochs is not None:
            costs = costs[: len(costs) // self.executor.spec.epochs * epochs]
        return costs / self.speed

    def train_seed(self, rnd: Round, origin: int) -> int:
        """Seed of this client's local training in the task ``rnd`` names (on behalf of ``origin``); 0 for an executor
        that draws nothing. A repeated task (the same client and model version again, asynchronous) gets its own."""
        if not self.shared.seeded:
            return 0
        again = (rnd.repeat,) if rnd.repeat else ()
        if origin == self.cid:
            return torch_seed(self.seed, "train", rnd.number, self.cid, *again)
        return torch_seed(self.seed, "redistributed", rnd.number, origin, self.cid, *again)

    def checkpoint_key(self, key: tuple[int, int]) -> str:
        """Store key of this client's checkpoint for work on behalf of ``key[1]``."""
        return f"client{key[0]}-for{key[1]}"
