"""A client's task queue: :class:`simpy.Store`'s order and times without its machinery.

A million clients each waiting on a ``simpy.Store`` pay for its put and get queues and
its resource bookkeeping, and a store hands a task over in two events (the put's, then
the get's). A client's inbox has one reader (the client's process) and needs none of
that: a put hands the first task straight to a reader already waiting, whose get's event
resumes it; a get succeeds at once when a task is there, else waits. Readers get the
same tasks in the same order at the same virtual times as from a store, one event
sooner: only something another process scheduled for that very instant can now come
after the reader resumes rather than before.
"""

from __future__ import annotations

import simpy

from fedsim.sim.events import Instant


class Inbox:
    """Tasks for one reader, first in first out."""

    __slots__ = ("env", "items", "getter")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: list[object] = []
        self.getter: Instant | None = None  # the reader's pending get

    def put(self, item: object) -> None:
        """Queue ``item``; a waiting reader gets it at once (it resumes when its get's event is processed)."""
        self.items.append(item)
        self._hand_over()

    def take(self) -> object:
        """The next item, now (for a reader that its arrival started)."""
        return self.items.pop(0)

    def get(self) -> Instant:
        """An event whose value is the next item (already triggered when one is waiting)."""
        event = Instant()
        if self.items:
            event.succeed(self.env, self.items.pop(0))
        else:
            self.getter = event
        return event

    def _hand_over(self) -> None:
        if self.getter is not None and self.items:
            getter, self.getter = self.getter, None
            getter.succeed(self.env, self.items.pop(0))
