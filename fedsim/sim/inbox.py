"""A client's task queue: :class:`simpy.Store`'s order and times without its machinery.

A million clients each waiting on a ``simpy.Store`` would pay for its put and get
queues and its resource bookkeeping, and a store hands a task over in two events (the
put's, then the get's). A client's inbox has one reader, the client's process, which
never waits on it: the process ends when the inbox is empty and the next task starts
another, at the instant and place in the queue where a waiting reader would resume
(:meth:`fedsim.fl.client.Client.give`). A get when a task is queued resumes the reader
after the events already queued for this instant, as a store's would.
"""

from __future__ import annotations

import simpy

from fedsim.sim.events import Instant


class Inbox:
    """Tasks for one reader, first in first out."""

    __slots__ = ("env", "items")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: list[object] = []

    def put(self, item: object) -> None:
        """Queue ``item``."""
        self.items.append(item)

    def take(self) -> object:
        """The next item, now (for a reader that its arrival started)."""
        return self.items.pop(0)

    def get(self) -> Instant:
        """An event whose value is the next item (there is one), after the events already queued for this instant."""
        event = Instant()
        event.succeed(self.env, self.items.pop(0))
        return event
