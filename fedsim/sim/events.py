"""The events every client makes every round, without SimPy's per-event dictionary.

A SimPy event keeps its attributes in an instance dictionary: a timeout is about 200
bytes and a dozen attribute writes. A million clients each hold one (a transfer, a
training chain's end, an armed failure clock, the wait for the next task), so those use
:class:`Instant`, slotted, which has all that SimPy's loop and a waiting process read of
an event (``callbacks``, ``_ok``, ``_value``). Each is pushed onto the queue as
:meth:`simpy.Environment.schedule` pushes a triggered event, with the next event id, so
it is processed at the same place as the SimPy event it stands for. They cannot be
combined with ``|`` or ``&``: waits that need a condition use SimPy's own events.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator

import simpy
from simpy.events import NORMAL


class Instant:
    """An event that happens at an instant (:func:`timeout`, :func:`event_at`), or when :meth:`succeed` says."""

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Instant], None]] | None = []
        self._ok = True
        self._value: object = None

    def succeed(self, env: simpy.Environment, value: object = None, priority: int = NORMAL) -> None:
        """Happen now with ``value``, after the events already queued for this instant (``simpy.Event.succeed``), or
        before them at priority ``URGENT`` (as SimPy starts a process)."""
        self._value = value
        heapq.heappush(env._queue, (env._now, priority, next(env._eid), self))


def timeout(env: simpy.Environment, delay: float) -> Instant:
    """What ``env.timeout(delay)`` is to SimPy's loop and to the process that waits for it: the same instant
    (``now + delay``), the same place in the queue."""
    return event_at(env, env._now + delay)


def event_at(env: simpy.Environment, when: float) -> Instant:
    """An event that happens at virtual time ``when`` exactly (a timeout lands at ``now + (when − now)``, which can
    round differently), after the events already queued for that instant."""
    event = Instant()
    heapq.heappush(env._queue, (when, NORMAL, next(env._eid), event))
    return event


def call_at(env: simpy.Environment, when: float, callback: Callable[[Instant], None]) -> None:
    """Call ``callback`` at virtual time ``when`` exactly, after the events already queued for that instant."""
    event_at(env, when).callbacks.append(callback)  # type: ignore[union-attr]


class Started(simpy.Process):
    """A process that starts at the current instant after the events already queued for it, where a process waiting
    for a triggered event would resume (SimPy starts a new process before them).

    So a client's process can start with its first task instead of waiting for it from
    time 0: it runs at the instant and place in the queue where the task's hand-over
    would have resumed it, with one event instead of two, and an idle fleet holds no
    processes at all."""

    def __init__(self, env: simpy.Environment, generator: Generator) -> None:
        self.env = env  # what Process.__init__ sets, but its start is an Instant at NORMAL priority, not URGENT
        self.callbacks = []
        self._generator = generator
        start = Instant()
        start.callbacks.append(self._resume)  # type: ignore[union-attr]
        start.succeed(env)
        self._target = start  # type: ignore[assignment]

    @classmethod
    def at_once(cls, env: simpy.Environment, generator: Generator) -> Started:
        """A process that runs now, inside its caller (an event's callback, another process's step), up to its first
        wait for an event still to come: where a process waiting at that point would be."""
        process = cls.__new__(cls)
        process.env, process.callbacks, process._generator = env, [], generator
        caller = env._active_proc
        process._resume(_BEGUN)
        env._active_proc = caller  # SimPy's step sets it for the process it resumes, and clears it after
        return process


_BEGUN = Instant()  # what a new process is resumed with: an event that has happened, with no value
_BEGUN.callbacks = None
