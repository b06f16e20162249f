"""fedsim's slotted events are processed where SimPy's own would be, and its late-starting process after what is queued."""

from __future__ import annotations

import simpy

from fedsim.sim.events import Instant, Process, call_at, event_at, timeout


def _race(wait) -> list[tuple[float, str]]:
    """Three processes waiting at once, two of them on ``wait(env, delay)``: the order and instants they resume in."""
    env = simpy.Environment()
    log = []

    def sleeper(tag, delay, make):
        yield make(env, delay)
        log.append((env.now, tag))

    env.process(sleeper("a", 0.3, wait))
    env.process(sleeper("simpy", 0.3, lambda env, d: env.timeout(d)))
    env.process(sleeper("b", 0.1 + 0.2, wait))  # 0.30000000000000004: a later instant
    env.process(sleeper("c", 0.3, wait))
    env.run()
    return log


def test_a_slotted_timeout_resumes_where_simpys_would():
    assert _race(timeout) == _race(lambda env, delay: env.timeout(delay))
    assert [tag for _, tag in _race(timeout)] == ["a", "simpy", "c", "b"]


def test_an_event_at_an_instant_lands_on_it_exactly_after_what_is_queued_there():
    env = simpy.Environment()
    log = []
    env.timeout(0.1).callbacks.append(lambda _: call_at(env, 0.3, lambda _: log.append((env.now, "at"))))
    env.timeout(0.3).callbacks.append(lambda _: log.append((env.now, "timeout")))
    env.run()
    assert log == [(0.3, "timeout"), (0.3, "at")]  # 0.1 + 0.2 would be 0.30000000000000004
    assert not hasattr(event_at(env, 1.0), "__dict__")


def test_an_instant_hands_its_value_to_the_process_waiting_for_it_and_can_be_interrupted():
    env = simpy.Environment()
    got, cut = [], []
    box = Instant()

    def reader():
        got.append((yield box))

    def sleeper():
        try:
            yield Instant()  # never happens
        except simpy.Interrupt as stop:
            cut.append((env.now, stop.cause))

    env.process(reader())
    victim = env.process(sleeper())
    env.timeout(2.0).callbacks.append(lambda _: box.succeed(env, "task"))
    env.timeout(1.0).callbacks.append(lambda _: victim.interrupt("failure"))
    env.run()
    assert got == ["task"] and cut == [(1.0, "failure")]


def test_a_started_process_runs_after_the_events_queued_for_its_instant():
    env = simpy.Environment()
    log = []

    def body(tag):
        log.append((env.now, tag))
        yield timeout(env, 1.0)
        log.append((env.now, tag))

    def starter():
        yield env.timeout(1.0)
        env.timeout(0).callbacks.append(lambda _: log.append((env.now, "queued")))
        call_at(env, env.now, lambda _: Process(env, body("started")).run_now())  # as a client's first task starts it
        env.process(body("simpy"))  # SimPy starts its processes before what is queued

    env.process(starter())
    env.run()
    assert log == [(1.0, "simpy"), (1.0, "queued"), (1.0, "started"), (2.0, "simpy"), (2.0, "started")]
