"""Weibull failure clocks.

The draws are pure functions of a numpy generator, so the same seed gives the same
failure trace whatever else the simulation does. :class:`FailureClock` turns those
draws into ``fail``/``repair`` calls on its target, the way SimPy's machine-shop example
breaks machines: a separate clock that interrupts. A clock is a chain of timeouts with
callbacks rather than a generator process: it schedules exactly the events such a
process would (started by an urgent event, then one timeout per wait, each step run
when its timeout is processed), at about half the cost and memory, which a million
clients each with a clock notice. A client's clock can do with fewer still: a
:class:`~fedsim.sim.sleeping_clocks.SleepingClock` schedules only the transitions
that interrupt something, and plays the others late, at their own times, when
someone looks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
import simpy
from simpy.events import URGENT

from fedsim.sim.events import Instant, call_at
from fedsim.streams import Streams


def weibull_time_to_failure(rng: np.random.Generator, shape: float, scale: float) -> float:
    """One Weibull(shape k, scale λ) lifetime: P(T ≤ t) = 1 − exp(−(t/λ)^k)."""
    return float(scale * rng.weibull(shape))


def weibull_residual_life(rng: np.random.Generator, shape: float, scale: float, age: float) -> float:
    """Remaining life of a Weibull unit that has survived to ``age`` (minimal repair).

    Inverts the conditional survival S(age + x)/S(age): with E ~ Exp(1),
    age + x = λ((age/λ)^k + E)^(1/k).
    """
    e = rng.exponential()
    return float(scale * ((age / scale) ** shape + e) ** (1.0 / shape) - age)


@dataclass(frozen=True)
class RepairLaw:
    """A repair-time draw: ``fixed`` (always ``mean``), ``exponential``, or ``lognormal`` with coefficient of variation ``cv``."""

    kind: str
    mean: float
    cv: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "exponential", "lognormal"):
            raise ValueError(f"unknown repair distribution {self.kind!r}; use fixed, exponential or lognormal")

    def __call__(self, rng: np.random.Generator) -> float:
        if self.kind == "fixed":
            return self.mean
        if self.kind == "exponential":
            return float(rng.exponential(self.mean))
        return float(rng.lognormal(*self._lognormal))

    @cached_property
    def _lognormal(self) -> tuple[float, float]:
        """(μ, σ) of the log of a lognormal repair with this mean and cv, computed once."""
        sigma2 = np.log1p(self.cv**2)
        return np.log(self.mean) - sigma2 / 2, np.sqrt(sigma2)

    @property
    def exponentials(self) -> int | None:
        """Standard exponentials one draw takes (numpy scales one for an exponential), or None when not that simple."""
        return {"fixed": 0, "exponential": 1}.get(self.kind)


RepairSampler = Callable[[np.random.Generator], float]


def repair_sampler(kind: str, mean: float, cv: float = 0.0) -> RepairLaw:
    """A repair-time draw (see :class:`RepairLaw`)."""
    return RepairLaw(kind, mean, cv)


class Repairable:
    """Mixin for a failure clock's target that others wait on (a client's task, a link's sender).

    The event of the next repair is made only when something waits for it: most
    failures hit idle nodes, and a million clients would otherwise each carry one.
    """

    __slots__ = ()
    env: simpy.Environment
    repaired: simpy.Event | None

    def back_up(self) -> simpy.Event:
        """The event of this node's next repair."""
        if self.repaired is None:
            self.repaired = self.env.event()
        return self.repaired

    def wake_waiters(self) -> None:
        """The node is back: whatever waits for its repair goes on."""
        if self.repaired is not None:
            self.repaired.succeed()
            self.repaired = None


class Failable(Protocol):
    """Anything a failure clock can break: a client, a link, the server."""

    def fail(self) -> None: ...

    def repair(self) -> None: ...


@dataclass(frozen=True)
class FailureModel:
    """Weibull lifetimes (renewed after each repair) and a repair-time law."""

    shape: float
    scale: float
    repair: RepairSampler  # a RepairLaw, or any draw of your own (its clocks then play transitions one by one)


def start_now(env: simpy.Environment, callback: Callable[[Instant], None]) -> None:
    """Call ``callback`` at the current instant, before the ordinary events queued for it, as SimPy starts a process."""
    call_at(env, env.now, callback, URGENT)


Step = Callable[[float], tuple[float, "Step"]]  # a transition at virtual time t: (delay to the next one, the next one)


class FailureClock:
    """Waits a Weibull lifetime, breaks ``target``, waits the repair, restores it, and so on.

    The unit is as good as new after each repair, so lifetimes are i.i.d. Weibull.
    ``on_draw(ttfs, fails_at)`` sees every lifetime drawn, in order, the last failing
    at ``fails_at`` (tests check them against Weibull(k, λ)). ``rng`` is the clock's
    generator, or a fleet's :class:`~fedsim.streams.Streams` and the clock's ``index``
    in it: then the generator is made for the first lifetime and dropped again until the
    unit fails (most never do in a short run), and made anew then, replaying that first
    draw, so the draws are the same either way. Each transition is a step that says when
    the next one falls; this clock schedules every step as a SimPy event,
    :class:`SleepingClock` only those that someone will see.
    """

    __slots__ = ("env", "target", "model", "rng", "on_draw", "streams", "index", "step")

    def __init__(
        self,
        env: simpy.Environment,
        target: Failable,
        model: FailureModel,
        rng: np.random.Generator | Streams,
        on_draw: Callable[[Sequence[float], float], None] | None = None,
        index: int = 0,
    ) -> None:
        self.env, self.target, self.model, self.on_draw = env, target, model, on_draw
        self.rng, self.streams, self.index = (None, rng, index) if isinstance(rng, Streams) else (rng, None, 0)
        self.step: Step = self._first
        self.start()

    def start(self) -> None:
        """Take the first step at time 0, as a process would start."""
        start_now(self.env, self._fire)

    def _fire(self, _: simpy.Event) -> None:
        delay, self.step = self.step(self.env.now)
        self.env.timeout(delay).callbacks.append(self._fire)

    # --- the steps ------------------------------------------------------------------
    def _first(self, t: float) -> tuple[float, Step]:
        """The first lifetime; from a fleet's streams, with a generator kept only if the unit fails."""
        return self._live(self.rng if self.rng is not None else self.streams.generator(self.index), t)  # type: ignore[union-attr]

    def _live(self, g: np.random.Generator, t: float) -> tuple[float, Step]:
        ttf = weibull_time_to_failure(g, self.model.shape, self.model.scale)
        if self.on_draw is not None:
            self.on_draw((ttf,), t + ttf)
        return ttf, self._down

    def _down(self, t: float) -> tuple[float, Step]:
        self.breaks(t)
        return self.model.repair(self._generator()), self._back

    def _generator(self) -> np.random.Generator:
        """The clock's generator past the first lifetime: made anew from the stream (replaying that draw) if dropped."""
        if self.rng is None:
            self.rng = self.streams.generator(self.index)  # type: ignore[union-attr]
            weibull_time_to_failure(self.rng, self.model.shape, self.model.scale)
        return self.rng

    def _back(self, t: float) -> tuple[float, Step]:
        self.restores(t)
        return self._live(self.rng, t)  # type: ignore[arg-type]

    def breaks(self, t: float) -> None:
        """Break the target (now, at ``t``)."""
        self.target.fail()

    def restores(self, t: float) -> None:
        """Repair the target (now, at ``t``)."""
        self.target.repair()


class TraceClock:
    """Replays a failure trace of ``(fail_at, repair_after)`` pairs on ``target``, in virtual seconds.

    Replaying one recorded trace under several recovery policies compares them on
    identical failures.
    """

    __slots__ = ("env", "target", "steps", "repair_after")

    def __init__(self, env: simpy.Environment, target: Failable, trace: list[tuple[float, float]]) -> None:
        self.env, self.target, self.steps, self.repair_after = env, target, iter(trace), 0.0
        start_now(env, self._up)

    def _up(self, _: simpy.Event | None = None) -> None:
        step = next(self.steps, None)
        if step is not None:
            fail_at, self.repair_after = step
            self.env.timeout(max(0.0, fail_at - self.env.now)).callbacks.append(self._down)

    def _down(self, _: simpy.Event) -> None:
        self.target.fail()
        self.env.timeout(self.repair_after).callbacks.append(self._back)

    def _back(self, _: simpy.Event) -> None:
        self.target.repair()
        self._up()
