"""Failure clocks that sleep through their clients' idle time.

A client's failure or repair that interrupts nothing (it is idle, or its work ends
first) changes only its own log rows and time accounts, which can be written later
with the right times. So a :class:`SleepingClock` schedules no SimPy event for it: its
next transition waits in :class:`Sleepers` (one array over the fleet) and is played,
at its own virtual time, when the client gets work or anyone reads the counts. A
million idle clients then cost their clocks nothing until someone looks, and when
someone does (:meth:`Sleepers.settle`), their draws are made for all of them at once
on arrays (:mod:`fedsim.pcg64_arrays`), each clock keeping its own stream.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from typing import NamedTuple, Protocol

import numpy as np
import simpy

from fedsim.pcg64_arrays import seeded, standard_exponentials
from fedsim.sim.events import call_at
from fedsim.sim.failures import FailureClock, FailureModel, Step
from fedsim.sim.parked_streams import ParkedStreams
from fedsim.streams import Streams


class Sleeper(Protocol):
    """A failure target that can be broken and repaired late, at the instant ``at`` when it happened."""

    def fail(self, at: float | None = None) -> None: ...

    def repair(self, at: float | None = None) -> None: ...

    @property
    def idle(self) -> bool:
        """Whether a failure now would interrupt nothing and no one waits for a repair."""

    def lapse(self, times: list[float], failing: bool, logged: bool = False) -> None:
        """Failures and repairs at ``times`` (past instants, alternating, the first a failure iff ``failing``), all
        while idle: what ``fail(at=)`` and ``repair(at=)`` in turn would do (``logged``: but their rows are in the
        log already, put there by the fleet's :class:`Sleepers`)."""


class Targets(Protocol):
    """The targets of a fleet's sleeping clocks, told of many idle targets' draws and transitions at once: what each
    clock's ``on_draw`` and each target's ``lapse`` would be told (columns ordered by target, each target's rows in
    order), without a Python call per target."""

    def drawn(self, ids: np.ndarray, lifetimes: np.ndarray, ends: np.ndarray) -> None:
        """Target ``ids[i]``'s clock drew lifetime ``lifetimes[i]``, which fails at ``ends[i]``."""

    def lapse(self, ids: np.ndarray, times: np.ndarray, failed: np.ndarray) -> None:
        """Idle target ``ids[i]`` failed (``failed[i]``) or was repaired at ``times[i]``, its row logged already."""


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

    __slots__ = ("when", "sleepers")

    def __init__(self, env: simpy.Environment, target: Sleeper, model: FailureModel, rng: np.random.Generator | Streams,
                 sleepers: Sleepers, on_draw: Callable[[Sequence[float], float], None] | None = None, index: int = 0) -> None:  # fmt: skip
        self.sleepers, self.when = sleepers, 0.0
        super().__init__(env, target, model, rng, on_draw, index)

    def start(self) -> None:
        """Asleep from time 0, with the first lifetime still to draw."""
        self.sleepers.add(self)

    def _fire(self, _: object) -> None:
        self.advance()
        self.sleepers.sleep(self)  # until the target arms it again

    def advance(self) -> None:
        """Take the step due at ``when``; ``when`` moves on to the next one."""
        self._unpark(in_python=_bulk_repairs(self.model))  # a draw or none: no numpy generator set and read back
        delay, self.step = self.step(self.when)
        self.when += delay  # what a timeout scheduled now would add: the same instant as FailureClock's
        self._park()

    def _first(self, t: float) -> tuple[float, Step]:
        """The first lifetime, its generator kept to be parked: every clock past its first draw has a position."""
        if self.rng is None:
            self.rng = self.streams.generator(self.index)  # type: ignore[union-attr]
        return self._live(self.rng, t)

    def _unpark(self, in_python: bool = False) -> None:
        """Draw from here on where this clock's stream stopped: on the fleet's one numpy generator, or in Python
        integers (``in_python``: a :class:`~fedsim.pcg64_arrays.Stream`, for a step's Weibull or exponential draw)."""
        parked = self.sleepers.parked
        if parked.positions[self.index, 3]:  # parked: a PCG64 increment is odd, so never 0
            self.rng = parked.stream(self.index) if in_python else parked.resume(self.index)

    def _park(self) -> None:
        """Keep only the stream's position between draws: a generator is 0.7 KiB, a position four words in arrays."""
        if self.rng is not None:
            self.sleepers.parked.park(self.index, self.rng)
            self.rng = None

    def catch_up(self, now: float) -> None:
        """Play every transition due by ``now``, in order: one by one, or in one go when the target is idle."""
        while self.when <= now:
            if self.step != self._first and _bulk_repairs(self.model) and self.target.idle:  # type: ignore[attr-defined]
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
                    on_draw((delay,), t + delay)
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
    """The sleeping clocks of a fleet: their next transition times and their streams' positions (:class:`ParkedStreams`)
    in arrays.

    Finding the clocks with a transition due is one vectorised comparison, so a million
    sleeping clocks cost nothing until one of them has something to play; and when
    many play at once (:meth:`settle`), their draws are made for all of them together.
    A clock's index is its target's id in the log: ``log(times, failed, ids)``, when
    given, logs the failures and repairs of many targets at once, and ``targets``, when
    given with it, take their draws and transitions at once as well.
    """

    def __init__(self, size: int, log: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None,
                 targets: Targets | None = None) -> None:  # fmt: skip
        self.when = np.full(size, np.inf)  # next transition of each sleeping clock; inf while armed
        self.clocks: list[SleepingClock | None] = [None] * size
        self.models: list[FailureModel] = []  # the clocks' failure models, each once (a fleet's share one, as a rule)
        self.model_of = np.zeros(size, dtype=np.int32)  # each clock's, as an index into models
        self.drawable = np.zeros(size, dtype=bool)  # each clock's draws can be made as arrays: fixed or exponential
        # repairs, and a fleet's streams or a parked position to start from
        self._codes: dict[int, int] = {}
        self.parked = ParkedStreams(size)  # where each clock's stream stands between draws
        self.log = log
        self.targets = targets if log is not None else None  # their lapse takes rows logged already

    def add(self, clock: SleepingClock) -> None:
        """Register ``clock`` (by its index), asleep."""
        self.clocks[clock.index] = clock
        code = self._codes.setdefault(id(clock.model), len(self.models))
        if code == len(self.models):
            self.models.append(clock.model)
        self.model_of[clock.index] = code
        self.drawable[clock.index] = _bulk_repairs(clock.model) and clock.streams is not None  # else drawn once parked
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

    def play_next(self, index: int) -> float:
        """Play sleeping clock ``index``'s next transition now, ahead of its time (its target met it in work played
        ahead); the clock sleeps on to the one after. Returns the transition's instant."""
        clock, at = self.clocks[index], self.when[index]
        assert at != math.inf, "an armed clock's transition is an event already"
        clock.advance()  # type: ignore[union-attr]
        self.when[index] = clock.when  # type: ignore[union-attr]
        return float(at)

    def arm_by(self, index: int, until: float) -> None:
        """Clock ``index``'s target waits until ``until``: a transition due by then must happen as an event."""
        when = self.when[index]
        if when <= until and when != math.inf:  # inf: armed already (or no sleeping clock)
            self.when[index] = math.inf
            self.clocks[index].arm()  # type: ignore[union-attr]

    def settle(self, now: float) -> None:
        """Play every sleeping clock's transitions due by ``now`` (before its rows or accounts are read).

        The clocks of idle targets whose failure model has fixed or exponential repairs
        are drawn for together, one model at a time (:meth:`_draw_together`), the others
        one by one (:meth:`catch_up`); either way each target takes its transitions in
        the order of the clocks, as :meth:`catch_up` on every clock would give them."""
        due = np.flatnonzero(self.when <= now)
        if not len(due):
            return
        clocks: list[SleepingClock] = [self.clocks[i] for i in due.tolist()]  # type: ignore[misc]
        model_of = self.model_of[due]
        idle = np.fromiter((clock.target.idle for clock in clocks), dtype=bool, count=len(clocks))  # type: ignore[attr-defined]
        parked = self.parked.positions[due, 3] != 0  # a PCG64 increment is odd, so never 0
        together = idle & (self.drawable[due] | parked & np.array([_bulk_repairs(m) for m in self.models])[model_of])
        if together.all() and (model_of == model_of[0]).all():  # the usual case: nothing to interleave
            if self.targets is not None:  # told all at once, a chunk at a time
                for i in range(0, len(clocks), CHUNK):
                    chunk = clocks[i : i + CHUNK]
                    self._hand_over_all(chunk, self._draw_together(chunk, now))
                return
            deque(self._draw_in_chunks(clocks, now), maxlen=0)
        else:
            groups: dict[int, list[SleepingClock]] = {}  # by failure model
            for clock, in_bulk, model in zip(clocks, together.tolist(), model_of.tolist()):
                if in_bulk:
                    groups.setdefault(model, []).append(clock)
            chunks = {model: self._draw_in_chunks(group, now) for model, group in groups.items()}
            for clock, in_bulk, model in zip(clocks, together.tolist(), model_of.tolist()):
                if in_bulk:
                    next(chunks[model])
                else:
                    clock.catch_up(now)
        self.when[due] = [clock.when for clock in clocks]  # nothing above reads a settled clock's entry

    def _draw_in_chunks(self, clocks: list[SleepingClock], now: float) -> Iterator[None]:
        """:meth:`_draw_together` on ``CHUNK`` clocks at a time, each chunk drawn when the clocks before it are done,
        and handed over clock by clock."""
        for i in range(0, len(clocks), CHUNK):
            chunk = clocks[i : i + CHUNK]
            yield from self._hand_over(chunk, self._draw_together(chunk, now))

    def _draw_together(self, clocks: list[SleepingClock], now: float) -> Drawn:
        """Play the transitions of idle ``clocks`` due by ``now`` (of one failure model), one standard exponential
        from every clock's stream per step, as arrays (:mod:`fedsim.pcg64_arrays`).

        The transitions, lifetimes and streams' positions are :meth:`SleepingClock._lapse`'s,
        bit for bit: the same draws turned into delays by the same float arithmetic, summed
        in the same order (``math.pow`` for the Weibull's power, as numpy's C draw calls
        it). The transitions are logged here, all at once, when the fleet has a ``log``; the
        clocks and their targets are told by :meth:`_hand_over` or :meth:`_hand_over_all`."""
        model, m = clocks[0].model, len(clocks)
        law, scale, inv = model.repair, model.scale, 1.0 / model.shape
        index = np.fromiter((c.index for c in clocks), dtype=np.intp, count=m)
        phase = np.fromiter((_FIRST if c.step == c._first else _FAILS if c.step == c._down else _REPAIRS for c in clocks),
                            dtype=np.int8, count=m)  # fmt: skip
        started = phase.copy()
        states = self.parked.states.take(index)
        fresh = np.flatnonzero(phase == _FIRST)
        for streams in {id(clocks[j].streams): clocks[j].streams for j in fresh.tolist()}.values():  # one fleet's, as a rule
            mine = fresh[[clocks[j].streams is streams for j in fresh.tolist()]]
            states.put(mine, seeded(streams.words[index[mine]]))  # type: ignore[union-attr]
        t = self.when[index]
        rows: list[tuple[np.ndarray, ...]] = []  # (clocks, times, failures?) of the transitions, step by step
        lives: list[tuple[np.ndarray, ...]] = []  # (clocks, lifetimes, failure times) drawn, step by step
        active = np.arange(m)
        while len(active):
            step = phase[active]
            draws = active if law.exponentials else active[step != _FAILS]  # type: ignore[union-attr]
            x, taken, after = standard_exponentials(states.take(draws))
            states.put(draws[taken], after.take(taken))
            x[~taken] = self.parked.draw_alone(states, draws[~taken])
            e = np.empty(m)
            e[draws] = x
            at = t[active]
            transition = step != _FIRST  # a failure or a repair; the first step only draws
            rows.append((active[transition], at[transition], step[transition] == _FAILS))
            lifetime = step != _FAILS
            delay = law.mean * e[active] if law.exponentials else np.full(len(active), law.mean)  # type: ignore[union-attr]
            powers = e[active[lifetime]].tolist()
            delay[lifetime] = scale * np.fromiter(map(math.pow, powers, repeat(inv)), dtype=np.float64, count=len(powers))
            t[active] = at + delay
            lives.append((active[lifetime], delay[lifetime], t[active[lifetime]]))
            phase[active] = np.where(lifetime, _FAILS, _REPAIRS)
            active = active[t[active] <= now]
        self.parked.states.put(index, states)
        (rows_of, times, failed), (lives_of, lifetimes, ends) = _by_clock(rows), _by_clock(lives)
        if self.log is not None:
            self.log(times, failed, index[rows_of])
        return Drawn(index, t, phase, started, rows_of, times, failed, lives_of, lifetimes, ends)

    def _hand_over(self, clocks: list[SleepingClock], drawn: Drawn) -> Iterator[None]:
        """Tell each of ``clocks`` in turn where it stands, and its target and ``on_draw`` what it drew; yields after
        each clock."""
        times_at, lifetimes_at = _bounds(drawn.rows_of, len(clocks)), _bounds(drawn.lives_of, len(clocks))
        times, lifetimes, ends, logged = drawn.times.tolist(), drawn.lifetimes.tolist(), drawn.ends.tolist(), self.log is not None
        for clock, when, step, failing, lives, lives_end, rows, rows_end in zip(
            clocks, drawn.t.tolist(), drawn.phase.tolist(), (drawn.started != _REPAIRS).tolist(), lifetimes_at, lifetimes_at[1:],
            times_at, times_at[1:]
        ):  # fmt: skip
            clock.when, clock.step = when, clock._down if step == _FAILS else clock._back  # every clock took a step
            if lives < lives_end and clock.on_draw is not None:  # one call for all its lifetimes
                clock.on_draw(lifetimes[lives:lives_end], ends[lives_end - 1])
            if rows < rows_end:
                clock.target.lapse(times[rows:rows_end], failing, logged)  # type: ignore[attr-defined]
            yield

    def _hand_over_all(self, clocks: list[SleepingClock], drawn: Drawn) -> None:
        """:meth:`_hand_over`, the targets told of all the draws and transitions at once: the clocks are the only Python
        loop left."""
        for clock, when, step in zip(clocks, drawn.t.tolist(), drawn.phase.tolist()):
            clock.when, clock.step = when, clock._down if step == _FAILS else clock._back
        self.when[drawn.index] = drawn.t
        self.targets.drawn(drawn.index[drawn.lives_of], drawn.lifetimes, drawn.ends)  # type: ignore[union-attr]
        self.targets.lapse(drawn.index[drawn.rows_of], drawn.times, drawn.failed)  # type: ignore[union-attr]


class Drawn(NamedTuple):
    """What :meth:`Sleepers._draw_together` drew for a chunk of clocks: their indices, next transition times and
    steps, the steps they started from, and their transitions and lifetimes as columns ordered by clock (``rows_of``,
    ``lives_of``: positions in the chunk)."""

    index: np.ndarray
    t: np.ndarray
    phase: np.ndarray
    started: np.ndarray
    rows_of: np.ndarray
    times: np.ndarray
    failed: np.ndarray
    lives_of: np.ndarray
    lifetimes: np.ndarray
    ends: np.ndarray


def _bulk_repairs(model: FailureModel) -> bool:
    """Whether ``model``'s repairs can be drawn for many clocks together (fixed or exponential)."""
    return getattr(model.repair, "exponentials", None) is not None


CHUNK = 1 << 16  # clocks drawn for together: their transitions' columns stay tens of MB, not GBs at a million
_FIRST, _FAILS, _REPAIRS = 0, 1, 2  # a clock's next step: its first lifetime, a failure, a repair


def _by_clock(steps: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Step-by-step ``(clocks, values…)`` arrays as one set of columns, ordered by clock, each clock's in step order."""
    columns = [np.concatenate(column) for column in zip(*steps)]
    order = np.argsort(columns[0], kind="stable")
    return tuple(column[order] for column in columns)


def _bounds(clock: np.ndarray, m: int) -> list[int]:
    """Where each clock ``0…m-1``'s rows start in columns ordered by clock (and where the last one ends)."""
    return [0, *np.cumsum(np.bincount(clock, minlength=m)).tolist()]

