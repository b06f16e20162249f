"""Network links: one per client and direction, with latency and bandwidth.

A message occupies its link for ``latency + bytes × 8 ÷ bandwidth`` virtual
seconds; messages on the same link queue behind each other (a SimPy resource of
capacity 1). A link can carry its own failure clock: while it is down nothing
crosses it, and a message in flight when it fails is lost and must be resent.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy


class Link:
    """One direction of a client's connection to the server."""

    def __init__(self, env: simpy.Environment, *, latency_s: float, bandwidth_bps: float) -> None:
        self.env = env
        self.latency_s = latency_s
        self.bandwidth_bps = bandwidth_bps  # bits per second
        self._channel = simpy.Resource(env, capacity=1)
        self.up = True
        self.repaired = env.event()
        self.on_fail: Callable[[Link], None] | None = None  # the owner interrupts its transfer
        self.on_event: Callable[[str], None] | None = None  # the owner logs failures and repairs

    def transfer_time(self, nbytes: int) -> float:
        """Virtual seconds for a message of ``nbytes`` to cross the link."""
        return self.latency_s + 8 * nbytes / self.bandwidth_bps

    def send(self, nbytes: int):
        """SimPy process body: wait for the link, then hold it for the transfer time."""
        with self._channel.request() as req:
            yield req
            yield self.env.timeout(self.transfer_time(nbytes))

    def fail(self) -> None:
        """The link goes down; the message in flight (if any) is lost."""
        self.up = False
        self.repaired = self.env.event()
        if self.on_event is not None:
            self.on_event("link_failure")
        if self.on_fail is not None:
            self.on_fail(self)

    def repair(self) -> None:
        """The link is back."""
        self.up = True
        if self.on_event is not None:
            self.on_event("link_repair")
        self.repaired.succeed()
