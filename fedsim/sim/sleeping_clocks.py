"""Failure clocks that sleep through their clients' idle time.

A client's failure or repair that interrupts nothing (it is idle, or its work ends
first) changes only its own log rows and time accounts, which can be written later
with the right times. So a :class:`SleepingClock` schedules no SimPy event for it: its
next transition waits in :class:`Sleepers` (one array over the fleet) and is played,
at its own virtual time, when the client gets work or anyone reads the counts. A
million idle clients then cost their clocks nothing until someone looks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
import simpy
from simpy.events import NORMAL

from fedsim.sim.failures import FailureClock, FailureModel
from fedsim.streams import Streams


class Sleeper(Protocol):
    """A failure target that can be broken and repaired late, at the instant ``at`` when it happened."""

    def fail(self, at: float | None = None) -> None: ...

    def repair(self, at: float | None = None) -> None: ...

    @property
    def idle(self) -> bool:
        """Whether a failure now would interrupt nothing and no one waits for a repair."""

    def lapse(self, times: list[float], failing: bool) -> None:
        """Failures and repairs at ``times`` (past instants, alternating, the first a failure iff ``failing``), all
        while idle: what ``fail(at=)`` and ``repair(at=)`` in turn would do."""


class SleepingClock(FailureClock):
    """A failure clock that schedules an event only for a transition that its target will notice when it happens.

    Most of a large fleet sits idle most of the time, and most work ends before the
    next failure. A failure or repair that interrupts nothing changes only the
    target's own log rows and time accounts, which can be written later with the
    right times. So the clock *sleeps*: its next transition waits in :class:`Sleepers`
    rather than in SimPy's queue, and the transitions due are played in order, each at
    its own virtual time, when the target gets work or anyone reads the counts. The
    target *arms* the clock (its next transition becomes a SimPy event at its exact
    time) before a wait that the transition would cut: a timeout it would fall in, a
    wait of unknown length. The draws, their times and the target's calls are those
    of a :class:`FailureClock` (times are summed in the same order), only fewer events.
    An idle target takes what is due in one go (:meth:`_lapse`): one array of draws,
    one call, rather than a Python call and two scalar draws per transition. Between
    draws the clock keeps only its stream's position, not a generator of its own.
    """

    __slots__ = ("when", "sleepers", "parked")

    def __init__(self, env: simpy.Environment, target: Sleeper, model: FailureModel, rng: np.random.Generator | Streams,
                 sleepers: Sleepers, on_draw: Callable[[float, float], None] | None = None, index: int = 0) -> None:  # fmt: skip
        self.sleepers, self.when, self.parked = sleepers, 0.0, None
        super().__init__(env, target, model, rng, on_draw, index)

    def start(self) -> None:
        """Asleep from time 0, with the first lifetime still to draw."""
        self.sleepers.add(self)

    def _fire(self, _: simpy.Event) -> None:
        self.advance()
        self.sleepers.sleep(self)  # until the target arms it again

    def advance(self) -> None:
        """Take the step due at ``when``; ``when`` moves on to the next one."""
        self._unpark()
        delay, self.step = self.step(self.when)
        self.when += delay  # what a timeout scheduled now would add: the same instant as FailureClock's
        self._park()

    def _unpark(self) -> None:
        """Draw from here on where this clock's stream stopped (on the fleet's one generator)."""
        if self.parked is not None:
            self.rng = self.sleepers.resume(self.parked)

    def _park(self) -> None:
        """Keep only the stream's position between draws: a generator is 0.7 KiB, a position two integers."""
        if self.rng is not None:
            self.parked, self.rng = self.sleepers.position(self.rng), None

    def catch_up(self, now: float) -> None:
        """Play every transition due by ``now``, in order: one by one, or in one go when the target is idle."""
        while self.when <= now:
            if self.step != self._first and getattr(self.model.repair, "exponentials", None) is not None and self.target.idle:  # type: ignore[attr-defined]
                self._lapse(now)
                return
            self.advance()

    def _lapse(self, now: float) -> None:
        """Play the transitions due by ``now`` in one go: the draws of :meth:`advance`, as one array.

        numpy's Weibull draw is ``pow(E, 1/k)`` and its exponential ``mean·E`` of the same
        standard exponential E, so the stream's exponentials in bulk, transformed here
        the same way, are the one-by-one draws; the generator is left where those would
        leave it."""
        self._unpark()
        g, law, on_draw = self._generator(), self.model.repair, self.on_draw
        scale, inv, per_repair = self.model.scale, 1.0 / self.model.shape, law.exponentials  # type: ignore[attr-defined]
        failing, t = self.step == self._down, self.when
        first = failing
        cycle = scale * math.gamma(1.0 + inv) + law.mean  # type: ignore[attr-defined]
        times: list[float] = []
        draws: list[float] = []
        used = 0
        while t <= now:
            if used == len(draws):
                before = g.bit_generator.state  # type: ignore[union-attr]
                draws, used = g.standard_exponential(int(2.5 * (now - t) / cycle) + 2).tolist(), 0  # type: ignore[union-attr]
            times.append(t)
            if failing:
                delay = law.mean * draws[used] if per_repair else law.mean  # type: ignore[attr-defined]
                used += per_repair  # type: ignore[operator]
            else:
                delay = scale * math.pow(draws[used], inv)
                used += 1
                if on_draw is not None:
                    on_draw(delay, t + delay)
            t += delay
            failing = not failing
        if used < len(draws):  # back to just after the last draw used
            g.bit_generator.state = before  # type: ignore[union-attr]
            g.standard_exponential(used)  # type: ignore[union-attr]
        self.step, self.when = (self._down if failing else self._back), t
        self._park()
        self.target.lapse(times, first)  # type: ignore[attr-defined]

    def arm(self) -> None:
        """Schedule the next transition as a SimPy event at its exact time."""
        call_at(self.env, self.when, self._fire)

    def breaks(self, t: float) -> None:
        self.target.fail(at=t)  # type: ignore[call-arg]

    def restores(self, t: float) -> None:
        self.target.repair(at=t)  # type: ignore[call-arg]


class Sleepers:
    """The sleeping clocks of a fleet, their next transition times in one array.

    Finding the clocks with a transition due is one vectorised comparison, so a million
    sleeping clocks cost nothing until one of them has something to play.
    """

    def __init__(self, size: int) -> None:
        self.when = np.full(size, np.inf)  # next transition of each sleeping clock; inf while armed
        self.clocks: list[SleepingClock | None] = [None] * size
        self._bits = np.random.PCG64()
        self._generator = np.random.Generator(self._bits)  # lent to one clock at a time, at that clock's position

    def resume(self, position: tuple[int, int]) -> np.random.Generator:
        """The fleet's generator, set to a stream's ``position`` (its PCG64 state and increment)."""
        self._bits.state = {"bit_generator": "PCG64", "state": {"state": position[0], "inc": position[1]}, "has_uint32": 0, "uinteger": 0}
        return self._generator

    @staticmethod
    def position(g: np.random.Generator) -> tuple[int, int]:
        """Where ``g``'s PCG64 stream stands (the failure draws take 64 bits at a time: no half-used word)."""
        state = g.bit_generator.state
        assert not state["has_uint32"], "a 32-bit draw left half a word: the position would lose it"
        return state["state"]["state"], state["state"]["inc"]

    def add(self, clock: SleepingClock) -> None:
        """Register ``clock`` (by its index), asleep."""
        self.clocks[clock.index] = clock
        self.sleep(clock)

    def sleep(self, clock: SleepingClock) -> None:
        """Keep ``clock``'s next transition here rather than as an event."""
        self.when[clock.index] = clock.when

    def catch_up(self, index: int, now: float) -> None:
        """Play clock ``index``'s transitions due by ``now`` (its target is about to act on its state).

        An index without a sleeping clock, or with an armed one, is never due (``when`` is inf)."""
        if self.when[index] <= now:
            clock = self.clocks[index]
            clock.catch_up(now)  # type: ignore[union-attr]
            self.when[index] = clock.when  # type: ignore[union-attr]

    def arm_by(self, index: int, until: float) -> None:
        """Clock ``index``'s target waits until ``until``: a transition due by then must happen as an event."""
        when = self.when[index]
        if when <= until and when != math.inf:  # inf: armed already (or no sleeping clock)
            self.when[index] = math.inf
            self.clocks[index].arm()  # type: ignore[union-attr]

    def settle(self, now: float) -> None:
        """Play every sleeping clock's transitions due by ``now`` (before its rows or accounts are read)."""
        for index in np.flatnonzero(self.when <= now).tolist():
            self.catch_up(index, now)


def call_at(env: simpy.Environment, when: float, callback: Callable[[simpy.Event], None]) -> None:
    """Call ``callback`` at virtual time ``when`` exactly, after the events already queued for that instant."""
    event_at(env, when).callbacks.append(callback)


def event_at(env: simpy.Environment, when: float) -> simpy.Event:
    """An event that happens at virtual time ``when`` exactly (a timeout lands at ``now + (when − now)``, which can
    round differently), after the events already queued for that instant."""
    event = simpy.Event(env)
    event._ok, event._value = True, None
    heapq.heappush(env._queue, (when, NORMAL, next(env._eid), event))  # what Environment.schedule does, at a time
    return event
