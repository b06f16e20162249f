"""A sleeping clock plays the transitions and draws of a ticking one, however it catches up."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from fedsim.seeding import rng
from fedsim.sim.failures import FailureClock, FailureModel, repair_sampler
from fedsim.sim import sleeping_clocks
from fedsim.sim.parked_streams import ParkedStreams
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
            if not logged:
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
    FailureClock(env, ticking, model, rng(3, "failure", 0), lambda ttfs, at: drawn.append((*ttfs, at)))
    env.run(until=400)
    sleepers, node, slept = Sleepers(1), IdleNode(env), []
    node.bulk = 0
    clock = SleepingClock(env, node, model, Streams(3, "failure", np.arange(1)), sleepers, lambda ttfs, at: slept.append((*ttfs, at)))
    for now in [0.0, 0.5, 3.0, 3.0, 10.0, 57.3, 200.0, 400.0]:  # several catch-ups, some with nothing due
        sleepers.catch_up(0, now)
    assert node.log == [(k, t) for k, t in ticking.log] and slept == drawn[: len(slept)] and len(slept) >= len(drawn) - 1
    assert (node.bulk > 0) == (repair != "lognormal")  # lognormal repairs take two normals' worth: one by one
    assert clock.rng is None and sleepers.parked.resume(0).random() == ticking_next_draw(model, len(node.log), drawn)  # parked between draws


def ticking_next_draw(model, transitions, drawn):
    """The next uniform a ticking clock's generator gives after ``transitions`` transitions (its first lifetime drawn again)."""
    g = rng(3, "failure", 0)
    g.weibull(model.shape)  # the first lifetime
    for i in range(transitions):
        model.repair(g) if i % 2 == 0 else g.weibull(model.shape)
    return g.random()


class BusyNode(IdleNode):
    """A target at work: its clock plays transitions one by one even when the fleet settles together."""

    idle = False

    def lapse(self, times, failing, logged=False) -> None:
        raise AssertionError("a target at work takes its transitions one by one")


@pytest.mark.parametrize("repair", ["fixed", "exponential"])
@pytest.mark.parametrize("logged", [False, True])
def test_a_fleet_settled_together_plays_what_each_clock_caught_up_alone_plays(repair, logged, monkeypatch):
    # fresh clocks, clocks caught up before to different instants, busy targets (one by one), two models in one fleet;
    # settling them together must give every target the same transitions, every lifetime drawn in the same
    # order and every stream the same position as catching each clock up alone, in clock order
    n, models = 400, [FailureModel(1.5, 2.0, repair_sampler(repair, 0.7)), FailureModel(0.8, 3.0, repair_sampler("exponential", 0.4))]
    streams = Streams(5, "failure", np.arange(n))

    def fleet(log=None):
        env, sleepers, drawn, fails_at = simpy.Environment(), Sleepers(n, log=log), [], {}

        def on_draw(ttfs, at, i):  # one call per lifetime, or one for a clock's lifetimes drawn together
            drawn.extend((i, ttf) for ttf in ttfs)
            fails_at[i] = at

        nodes = [(BusyNode if i % 50 == 7 else IdleNode)(env) for i in range(n)]
        for i, node in enumerate(nodes):
            node.bulk = 0
            model = models[i % 7 == 3]  # a mixed fleet: its clocks are drawn for together model by model
            SleepingClock(env, node, model, streams, sleepers, lambda ttfs, at, i=i: on_draw(ttfs, at, i), index=i)
        for i in range(0, n, 3):  # a third of the clocks caught up already, each to its own instant
            sleepers.catch_up(i, 0.05 * i)
        return sleepers, nodes, (drawn, fails_at)

    alone_sleepers, alone, alone_drawn = fleet()
    for i in range(n):
        alone_sleepers.catch_up(i, 30.0)
    rows = []
    monkeypatch.setattr(sleeping_clocks, "CHUNK", 64)  # several chunks per model
    draw_alone, slow = ParkedStreams.draw_alone, []
    monkeypatch.setattr(ParkedStreams, "draw_alone", lambda self, states, r: (slow.append(len(r)), draw_alone(self, states, r))[1])
    log = (lambda times, failed, ids: rows.extend(zip(ids.tolist(), times.tolist(), failed.tolist()))) if logged else None
    together_sleepers, together, together_drawn = fleet(log)
    together_sleepers.settle(30.0)
    assert sum(slow) > 0  # some draws needed numpy's second try
    assert together_drawn == alone_drawn
    for i in range(n):
        want = [(k, t) for k, t in alone[i].log]
        got = together[i].log
        if logged:  # the fleet's log holds the rows settled together, in clock order
            got = got + [("fail" if failed else "repair", t) for cid, t, failed in rows if cid == i]
        assert got == want, i
        assert together_sleepers.parked.resume(i).random() == alone_sleepers.parked.resume(i).random()


class RecordingTargets:
    """Targets that keep what they are told at once, as the rows each clock's ``on_draw`` and target would have had."""

    def __init__(self) -> None:
        self.lifetimes, self.fails_at, self.rows = [], {}, []

    def drawn(self, ids, lifetimes, ends) -> None:
        self.lifetimes.extend(zip(ids.tolist(), lifetimes.tolist()))
        self.fails_at.update(zip(ids.tolist(), ends.tolist()))  # each client's last one wins, as with on_draw

    def lapse(self, ids, times, failed) -> None:
        self.rows.extend(zip(ids.tolist(), times.tolist(), failed.tolist()))


def test_targets_told_at_once_hear_what_their_clocks_tell_them_one_by_one(monkeypatch):
    # one model, every target idle (the usual case, handed over all at once when the targets are given): the lifetimes
    # (in order), the last failure times and the transitions must be the ones the clocks hand over one by one
    n, model = 300, FailureModel(1.5, 2.0, repair_sampler("exponential", 0.7))
    streams = Streams(9, "failure", np.arange(n))
    monkeypatch.setattr(sleeping_clocks, "CHUNK", 64)

    def settled(targets):
        env, rows, drawn, fails_at = simpy.Environment(), [], [], {}
        sleepers = Sleepers(n, log=lambda times, failed, ids: rows.extend(zip(ids.tolist(), times.tolist(), failed.tolist())), targets=targets)

        def on_draw(ttfs, at, i):
            drawn.extend((i, ttf) for ttf in ttfs)
            fails_at[i] = at

        nodes = [IdleNode(env) for _ in range(n)]
        for i, node in enumerate(nodes):
            node.bulk = 0
            SleepingClock(env, node, model, streams, sleepers, lambda ttfs, at, i=i: on_draw(ttfs, at, i), index=i)
        for i in range(0, n, 4):  # some clocks caught up alone first, each to its own instant (their targets told)
            sleepers.catch_up(i, 0.07 * i)
        caught_up = sum(node.bulk for node in nodes)
        sleepers.settle(25.0)
        return sleepers, [node.bulk for node in nodes], caught_up, drawn, fails_at, rows

    one_by_one, bulk, caught_up, drawn, fails_at, rows = settled(None)
    targets = RecordingTargets()
    at_once, quiet, quiet_caught_up, early_drawn, early_fails_at, logged_rows = settled(targets)
    assert sum(bulk) - caught_up == len(rows) > n and sum(quiet) == quiet_caught_up  # the targets heard none of it
    assert targets.rows == logged_rows == rows
    assert early_drawn + targets.lifetimes == drawn and early_fails_at | targets.fails_at == fails_at
    assert [at_once.parked.resume(i).random() for i in range(n)] == [one_by_one.parked.resume(i).random() for i in range(n)]
    assert (at_once.when == one_by_one.when).all()
