"""The columnar recorder gives the tables and the rows a list of tuples gave."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import simpy

from fedsim.sim.recorder import EVENT_COLUMNS, Recorder, histories_that_fit, stable_order


def test_events_read_back_as_rows_and_as_a_table():
    env = simpy.Environment()
    rec = Recorder(env)
    rows = []
    for t, kind, client, rnd, value in [(0.0, "round_start", -1, 1, 3), (0.5, "failure", 2, -1, math.nan), (1.25, "receive", 1, 1, math.nan)]:
        env._now = t  # the recorder stamps the environment's clock
        rec.event(kind, client=client, round=rnd, value=value)
        rows.append((t, kind, client, rnd, float(value)))
    assert len(rec.events) == 3 and rec.count("failure") == 1 and rec.count("dropout") == 0
    assert [repr(r) for r in rec.events[1:]] == [repr(r) for r in rows[1:]]
    want = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    pd.testing.assert_frame_equal(rec.events_table(), want)


def test_counts_asked_as_the_log_grows_are_the_rows_of_each_kind_so_far():
    rec, rng = Recorder(simpy.Environment()), np.random.default_rng(3)
    kinds = ["failure", "repair", "broadcast", "upload"]
    for step in range(40):
        for kind in rng.choice(kinds[: 1 + step // 10], size=int(rng.integers(0, 5))).tolist():  # new kinds keep coming
            rec.event(kind, client=step)
        if step % 7 == 3:
            rec.failures_and_repairs(np.array([0.5, 1.0]), np.array([True, False]), np.array([step, step]))
        if step % 5 == 0:
            rec.alternating(("failure", "repair"), [0.1, 0.2, 0.3], client=step)
        logged = [row[1] for row in rec.events]
        assert [rec.count(kind) for kind in [*kinds, "dropout"]] == [logged.count(kind) for kind in [*kinds, "dropout"]]
    rec.event("upload", client=0)  # counting left the buffers free to grow


def test_rows_logged_in_one_go_are_the_rows_logged_one_by_one_and_a_released_log_is_emptied():
    logs = [Recorder(simpy.Environment()) for _ in range(2)]
    for rec in logs:
        rec.event("broadcast", client=0, round=1)
    for n, first in [(0, ("failure", "repair")), (1, ("repair", "failure")), (4, ("failure", "repair")), (5, ("repair", "failure"))]:
        times = [0.25 * (n + i) for i in range(n)]  # late rows: sorted into place by time
        logs[0].alternating(first, times, client=n)
        for i, t in enumerate(times):
            logs[1].event(first[i % 2], client=n, at=t)
    assert logs[0].events.names == logs[1].events.names and logs[0].count("repair") == logs[1].count("repair") == 6
    assert [repr(r) for r in logs[0].events] == [repr(r) for r in logs[1].events]  # NaN values: compared as text
    pd.testing.assert_frame_equal(logs[0].events_table(release=True), logs[1].events_table())
    assert len(logs[0].events) == 0 and len(logs[1].events) == 11


def test_update_rows_survive_a_snapshot_round_trip():
    rec = Recorder(simpy.Environment())
    rec.clients.extend(1, [3], [3], [100], [0.25], [0], [0])
    rec.clients.extend(3, [4], [3], [50], [0.5], [1], [1])
    arrays = rec.clients.arrays()
    rec.clients.extend(4, [5], [5], [10], [0.75], [2], [0])  # the copy does not grow with the log
    other = Recorder(simpy.Environment())
    other.clients.load(arrays)
    pd.testing.assert_frame_equal(other.clients_table(), rec.clients_table().iloc[:2])
    assert other.clients_table().iloc[1].to_dict() == {"round": 3, "client": 4, "origin": 3, "num_samples": 50, "train_loss": 0.5, "version": 1, "staleness": 1}


def test_a_rounds_updates_logged_at_once_are_one_row_each_in_order():
    rec = Recorder(simpy.Environment())
    rec.clients.extend(2, [7, 4, 9], [7, 1, 9], [10, 20, 30], [0.5, 0.25, 0.125], [1, 1, 0], [0, 0, 1])
    rec.clients.extend(3, [], [], [], [], [], [])  # a round without updates logs nothing
    table = rec.clients_table()
    assert table.to_dict("list") == {"round": [2, 2, 2], "client": [7, 4, 9], "origin": [7, 1, 9], "num_samples": [10, 20, 30],
                                     "train_loss": [0.5, 0.25, 0.125], "version": [1, 1, 0], "staleness": [0, 0, 1]}  # fmt: skip


def test_a_large_log_keeps_whole_client_histories_and_the_server_rows():
    g = np.random.default_rng(0)
    rec = Recorder(simpy.Environment())
    clients = g.integers(-1, 50, 2000)
    for t, kind, client in zip(g.random(2000), g.choice(["failure", "upload", "detected"], 2000), clients):  # times out of order
        rec.event(str(kind), client=int(client), round=1, value=float(t), at=float(t))
    events = rec.events_table()
    kept = rec.events_table(max_rows=700)
    assert len(kept) <= 700 and (kept["client"] == -1).sum() == (clients == -1).sum()
    inside = set(kept["client"]) - {-1}
    assert inside == set(range(len(inside)))  # the lowest ids, each with its whole history
    assert (clients <= len(inside)).sum() > 700  # the next client's history would not fit
    pd.testing.assert_frame_equal(kept, events[events["client"] <= max(inside)].reset_index(drop=True))  # same rows, same order
    assert np.array_equal(histories_that_fit(clients, 700, chunk=64), histories_that_fit(clients, 700))
    assert histories_that_fit(clients, 2000) is None
    pd.testing.assert_frame_equal(rec.events_table(release=True, max_rows=700), kept)
    assert len(rec.events) == 0  # released as the capped table was built


def test_the_mean_of_a_kind_reads_every_row_however_few_the_table_keeps():
    rec = Recorder(simpy.Environment())
    for client, value in [(5, 1.0), (0, 2.0), (7, 6.0), (3, float("nan"))]:
        rec.event("detected", client=client, value=value)
        rec.event("failure", client=client)
    assert rec.events.mean("detected") == 3.0  # NaN values left out
    assert math.isnan(rec.events.mean("repair")) and math.isnan(rec.events.mean("failure"))
    assert len(rec.events_table(max_rows=2)) == 2  # client 0's two rows: the others' detections are not in the table


def test_counts_from_the_codes_are_a_group_by_of_the_table():
    g = np.random.default_rng(1)
    rec = Recorder(simpy.Environment())
    for t, kind, rnd in zip(np.sort(g.random(3000)), g.choice(["upload", "failure", "repair", "round_start", "broadcast"], 3000), g.integers(-1, 12, 3000)):
        rec.event(str(kind), round=int(rnd), at=float(t))
    want = rec.events_table().groupby(["round", "kind"]).size().reset_index(name="count")
    pd.testing.assert_frame_equal(rec.events.counts(chunk=256), want)  # several chunks, codes not in name order
    pd.testing.assert_frame_equal(Recorder(simpy.Environment()).events.counts(), Recorder(simpy.Environment()).events_table().groupby(["round", "kind"]).size().reset_index(name="count"), check_dtype=False, check_index_type=False)


def test_the_stable_order_is_numpys_stable_argsort():
    rng = np.random.default_rng(8)
    for n in [0, 1, 2, 3, 1000, 100_000]:
        keys = np.round(rng.exponential(5.0, n), 1)  # many ties, in no order
        keys[: n // 3] = np.sort(keys[: n // 3])  # and a sorted run, as a log has
        np.testing.assert_array_equal(stable_order(keys), np.argsort(keys, kind="stable"))
