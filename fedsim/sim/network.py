"""Network links: one per client and direction, with latency and bandwidth, and the server's shared links.

A message occupies its link for ``latency + bytes × 8 ÷ bandwidth`` virtual
seconds. A link has one sender, its client's process, which sends one message at a
time, so a link needs no queue (no SimPy resource): a transfer is a timeout. A link
can carry its own failure clock: while it is down nothing crosses it, and a message
in flight when it fails is lost and must be resent.

When the server's link has a finite capacity, every transfer in that direction also
crosses one :class:`SharedLink`: after its latency, a message's bits flow at its
max-min fair share of the server's capacity, capped by its client's own rate
(:mod:`fedsim.sim.fairshare`). A client link can also change rate over time (a
bandwidth trace, :mod:`fedsim.sim.link_rates`).
"""

from __future__ import annotations

import itertools
import math
from typing import Protocol

import simpy

from fedsim.sim.events import timeout
from fedsim.sim.fairshare import FairShare
from fedsim.sim.failures import Repairable
from fedsim.sim.link_rates import ClientLinks, RateSchedule


class SharedLink:
    """The server's side of every transfer in one direction: its capacity shared max-min fairly.

    Event-driven: one pending timer for the next transfer to finish, replaced whenever a
    transfer starts, finishes or is cut; a change costs O(log k) for k transfers in flight
    and nothing is kept per client.
    """

    def __init__(self, env: simpy.Environment, capacity_bps: float) -> None:
        self.env = env
        self.share = FairShare(capacity_bps)
        self._done: dict[int, simpy.Event] = {}
        self._ids = itertools.count()
        self._timer = 0  # generation of the one live timer; older timers find a newer one and do nothing

    def carry(self, bits: float, link: Link):
        """SimPy process body: move ``bits`` at the fair rate capped by ``link``'s own rate; cut on interrupt."""
        fid = next(self._ids)
        done = self._done[fid] = self.env.event()
        self.share.add(self.env.now, fid, bits, link.rate_at(self.env.now))
        self._reschedule()
        try:
            while not done.triggered:
                change = link.next_change(self.env.now)
                if math.isinf(change):
                    yield done
                    break
                yield done | self.env.timeout(change - self.env.now)
                if not done.triggered:
                    self.share.set_cap(self.env.now, fid, link.rate_at(self.env.now))
                    self._reschedule()
        finally:
            if self._done.pop(fid, None) is not None:  # cut before it finished: its share goes to the others now
                self.share.remove(self.env.now, fid)
                self._reschedule()

    def _reschedule(self) -> None:
        self._timer += 1
        t = self.share.next_finish()
        if math.isfinite(t):
            generation = self._timer
            self.env.timeout(max(t - self.env.now, 0.0)).callbacks.append(lambda _: self._tick(generation))

    def _tick(self, generation: int) -> None:
        if generation != self._timer:
            return
        for fid in self.share.pop_finished(self.env.now):
            self._done.pop(fid).succeed()
        self._reschedule()


class LinkOwner(Protocol):
    """Who a link tells about its failures: the client whose messages it carries."""

    def link_failed(self, link: Link) -> None: ...

    def link_event(self, kind: str) -> None: ...


class Link(Repairable):
    """One direction of a client's connection to the server."""

    __slots__ = ("env", "latency_s", "bandwidth_bps", "shared", "schedule", "up", "repaired", "owner")

    def __init__(
        self,
        env: simpy.Environment,
        *,
        latency_s: float,
        bandwidth_bps: float,
        shared: SharedLink | None = None,
        schedule: RateSchedule | None = None,
    ) -> None:
        self.env = env
        self.latency_s = latency_s
        self.bandwidth_bps = bandwidth_bps  # bits per second
        self.shared = shared  # the server's link in this direction, when its capacity is finite
        self.schedule = schedule  # time-varying rate (a trace); overrides bandwidth_bps
        self.up = True
        self.repaired: simpy.Event | None = None  # the next repair, made when a sender waits for it
        self.owner: LinkOwner | None = None  # interrupts its transfer and logs failures and repairs

    @property
    def constant(self) -> bool:
        """Whether a transfer's time is :meth:`transfer_time` (no shared server link, no changing rate)."""
        return self.shared is None and self.schedule is None

    def transfer_time(self, nbytes: int) -> float:
        """Virtual seconds for a message of ``nbytes`` to cross the link alone at a constant rate."""
        return self.latency_s + 8 * nbytes / self.bandwidth_bps

    def rate_at(self, t: float) -> float:
        """This link's own rate at virtual time ``t``, bits per second."""
        return self.schedule.rate_at(t) if self.schedule is not None else self.bandwidth_bps

    def next_change(self, t: float) -> float:
        """When this link's own rate next changes (∞ if never)."""
        return self.schedule.next_change(t) if self.schedule is not None else math.inf

    def send(self, nbytes: int):
        """SimPy process body: hold the link for the latency and the bits."""
        if self.constant:
            yield timeout(self.env, self.transfer_time(nbytes))  # slotted: every client sends every round
            return
        yield self.env.timeout(self.latency_s)
        if nbytes <= 0:
            return
        if self.shared is not None:
            yield from self.shared.carry(8 * nbytes, self)
        else:
            yield self.env.timeout(self.schedule.finish(self.env.now, 8 * nbytes) - self.env.now)

    def fail(self) -> None:
        """The link goes down; the message in flight (if any) is lost."""
        self.up = False
        if self.owner is not None:
            self.owner.link_event("link_failure")
            self.owner.link_failed(self)

    def repair(self) -> None:
        """The link is back."""
        self.up = True
        if self.owner is not None:
            self.owner.link_event("link_repair")
        self.wake_waiters()


class Network:
    """Builds each client's pair of links, all crossing the server's shared links when those are finite.

    Nothing is created per client beyond its two links; the shared links are two objects
    for the whole run, and only when the server's capacity is given.
    """

    def __init__(
        self,
        env: simpy.Environment,
        *,
        latency_s: float,
        down_bps: float,
        up_bps: float,
        server_down_bps: float | None = None,
        server_up_bps: float | None = None,
        clients: ClientLinks | None = None,
    ) -> None:
        self.env = env
        self.latency_s, self.down_bps, self.up_bps = latency_s, down_bps, up_bps
        self.clients = clients
        self.shared_down = SharedLink(env, server_down_bps) if server_down_bps is not None else None
        self.shared_up = SharedLink(env, server_up_bps) if server_up_bps is not None else None

    def pair(self, cid: int) -> tuple[Link, Link]:
        """Client ``cid``'s (downlink, uplink)."""
        latency, down, up = self.latency_s, self.down_bps, self.up_bps
        down_schedule = up_schedule = None
        if self.clients is not None:
            c = self.clients
            latency, down, up = float(c.latency_s[cid]), float(c.down_bps[cid]), float(c.up_bps[cid])
            down_schedule, up_schedule = c.schedules(cid)
        return (
            Link(self.env, latency_s=latency, bandwidth_bps=down, shared=self.shared_down, schedule=down_schedule),
            Link(self.env, latency_s=latency, bandwidth_bps=up, shared=self.shared_up, schedule=up_schedule),
        )
