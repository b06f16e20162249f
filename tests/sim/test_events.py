"""fedsim's slotted events are processed where SimPy's own would be, its late-starting process after what is queued,
and a burst of calls where an event apiece would be."""

from __future__ import annotations

import random

import simpy
from simpy.events import URGENT

from fedsim.sim.events import Burst, Instant, Process, call_at, event_at, timeout


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


def _burst_program(seed: int, burst: bool) -> list[tuple[float, str]]:
    """A server that hands out calls at a few instants, each call queueing what its pre-drawn actions say (events at
    this instant, urgent ones, later ones, an interrupt of a waiting process), sometimes with an event of its own
    queued between two calls: the order everything happens in, with a ``Burst`` or an event per call."""
    draw = random.Random(seed)
    plans = [[[draw.choice(("none", "now", "urgent", "urgent-chain", "later", "interrupt")) for _ in range(draw.randint(0, 2))]
              for _ in range(draw.randint(1, 12))] for _ in range(3)]  # fmt: skip
    between = [[draw.random() < 0.2 for _ in calls] for calls in plans]
    env = simpy.Environment()
    log: list[tuple[float, str]] = []

    def note(tag):
        return lambda _: log.append((env.now, tag))

    def victim(tag):
        while True:
            try:
                yield env.timeout(100.0)
            except simpy.Interrupt as stop:
                log.append((env.now, f"{tag} cut by {stop.cause}"))

    victims = [env.process(victim(f"v{i}")) for i in range(2)]

    def call(tag, actions):
        def run(_):
            log.append((env.now, tag))
            for j, action in enumerate(actions):
                name = f"{tag}.{j}"
                if action == "now":
                    call_at(env, env.now, note(name))
                elif action == "urgent":
                    call_at(env, env.now, note(name), URGENT)
                elif action == "urgent-chain":
                    call_at(env, env.now, lambda _, name=name: (log.append((env.now, name)), call_at(env, env.now, note(name + "+"), URGENT)), URGENT)
                elif action == "later":
                    call_at(env, env.now + 0.5, note(name))
                elif action == "interrupt":
                    victims[j % 2].interrupt(name)

        return run

    def server():
        for r, calls in enumerate(plans):
            yield env.timeout(1.0)
            call_at(env, env.now, note(f"r{r} queued first"))
            starts = Burst(env)
            for i, actions in enumerate(calls):
                run = call(f"r{r}c{i}", actions)
                starts.add(run) if burst else call_at(env, env.now, run)
                if between[r][i]:
                    call_at(env, env.now, note(f"r{r} between {i}"))

    env.process(server())
    env.run(until=10.0)
    return log


def test_a_burst_of_calls_runs_where_an_event_apiece_would():
    for seed in range(300):
        assert _burst_program(seed, burst=True) == _burst_program(seed, burst=False), seed


def test_a_burst_queues_one_event_for_calls_added_one_after_another():
    env = simpy.Environment()
    starts, log = Burst(env), []
    for i in range(1000):
        starts.add(lambda _, i=i: log.append(i))
    assert len(env._queue) == 1
    env.run()
    assert log == list(range(1000))
