"""A round's bookkeeping: updates received ahead (work played when it starts) count as in only when they arrive."""

from __future__ import annotations

import simpy

from fedsim.fl.messages import Update
from fedsim.fl.round import Round
from fedsim.sim.recorder import Recorder


def _update(cid: int) -> Update:
    return Update(client=cid, round=1, flat=None, num_samples=1, loss=0.0, origin=cid)  # type: ignore[arg-type]


def _round(env: simpy.Environment, clients: list[int]) -> tuple[Round, list[float]]:
    rnd = Round(env, 1, None, clients, Recorder(env), uncut=True)  # type: ignore[arg-type]
    all_in: list[float] = []
    rnd.all_in.callbacks.append(lambda _: all_in.append(env.now))
    return rnd, all_in


def test_updates_received_ahead_are_all_in_when_the_last_one_arrives():
    env = simpy.Environment()
    rnd, all_in = _round(env, [0, 1, 2])

    def late_client():
        yield env.timeout(4.0)
        assert rnd.receive(_update(2))  # now: the last one owed, but an update received ahead is still on its way

    assert rnd.receive(_update(0), at=5.0) and rnd.receive(_update(1), at=3.0)
    env.process(late_client())
    env.run()
    assert all_in == [5.0]
    events = rnd.recorder.events_table()
    assert events[["time_s", "client"]].values.tolist() == [[3.0, 1], [4.0, 2], [5.0, 0]]  # each receipt at its own instant


def test_a_round_owed_work_after_its_updates_received_ahead_waits_for_that_work():
    env = simpy.Environment()
    rnd, all_in = _round(env, [0, 1])

    def late_client():
        yield env.timeout(7.0)
        rnd.receive(_update(1))

    rnd.receive(_update(0), at=5.0)
    env.process(late_client())
    env.run()
    assert all_in == [7.0]


def test_giving_up_on_work_after_the_round_is_due_does_not_close_it_early():
    env = simpy.Environment()
    rnd, all_in = _round(env, [0, 1])

    def dropouts():
        yield env.timeout(1.0)
        rnd.dropped(1)  # nothing owed any more: all in at 5
        yield env.timeout(1.0)
        rnd.give_up((1, 1))  # again: still all in at 5, not now

    rnd.receive(_update(0), at=5.0)
    env.process(dropouts())
    env.run()
    assert all_in == [5.0] and rnd.dropouts == {1}
