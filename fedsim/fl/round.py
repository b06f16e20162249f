"""One round's shared state, and the task the server puts in a client's inbox.

The server opens a :class:`Round`, clients deliver into it, and the server closes it;
both sides hold the same object, so neither module needs the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import simpy

from fedsim.fl.messages import FitIns, Job, Update
from fedsim.sim.events import call_at
from fedsim.sim.recorder import Recorder

Key = tuple[int, int]  # (client doing the work, client whose data it is)


class Round:
    """One round's shared state: the instructions sent out, the work still owed, the updates in.

    Asynchronous protocols open one per dispatched client. ``number`` is the model version
    the work can first contribute to (the round; the version trained from is ``number − 1``)
    and ``repeat`` counts earlier dispatches of the same client from the same version:
    together they name the task, so its training seed, its dropout draw and its checkpoints
    are its own. With ``deadline`` (virtual time) and ``partial``, clients send the steps
    that fit before the deadline instead of being late. In an ``uncut`` round nothing but a
    failure of the client's own can cut its work (no deadline, no detection, no redistribution,
    no server failure, no time budget), so work is played when it starts, up to the client's
    next failure, and an update is received ahead, at the instant it will arrive
    (:meth:`receive`).
    """

    def __init__(
        self,
        env: simpy.Environment,
        number: int,
        fit: FitIns,
        selected: Sequence[int],
        recorder: Recorder,
        *,
        repeat: int = 0,
        deadline: float = math.inf,
        partial: bool = False,
        uncut: bool = False,
    ) -> None:
        self.env = env
        self.number = number
        self.repeat = repeat
        self.deadline = deadline
        self.partial = partial
        self.uncut = uncut
        self.fit = fit
        self.selected = list(selected)
        self.recorder = recorder
        self.wanted: set[Key] = {(c, c) for c in selected}
        self.waiting: set[Key] = set(self.wanted)
        self.updates: list[Update] = []
        self.dropouts: set[int] = set()
        self.on_dropout: Callable[[int], None] | None = None  # the server's policy for a client that will not report
        self.closed = False
        self.due = -math.inf  # the latest instant an update received ahead arrives: the round is all in no earlier
        self.arriving = False  # nothing owed but updates received ahead: all in when the last arrives
        self.all_in = env.event()
        if not self.waiting:
            self.all_in.succeed()

    @property
    def version(self) -> int:
        """The global model version this round's work trains from."""
        return self.number - 1

    def wants(self, key: Key) -> bool:
        """Whether the server still wants the work ``key``."""
        return not self.closed and key in self.wanted

    def expect(self, key: Key) -> None:
        """Add work to wait for (redistributed data)."""
        self.wanted.add(key)
        self.waiting.add(key)

    def give_up(self, key: Key) -> None:
        """Stop waiting for ``key``; its update will be refused."""
        self.wanted.discard(key)
        self._settle(key)

    def dropped(self, cid: int) -> None:
        """The server learned that ``cid`` will not report this round."""
        self.dropouts.add(cid)
        if self.on_dropout is not None and not self.closed:
            self.on_dropout(cid)
        self.give_up((cid, cid))

    def receive(self, update: Update, at: float | None = None) -> bool:
        """An update arrived (now, or, received ahead in an ``uncut`` round, at the later instant ``at``); returns
        whether it was accepted (wanted and in time)."""
        key = (update.client, update.origin)
        if not self.wants(key):
            self.recorder.event("late", client=update.client, round=self.number, at=at)
            return False
        self.recorder.event("receive", client=update.client, round=self.number, at=at)
        self.updates.append(update)
        self.wanted.discard(key)
        if at is not None and at > self.due:
            self.due = at
        self._settle(key)
        return True

    def received_ahead(self, updates: list[Update], due: float) -> None:
        """Updates received ahead at once, each wanted, the last arriving at ``due``: what :meth:`receive` of each in
        turn would do, but their rows, which the caller logs (:class:`~fedsim.fl.cohort.Cohort`)."""
        keys = [(update.client, update.origin) for update in updates]
        self.updates.extend(updates)
        self.wanted.difference_update(keys)
        if due > self.due:
            self.due = due
        self.waiting.difference_update(keys)
        self._settle(keys[-1])  # only the last could have left nothing to wait for

    def _settle(self, key: Key) -> None:
        self.waiting.discard(key)
        if self.waiting or self.all_in.triggered or self.arriving:
            return
        if self.due > self.env.now:  # the last update received ahead is still on its way: all in when it arrives
            self.arriving = True
            call_at(self.env, self.due, self._all_in)
        else:
            self.all_in.succeed()

    def _all_in(self, _: object) -> None:
        self.all_in.succeed()


@dataclass(frozen=True, slots=True)
class Task:
    """The server's request to train in a round. The client will not report when it drops out, nor when
    it straggles (``job.epochs`` < E) under a policy that drops stragglers. Slotted, as the other per-client
    messages: a round makes one per selected client."""

    round: Round
    dropout: bool = False
    job: Job | None = None
    straggler: bool = False
