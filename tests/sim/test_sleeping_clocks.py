"""A sleeping clock plays the transitions and draws of a ticking one, however it catches up."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from fedsim.seeding import rng
from fedsim.sim.failures import FailureClock, FailureModel, repair_sampler
from fedsim.sim.sleeping_clocks import Sleepers, SleepingClock
from fedsim.streams import Streams

from test_failures import Node


class IdleNode(Node):
    """A sleeping clock's target that is always idle: it takes transitions one by one or in bulk."""

    idle = True

    def fail(self, at=None) -> None:
        self.log.append(("fail", at))

    def repair(self, at=None) -> None:
        self.log.append(("repair", at))

    def lapse(self, times, failing, logged=False) -> None:
        self.bulk += len(times)
        for t in times:
            self.log.append(("fail" if failing else "repair", t))
            failing = not failing


@pytest.mark.parametrize("shape", [0.6, 1.0, 1.5, 3.0])
@pytest.mark.parametrize("repair", ["fixed", "exponential", "lognormal"])
def test_a_sleeping_clock_caught_up_in_bulk_plays_the_transitions_and_draws_of_a_ticking_one(shape, repair):
    # the bulk path draws the stream's standard exponentials as one array and turns them into lifetimes and
    # repairs itself; the times, the lifetimes and where the generator is left must be the one-by-one ones
    model = FailureModel(shape, 2.0, repair_sampler(repair, 0.7, cv=0.5))
    env = simpy.Environment()
    ticking, drawn = Node(env), []
    FailureClock(env, ticking, model, rng(3, "failure", 0), lambda ttf, at: drawn.append((ttf, at)))
    env.run(until=400)
    sleepers, node, slept = Sleepers(1), IdleNode(env), []
    node.bulk = 0
    clock = SleepingClock(env, node, model, Streams(3, "failure", np.arange(1)), sleepers, lambda ttf, at: slept.append((ttf, at)))
    for now in [0.0, 0.5, 3.0, 3.0, 10.0, 57.3, 200.0, 400.0]:  # several catch-ups, some with nothing due
        sleepers.catch_up(0, now)
    assert node.log == [(k, t) for k, t in ticking.log] and slept == drawn[: len(slept)] and len(slept) >= len(drawn) - 1
    assert (node.bulk > 0) == (repair != "lognormal")  # lognormal repairs take two normals' worth: one by one
    assert clock.rng is None and sleepers.resume(0).random() == ticking_next_draw(model, len(node.log), drawn)  # parked between draws


def ticking_next_draw(model, transitions, drawn):
    """The next uniform a ticking clock's generator gives after ``transitions`` transitions (its first lifetime drawn again)."""
    g = rng(3, "failure", 0)
    g.weibull(model.shape)  # the first lifetime
    for i in range(transitions):
        model.repair(g) if i % 2 == 0 else g.weibull(model.shape)
    return g.random()
