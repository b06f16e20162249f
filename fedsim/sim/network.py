"""Network links: one per client and direction, with latency and bandwidth.

A message occupies its link for ``bytes ÷ bandwidth + latency`` virtual seconds;
messages on the same link queue behind each other (a SimPy resource of capacity 1).
"""

from __future__ import annotations

import simpy


class Link:
    """One direction of a client's connection to the server."""

    def __init__(self, env: simpy.Environment, *, latency_s: float, bandwidth_bps: float) -> None:
        self.env = env
        self.latency_s = latency_s
        self.bandwidth_bps = bandwidth_bps  # bits per second
        self._channel = simpy.Resource(env, capacity=1)

    def transfer_time(self, nbytes: int) -> float:
        """Virtual seconds for a message of ``nbytes`` to cross the link."""
        return self.latency_s + 8 * nbytes / self.bandwidth_bps

    def send(self, nbytes: int):
        """SimPy process body: wait for the link, then hold it for the transfer time."""
        with self._channel.request() as req:
            yield req
            yield self.env.timeout(self.transfer_time(nbytes))
