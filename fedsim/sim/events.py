"""The events every client makes every round, without SimPy's per-event dictionary.

A SimPy event keeps its attributes in an instance dictionary: a timeout is about 200
bytes and a dozen attribute writes. A million clients each hold one (a transfer, a
training chain's end, an armed failure clock, the start of a process), so those use
:class:`Instant`, slotted, which has all that SimPy's loop and a waiting process read of
an event (``callbacks``, ``_ok``, ``_value``). Each is pushed onto the queue as
:meth:`simpy.Environment.schedule` pushes a triggered event, with the next event id, so
it is processed at the same place as the SimPy event it stands for. They cannot be
combined with ``|`` or ``&``: waits that need a condition use SimPy's own events. A
client's process is a slotted :class:`Process` too.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager

import simpy
from simpy.events import NORMAL, PENDING, URGENT, Interruption


class Instant:
    """An event that happens at an instant (:func:`timeout`, :func:`event_at`), or when :meth:`succeed` says."""

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Instant], None]] | None = []
        self._ok = True
        self._value: object = None

    def succeed(self, env: simpy.Environment, value: object = None) -> None:
        """Happen now with ``value``, after the events already queued for this instant (``simpy.Event.succeed``)."""
        self._value = value
        heapq.heappush(env._queue, (env._now, NORMAL, next(env._eid), self))


def timeout(env: simpy.Environment, delay: float) -> Instant:
    """What ``env.timeout(delay)`` is to SimPy's loop and to the process that waits for it: the same instant
    (``now + delay``), the same place in the queue."""
    return event_at(env, env._now + delay)


def event_at(env: simpy.Environment, when: float, priority: int = NORMAL) -> Instant:
    """An event that happens at virtual time ``when`` exactly (a timeout lands at ``now + (when − now)``, which can
    round differently), after the events already queued for that instant (before them at priority ``URGENT``, as
    SimPy starts a process)."""
    event = Instant()
    heapq.heappush(env._queue, (when, priority, next(env._eid), event))
    return event


def call_at(env: simpy.Environment, when: float, callback: Callable[[Instant], None], priority: int = NORMAL) -> None:
    """Call ``callback`` at virtual time ``when`` exactly, after the events already queued for that instant (before
    them at priority ``URGENT``)."""
    event_at(env, when, priority).callbacks.append(callback)  # type: ignore[union-attr]


class Burst:
    """Calls due at the current instant, one after another, from one event: what an event apiece (:func:`call_at`,
    one per call, in the order they were added) would do, without a million of them in SimPy's heap when a round
    hands out its tasks.

    The calls stand where their own events would: their event is queued at the first
    call's place, and a call added after anything else was queued opens a new one. A
    burst is filled within one synchronous stretch (a loop of the server's), before SimPy
    takes its next step. An urgent event that a call queues for this instant would have
    come before the next call's own event, so the rest wait behind it (:class:`_Calls`)."""

    __slots__ = ("env", "within", "calls", "queued")

    def __init__(self, env: simpy.Environment, within: AbstractContextManager | None = None) -> None:
        self.env = env
        self.within = within  # what each stretch of calls runs in (a cohort that finishes the attempts its calls took, at its end)
        self.calls: _Calls | None = None  # those of the event queued last
        self.queued = -1  # the queue's length after it was pushed: a push since then opens a new one

    def add(self, call: Callable[[Instant], None]) -> None:
        """Call ``call`` at this instant, after the events already queued for it."""
        queue = self.env._queue
        if len(queue) != self.queued:
            self.calls = _Calls(self.env, self.within)
            self.queued = len(queue)
        self.calls.list.append(call)  # type: ignore[union-attr]


class _Calls:
    """One event's calls of a :class:`Burst`, made in turn from its place in the queue, ``key``."""

    __slots__ = ("env", "within", "key", "list", "done")

    def __init__(self, env: simpy.Environment, within: AbstractContextManager | None) -> None:
        self.env, self.within, self.list, self.done = env, within, [], 0
        self.key = (env._now, NORMAL, next(env._eid))
        self._push()

    def _push(self) -> None:
        event = Instant()
        event.callbacks.append(self._run)  # type: ignore[union-attr]
        heapq.heappush(self.env._queue, (*self.key, event))

    def _run(self, event: Instant) -> None:
        if self.within is None:
            self._calls(event)
        else:
            with self.within:
                self._calls(event)

    def _calls(self, event: Instant) -> None:
        calls, queue, now = self.list, self.env._queue, self.env._now
        while self.done < len(calls):
            self.done += 1
            calls[self.done - 1](event)
            if queue and queue[0][1] == URGENT and queue[0][0] == now and self.done < len(calls):
                self._push()  # the rest after this instant's urgent events, before its others, as their own would be
                return


class Process:
    """A client's process: SimPy's process loop (``simpy.Process._resume``) in a slotted object, which starts when
    :meth:`run_now` says, inside its caller.

    A client's process starts with its first task, from an event at the task's instant
    after the events already queued for it (where a process waiting for the task would
    resume), and ends when its inbox is empty or its attempt parks: an idle fleet holds
    no processes at all. Nothing waits for a client's process, so its end is not an
    event (SimPy's is one more per process); an error in it propagates out of the event
    loop at once. It can be interrupted as a SimPy process can
    (``simpy.events.Interruption`` reads what it reads of one).
    """

    __slots__ = ("env", "_generator", "_target", "_value")

    def __init__(self, env: simpy.Environment, generator: Generator) -> None:
        self.env, self._generator, self._value = env, generator, PENDING
        self._target: object = None

    def run_now(self) -> None:
        """Start now, inside the caller (an event's callback, another process's step), and run up to the first wait
        for an event still to come: where a process waiting at that point would be."""
        caller = self.env._active_proc
        self._resume(_BEGUN)
        self.env._active_proc = caller  # the loop below sets it for the process it resumes, and clears it after

    @property
    def is_alive(self) -> bool:
        return self._value is PENDING

    def interrupt(self, cause: object = None) -> None:
        """Throw ``simpy.Interrupt(cause)`` into the process at its wait, before the other events of this instant."""
        Interruption(self, cause)  # type: ignore[arg-type]

    def _resume(self, event: Instant | simpy.Event) -> None:
        """Send ``event``'s value (or throw its exception) into the generator until it waits for an event still to
        come, or ends: SimPy's loop, less what a process that others wait for needs."""
        env = self.env
        env._active_proc = self  # type: ignore[assignment]
        while True:
            try:
                if event._ok:
                    event = self._generator.send(event._value)
                else:
                    event._defused = True  # type: ignore[union-attr]
                    exc = type(event._value)(*event._value.args)  # type: ignore[union-attr]
                    exc.__cause__ = event._value  # type: ignore[assignment]
                    event = self._generator.throw(exc)
            except StopIteration:
                self._value = self._target = None  # ended: nothing waits for it
                break
            if event.callbacks is not None:
                event.callbacks.append(self._resume)  # type: ignore[union-attr]
                self._target = event
                break
        env._active_proc = None


_BEGUN = Instant()  # what a new process is resumed with: an event that has happened, with no value
_BEGUN.callbacks = None
