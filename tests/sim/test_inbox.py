"""A client's inbox, with a reader that ends when it is empty and starts with the next task, hands tasks over as a
simpy.Store does to a reader that waits on it, in fewer events."""

from __future__ import annotations

import simpy

from fedsim.sim.events import Process, call_at
from fedsim.sim.inbox import Inbox


def _trace(waiting: bool):
    """Two readers and a writer at one instant and later; returns (time, who, item) and the events processed.
    ``waiting``: readers wait on a simpy.Store forever; else on an Inbox, as a client's process does."""
    env = simpy.Environment()
    log = []
    boxes = [simpy.Store(env) if waiting else Inbox(env) for _ in range(2)]
    running = [False, False]

    def handle(i, item):
        log.append((env.now, f"reader{i}", item))
        if item.endswith("slow"):
            yield env.timeout(1.0)

    def store_reader(i):
        while True:
            yield from handle(i, (yield boxes[i].get()))

    def inbox_reader(i):  # as Client.run: the first task is there, and the reader ends when the inbox is empty
        item = boxes[i].take()
        while True:
            yield from handle(i, item)
            if not boxes[i].items:
                running[i] = False
                return
            item = yield boxes[i].get()

    def start(i):
        running[i] = True
        Process(env, inbox_reader(i)).run_now()

    def put(i, item):  # as Client.give
        boxes[i].put(item)
        if not waiting and not running[i] and len(boxes[i].items) == 1:
            call_at(env, env.now, lambda _: start(i))

    def other(tag, delay):
        yield env.timeout(delay)
        log.append((env.now, tag, None))

    def writer():
        put(0, "a")
        put(1, "b")
        put(0, "c-slow")
        env.process(other("same-instant", 0.0))
        put(0, "d")
        yield env.timeout(0.5)
        put(1, "e")
        put(0, "f")  # reader 0 is busy until 1.0: it takes f at once then
        yield env.timeout(1.0)
        put(1, "g")

    if waiting:
        for i in range(2):
            env.process(store_reader(i))
    env.process(writer())
    env.run()
    return log, next(env._eid) - len(env._queue)


def test_the_inbox_hands_over_what_a_store_does_in_fewer_events():
    log, events = _trace(waiting=False)
    store_log, store_events = _trace(waiting=True)
    readers = lambda entries: [e for e in entries if e[1].startswith("reader")]  # noqa: E731
    assert readers(log) == readers(store_log)  # each reader: the same tasks, in the same order, at the same times
    assert sorted(log, key=str) == sorted(store_log, key=str)
    assert [x[2] for x in log if x[1] == "reader0"] == ["a", "c-slow", "d", "f"]
    # both: the writer's three steps and its end, the other process's two and its end, reader 0's slow second;
    # the store: its 2 readers' starts, an event for each of the 7 puts and each of the 7 gets they satisfy;
    # the inbox: a start each time a task finds its reader ended or not begun (a and b at 0, e at 0.5, g at 1.5) and
    # a get for each task queued behind another (c-slow, d, f): 16 events against 7
    assert (store_events, events) == (8 + 16, 8 + 7)
    assert log.index((0.0, "same-instant", None)) == 2  # a process started at the put's instant runs after the readers
