"""One attempt at a task: restore or download, train segment by segment with checkpoints, upload.

The client's side of the work, apart from its lifecycle (:mod:`fedsim.fl.client`):
what each wait is, what it logs and accounts, and how it is waited for, phase by phase
or, when only a cancel can cut it, as one event (:mod:`fedsim.fl.closed_form`), during
which the client holds no process (:meth:`Attempts.park`), or, in a round that nothing
cancels, not at all: it is played as it starts, up to the client's next failure, which
is played there too. The real training is a call
to the executor made when a simulated compute segment ends, so work that a failure cuts
short is never computed at all.
"""

from __future__ import annotations

import logging
import math
from typing import NoReturn

import numpy as np
import simpy
import torch

from fedsim.checkpoint.store import CheckpointCorrupt
from fedsim.errors import FedsimError
from fedsim.fl.closed_form import Cursor, RunOver, segment_ends, segment_seconds
from fedsim.fl.interrupts import FAILS_AHEAD, LinkDown
from fedsim.fl.messages import META_STEP, NO_EXTRAS, Job, Update
from fedsim.fl.recovery import checkpoint_steps, steps_by
from fedsim.fl.round import Round
from fedsim.seeding import torch_seed
from fedsim.sim.events import Instant, Process, event_at, timeout
from fedsim.sim.network import Link
from fedsim.train.local import TrainState

log = logging.getLogger(__name__)


class Work:
    """An attempt's training, laid out once it has the model: from ``state`` at ``t``, segments ending at ``stops``
    of ``busy_s`` compute seconds each, a checkpoint write of ``checkpoint_s`` after each but the last, ``seed``."""

    __slots__ = ("state", "t", "checkpoint_s", "stops", "busy_s", "seed")

    def __init__(self, state: TrainState, t: float, checkpoint_s: float, stops: tuple[int, ...], busy_s: tuple[float, ...], seed: int) -> None:
        self.state, self.t, self.checkpoint_s, self.stops, self.busy_s, self.seed = state, t, checkpoint_s, stops, busy_s, seed


class Parked:
    """An attempt whose process ended until ``event`` (:meth:`Attempts.park`): what the process that goes on needs."""

    __slots__ = ("rnd", "job", "resume", "event", "work", "end")

    def __init__(self, rnd: Round, job: Job, resume: bool, event: Instant, work: Work, end: float | None = None) -> None:
        self.rnd, self.job, self.resume, self.event, self.work = rnd, job, resume, event, work
        self.end = end  # when the training and upload after a parked download end (Attempts.chain_end)


class Park(Exception):
    """Raised out of an attempt to end its client's process (:meth:`Attempts.park`); the client's loop returns."""


class Attempts:
    """A client's work on one task at a time (a base of :class:`~fedsim.fl.client.Client`, which holds the state)."""

    __slots__ = ()

    def attempt(self, rnd: Round, job: Job, resume: bool, parked: Parked | None = None):
        """Restore or download, train segment by segment with checkpoints, upload.

        Returns whether the update was accepted; raises Interrupt when cut short. Each
        wait is :meth:`wait`, which says when it ended. After the download, work that
        nothing but a cancel can cut waits for one event at its end, and the waits after
        that take their instants from a cursor (:mod:`fedsim.fl.closed_form`), so every
        row and account is the one the phase-by-phase path writes. Where the attempt would
        first wait for such an event (its download's end, its training's), the process
        parks instead (:meth:`park`); the process the event starts (:meth:`wake`) goes on
        from there with ``parked``. In an uncut round it waits for none: the cursor plays
        the work as soon as it starts (:meth:`begin`), up to the client's next failure
        (raised as the interrupt it would have been:
        :meth:`~fedsim.fl.client.Client.fail_ahead`), and the round receives the update
        ahead, at the instant it will arrive.
        """
        if parked is None:
            work = yield from self.begin(rnd, job, resume)
            if work is None:
                return False
        else:
            work = parked.work
            if self.cursor is None:  # parked in its download and woken before its end (a cancel): wait for it here
                yield parked.event
                self.start_training(rnd, job, work, parked.end)
        if self.cursor is not None and self.cursor.pending is not None:  # closed form: the one event
            if parked is None:
                self.park(Parked(rnd, job, resume, self.cursor.pending, work))
            try:
                yield self.cursor.take()
            except (simpy.Interrupt, RunOver) as cut:
                self.cursor.cut(self.env.now, cut)
        state, t, stops, busy_s, checkpoint_s, seed = work.state, work.t, work.stops, work.busy_s, work.checkpoint_s, work.seed
        total = stops[-1]
        loss_sum, rows = 0, 0  # over the segments trained: the loss is their mean weighted by rows
        for i in range(len(stops)):  # by index: no zip and list iterators held through each wait
            stop, busy = stops[i], busy_s[i]
            if i:
                self.start_segment(rnd, t, busy)
            t = yield from self.wait(busy)
            result = self.executor.train(job.data, state, seed=seed, stop_step=stop, fit=rnd.fit)
            if result.diverged_step is not None and self.diverged(rnd, job, seed, result.diverged_step):
                return False
            state = result.state
            loss_sum, rows = loss_sum + result.loss * result.samples, rows + result.samples
            if stop < total:
                self.ledger.enter("checkpoint", t)
                t = yield from self.wait(checkpoint_s)
                payload = {"round": rnd.number, "repeat": rnd.repeat, "step": state.step, "flat": state.flat, "optimizer": state.optimizer}
                self.keep(self.checkpoint_key((self.cid, job.origin)), payload)
                self.ledger.checkpointed()
                self.recorder.event("checkpoint", client=self.cid, round=rnd.number, value=state.step, at=t)
        self.ledger.enter("work", t)
        extras = NO_EXTRAS
        if rnd.fit.personalize is not None:  # FedL2P: the meta step after local training
            busy = self.meta_seconds(job.data, rnd)
            self.recorder.event("meta_step", client=self.cid, round=rnd.number, value=busy, at=t)
            t = yield from self.wait(busy)
            extras = self.executor.meta_gradient(job.data, rnd.fit, seed=seed)
            if not bool(torch.isfinite(extras["meta_grad"]).all()) and self.diverged(rnd, job, seed, META_STEP):
                return False
        loss = loss_sum / max(rows, 1)
        samples = self.executor.num_samples(job.data)
        update = Update(client=self.cid, round=rnd.number, flat=state.flat, num_samples=samples, loss=loss, origin=job.origin, extras=extras, version=rnd.version)
        self.recorder.event("upload", client=self.cid, round=rnd.number, at=t)
        t = yield from self.wait(0.0, self.uplink, self.shared.model_bytes + update.extra_bytes)
        accepted = rnd.receive(update, at=t)  # now, or later for work played ahead (an uncut round)
        self.ledger.enter("waiting", t)
        if accepted:
            self.ledger.succeed()
        else:
            self.ledger.lose(keep_banked=False)
        return accepted

    def begin(self, rnd: Round, job: Job, resume: bool):
        """Restore or download, then start the training (:meth:`start_training`); its :class:`Work`, or None when not
        one step fits before the deadline. A download after which nothing but a cancel can cut the attempt parks the
        process until the download's end (:meth:`park`), which starts the training without one. In an uncut round
        (:class:`~fedsim.fl.round.Round`) a download that no failure cuts starts the training now, at the instant it
        will end: the rows of one instant stay in the order of the downloads; and the work after it, if it can be
        played on a cursor, is played now too, up to the client's next failure."""
        state = (yield from self.restore(rnd, job)) if resume else None
        fresh, work, end = state is None, None, None
        if fresh:
            self.ledger.enter("work", self.env.now)
            self.recorder.event("broadcast", client=self.cid, round=rnd.number)
            nbytes = self.shared.model_bytes + job.extra_bytes + rnd.fit.extra_bytes
            state = TrainState(flat=rnd.fit.flat)
            if self.downlink.constant and self.shared.closed_form:
                download_s = self.downlink.transfer_time(nbytes)
                work = self.lay_out(rnd, job, state, self.env.now + download_s)  # the instant the download will end
                end = self.chain_end(rnd, work)  # which the download cannot change
                if rnd.uncut and self.unfailing_until(work.t):
                    self.start_training(rnd, job, work, end, ahead=True)
                    if end is None:  # not on a cursor: waited for phase by phase after the download
                        yield from self.send(self.downlink, nbytes)
                    elif not self.unfailing_until(end):  # the client's failure cuts it: there, when the cursor gets there
                        self.cursor.cut(self.shared.sleepers.clocks[self.cid].when, simpy.Interrupt(FAILS_AHEAD))  # type: ignore[union-attr]
                    return work
                if end is not None and self.unfailing_until(end):  # parked through both
                    self.watch(work.t)  # as send() does
                    self.park(Parked(rnd, job, resume, timeout(self.env, download_s), work, end))
            yield from self.send(self.downlink, nbytes)
        if work is None:
            work = self.lay_out(rnd, job, state, self.env.now)
            end = self.chain_end(rnd, work) if fresh else None  # (laid out before the download: known already)
        if work.stops[-1] <= state.step:  # not one step fits before the deadline: nothing worth sending
            rnd.give_up((self.cid, job.origin))
            self.recorder.event("no_time", client=self.cid, round=rnd.number)
            return None
        self.start_training(rnd, job, work, end if end is not None and self.unfailing_until(end) else None)
        return work

    def lay_out(self, rnd: Round, job: Job, state: TrainState, t: float) -> Work:
        """The training from ``state`` beginning at ``t``: its segments, checkpoint cost and seed."""
        checkpoint_s = self.checkpointing.cost(self.checkpoint_bytes)
        stops, busy_s = self.segments(rnd, job, state.step, checkpoint_s, self.shared.model_bytes)
        return Work(state, t, checkpoint_s, stops, busy_s, self.train_seed(rnd, job.origin))

    def start_training(self, rnd: Round, job: Job, work: Work, end: float | None, ahead: bool = False) -> None:
        """The training begins (at ``work.t``): one event for all of it when only a cancel can cut it (at ``end``, if
        not None: :meth:`chain_end`), or none when it is played at once (``ahead``: it starts later, in an uncut round),
        the executor told what it will be asked for, the first segment's row."""
        if end is not None:
            self.cursor = Cursor(work.t, None if ahead else event_at(self.env, end))  # until the attempt ends (serve)
        self.plan(rnd, job.data, work)
        self.start_segment(rnd, work.t, work.busy_s[0])

    def start_segment(self, rnd: Round, t: float, busy: float) -> None:
        """A training segment of ``busy`` seconds starts at ``t``."""
        self.ledger.enter("work", t)
        self.recorder.event("train_start", client=self.cid, round=rnd.number, value=busy, at=t)

    def park(self, parked: Parked) -> NoReturn:
        """End this process until ``parked.event``, the one thing the attempt waits for (its download's end, or its
        training's and upload's), which nothing but a cancel can cut: a million clients parked hold a record each,
        not a process and its generators' frames. The event goes on without a process (:meth:`downloaded`) or starts
        one (:meth:`wake`); a cancel, or the run's end, starts it at once."""
        self.parked = parked
        parked.event.callbacks.append(self.downloaded if self.cursor is None else self.wake)  # type: ignore[union-attr]
        raise Park

    def downloaded(self, _: object) -> None:
        """A parked download ended: the training starts, parked until its one event."""
        parked = self.parked
        self.start_training(parked.rnd, parked.job, parked.work, parked.end)  # type: ignore[union-attr]
        parked.event = self.cursor.pending  # type: ignore[union-attr]
        parked.event.callbacks.append(self.wake)  # type: ignore[union-attr]

    def wake(self, _: object = None) -> None:
        """Start the process that goes on with the parked work where it stopped: now, inside the caller, up to the wait
        it was parked in, and past it when its event has happened."""
        parked, self.parked = self.parked, None
        callbacks = parked.event.callbacks  # type: ignore[union-attr]
        if callbacks is not None:  # woken before its event (a cancel, the run's end): its process waits for it
            callbacks.remove(self.downloaded if self.cursor is None else self.wake)
        self.process = Process(self.env, self.run(parked))  # held before it runs: it may end at once
        self.process.run_now()

    def segments(self, rnd: Round, job: Job, start: int, checkpoint_s: float, nbytes: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """Where the training from step ``start`` stops (at each checkpoint, then at its last step) and each segment's
        compute seconds; the last stop is ``start`` when not one step fits before a partial round's deadline.

        The per-step costs stay in this call: an attempt in flight keeps only the segments
        (a million clients in flight hold a million of them). A whole round of the client's own
        data with no checkpoint is one segment, summed for the fleet beforehand (``round_s``)."""
        round_s = self.shared.round_s
        if round_s is not None and start == 0 and job.data == self.cid and job.epochs is None and not rnd.partial and not self.checkpointing.enabled:
            return (len(self.shared.costs(job.data)),), (round_s[self.cid],)
        step_s = self.step_seconds(job.data, job.epochs)
        if rnd.partial:  # the steps that fit before the deadline, with the upload at the uplink's own rate
            total = steps_by(rnd.deadline, step_s, self.checkpointing, checkpoint_s, start=start, now=self.env.now,
                             upload_s=self.uplink.transfer_time(nbytes))  # fmt: skip
            if total <= start:
                return (start,), ()
            step_s = step_s[:total]
        stops = (*checkpoint_steps(step_s, self.checkpointing, start=start), len(step_s))
        return stops, segment_seconds(step_s, stops, start)

    def chain_end(self, rnd: Round, work: Work) -> float | None:
        """When the training segments of ``work`` (with a checkpoint write after each but the last) and the upload,
        starting at ``work.t``, end, if they can be played on a cursor (:mod:`fedsim.fl.closed_form`): nothing but a
        cancel or this client's failure can cut them, and no other client makes the same instants; else None."""
        shared = self.shared
        if not shared.closed_form or not shared.alone[self.cid] or rnd.partial or rnd.fit.personalize is not None or not self.uplink.constant:
            return None
        end = segment_ends(work.t, work.busy_s, work.checkpoint_s)[-1]
        return end + self.uplink.transfer_time(shared.model_bytes)

    def unfailing_until(self, t: float) -> bool:
        """Whether this client's failure clock sleeps and its next failure falls after ``t`` (in closed form)."""
        clock = self.shared.sleepers.clocks[self.cid]  # type: ignore[union-attr]
        return clock is not None and clock.when > t

    def wait(self, seconds: float, link: Link | None = None, nbytes: int = 0):
        """Hold for ``seconds``, or send ``nbytes`` on ``link``; returns the instant the wait ended."""
        cursor = self.cursor
        if cursor is not None:  # closed form: the attempt waited for its one event; each wait ends where its timeout would
            return cursor.advance(seconds if link is None else link.transfer_time(nbytes))  # a constant link that cannot fail
        if link is None:
            yield self.hold(seconds)
        else:
            yield from self.send(link, nbytes)
        return self.env.now

    def plan(self, rnd: Round, data: int, work: Work) -> None:
        """Tell a planning executor which segments of ``work`` (starting at ``work.t``) this attempt will ask for.

        Segments whose compute ends after the failure already drawn for this client
        (``next_failure_s``) will never be asked for: ``useful_stop`` is the last step
        that will, and a batched executor trains no further.
        """
        plan = getattr(self.executor, "plan", None)
        if plan is None:
            return
        stops, ends = work.stops, segment_ends(work.t, work.busy_s, work.checkpoint_s)
        reached = [stop for stop, end in zip(stops, ends) if end <= self.next_failure_s]
        plan(data, work.state, seed=work.seed, stop_step=stops[-1], snapshots=stops[:-1], useful_stop=reached[-1] if reached else work.state.step,
             fit=rnd.fit)  # fmt: skip
        plan_meta = getattr(self.executor, "plan_meta", None)
        if plan_meta is not None and rnd.fit.personalize is not None and reached[-1:] == stops[-1:]:
            if ends[-1] + self.meta_seconds(data, rnd) <= self.next_failure_s:
                plan_meta(data, rnd.fit, seed=work.seed)

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
        self.save()
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

    def hold(self, delay: float) -> Instant:
        """A timeout of ``delay`` in which a failure would interrupt this client: one due by its end becomes an event."""
        self.watch(self.env.now + delay)
        return timeout(self.env, delay)

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

    def keep(self, name: str, payload: dict) -> None:
        """Save a checkpoint; with a pure executor, only when someone could read it (:meth:`save`): a restore, the
        task's end, the run's end. Each overwrites the one before under its name, so the others cost nothing."""
        if self.shared.pure:
            self.unsaved = (name, payload)
        else:
            self.store.save(name, payload)

    def save(self) -> None:
        """Save the checkpoint :meth:`keep` holds, if any."""
        if self.unsaved is not None:
            self.store.save(*self.unsaved)
            self.unsaved = None

    def checkpoint_key(self, key: tuple[int, int]) -> str:
        """Store key of this client's checkpoint for work on behalf of ``key[1]``."""
        return f"client{key[0]}-for{key[1]}"
