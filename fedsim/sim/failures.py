"""Weibull failure clocks.

The draws are pure functions of a numpy generator, so the same seed gives the same
failure trace whatever else the simulation does. :class:`FailureClock` is the SimPy
process that turns those draws into ``fail``/``repair`` calls on its target, the way
SimPy's machine-shop example breaks machines: a separate process that interrupts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import simpy


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


RepairSampler = Callable[[np.random.Generator], float]


def repair_sampler(kind: str, mean: float, cv: float = 0.0) -> RepairSampler:
    """A repair-time draw: ``fixed`` (always ``mean``), ``exponential``, or ``lognormal`` with coefficient of variation ``cv``."""
    if kind == "fixed":
        return lambda rng: mean
    if kind == "exponential":
        return lambda rng: float(rng.exponential(mean))
    if kind == "lognormal":
        sigma2 = np.log1p(cv**2)
        mu = np.log(mean) - sigma2 / 2
        return lambda rng: float(rng.lognormal(mu, np.sqrt(sigma2)))
    raise ValueError(f"unknown repair distribution {kind!r}; use fixed, exponential or lognormal")


class Failable(Protocol):
    """Anything a failure clock can break: a client, a link, the server."""

    def fail(self) -> None: ...

    def repair(self) -> None: ...


@dataclass(frozen=True)
class FailureModel:
    """Weibull lifetimes (renewed after each repair) and a repair-time law."""

    shape: float
    scale: float
    repair: RepairSampler


def failure_clock(
    env: simpy.Environment,
    target: Failable,
    model: FailureModel,
    rng: np.random.Generator,
    on_draw: Callable[[float], None] | None = None,
):
    """SimPy process: wait a Weibull lifetime, break ``target``, wait the repair, restore it, repeat.

    The unit is as good as new after each repair, so lifetimes are i.i.d. Weibull.
    ``on_draw`` sees every lifetime drawn (tests check them against Weibull(k, λ)).
    """
    while True:
        ttf = weibull_time_to_failure(rng, model.shape, model.scale)
        if on_draw is not None:
            on_draw(ttf)
        yield env.timeout(ttf)
        target.fail()
        yield env.timeout(model.repair(rng))
        target.repair()


def trace_clock(env: simpy.Environment, target: Failable, trace: list[tuple[float, float]]):
    """SimPy process: replay a failure trace of ``(fail_at, repair_after)`` pairs, in virtual seconds.

    Replaying one recorded trace under several recovery policies compares them on
    identical failures.
    """
    for fail_at, repair_after in trace:
        yield env.timeout(max(0.0, fail_at - env.now))
        target.fail()
        yield env.timeout(repair_after)
        target.repair()
