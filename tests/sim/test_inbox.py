"""A client's inbox hands tasks over as a simpy.Store does, one event sooner."""

from __future__ import annotations

import simpy

from fedsim.sim.inbox import Inbox


def _trace(make):
    """Two readers and a writer at one instant and later; returns (time, who, item) and the events processed."""
    env = simpy.Environment()
    log = []
    boxes = [make(env), make(env)]

    def reader(i):
        while True:
            item = yield boxes[i].get()
            log.append((env.now, f"reader{i}", item))
            if item.endswith("slow"):
                yield env.timeout(1.0)

    def other(tag, delay):
        yield env.timeout(delay)
        log.append((env.now, tag, None))

    def writer():
        boxes[0].put("a")
        boxes[1].put("b")
        boxes[0].put("c-slow")
        env.process(other("same-instant", 0.0))
        boxes[0].put("d")
        yield env.timeout(0.5)
        boxes[1].put("e")
        boxes[0].put("f")  # reader 0 is busy until 1.0: it takes f at once then
        yield env.timeout(1.0)
        boxes[1].put("g")

    for i in range(2):
        env.process(reader(i))
    env.process(writer())
    env.run()
    return log, next(env._eid) - len(env._queue)


def test_the_inbox_hands_over_what_a_store_does_in_fewer_events():
    log, events = _trace(Inbox)
    store_log, store_events = _trace(simpy.Store)
    readers = lambda entries: [e for e in entries if e[1].startswith("reader")]  # noqa: E731
    assert readers(log) == readers(store_log)  # each reader: the same tasks, in the same order, at the same times
    assert sorted(log, key=str) == sorted(store_log, key=str)
    assert [x[2] for x in log if x[1] == "reader0"] == ["a", "c-slow", "d", "f"]
    assert events == store_events - 7  # one event fewer for each of the 7 puts
    assert log.index((0.0, "same-instant", None)) == 2  # a process started at the put's instant now runs after the readers
