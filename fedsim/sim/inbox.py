"""A client's task queue: :class:`simpy.Store`'s event semantics without its machinery.

A million clients each waiting on a ``simpy.Store`` pay for its put and get queues and
its resource bookkeeping. A client's inbox has one reader (the client's process) and
needs none of that, only the same events, so that the engine schedules exactly what it
did with a store: a put schedules an event that, when processed, hands the first task
to a reader already waiting (which then resumes one event later); a get succeeds at
once when a task is there, else waits.
"""

from __future__ import annotations

import simpy


class Inbox:
    """Tasks for one reader, first in first out."""

    __slots__ = ("env", "items", "getter")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: list[object] = []
        self.getter: simpy.Event | None = None  # the reader's pending get

    def put(self, item: object) -> None:
        """Queue ``item``; a waiting reader gets it after this put's event is processed."""
        self.items.append(item)
        done = self.env.event()
        done.callbacks.append(self._hand_over)
        done.succeed()

    def get(self) -> simpy.Event:
        """An event whose value is the next item (already triggered when one is waiting)."""
        event = self.env.event()
        if self.items:
            event.succeed(self.items.pop(0))
        else:
            self.getter = event
        return event

    def _hand_over(self, _: simpy.Event) -> None:
        if self.getter is not None and self.items:
            getter, self.getter = self.getter, None
            getter.succeed(self.items.pop(0))
