"""A snapshot's digest of the event log, and its payload as a checkpoint file reads it back."""

from __future__ import annotations

import math

import numpy as np
import simpy
import torch

from fedsim.checkpoint.store import DiskStore
from fedsim.fl.replay import FORMAT, EventDigest, Snapshot
from fedsim.sim.recorder import Recorder

ROWS = [(0.0, "round_start", -1, 1, 3.0), (0.5, "failure", 2, -1, math.nan), (0.25, "repair", 2, -1, math.nan), (1.25, "receive", 1, 1, math.nan)]


def _log(rows=ROWS) -> Recorder:
    rec = Recorder(simpy.Environment())
    for t, kind, client, rnd, value in rows:
        rec.event(kind, client=client, round=rnd, value=value, at=t)
    return rec


def test_the_digest_does_not_depend_on_where_the_calls_fell():
    rec, often, once = Recorder(simpy.Environment()), EventDigest(), EventDigest()
    for t, kind, client, rnd, value in ROWS:  # a run snapshots at several boundaries, its replay checks at one
        rec.event(kind, client=client, round=rnd, value=value, at=t)
        last = often.update(rec.events)
    assert once.update(rec.events) == last == EventDigest().update(_log().events)
    assert often.update(rec.events) == last  # nothing new: the same digest


def test_every_column_and_the_kinds_names_change_the_digest():
    want = EventDigest().update(_log().events)
    for column in range(5):
        rows = [list(r) for r in ROWS]
        rows[1][column] = {0: 0.75, 1: "dropout", 2: 3, 3: 2, 4: 1.0}[column]
        assert EventDigest().update(_log([tuple(r) for r in rows]).events) != want, column
    renamed = _log()
    renamed.events.names[0] = "round_end"  # the same codes, another kind
    assert EventDigest().update(renamed.events) != want


def test_a_snapshot_comes_back_from_disk_with_its_update_log(tmp_path):
    rec = _log()
    rec.clients.extend(1, [3], [3], [100], [0.25], [0], [0])
    rec.clients.extend(1, [4], [4], [50], [0.5], [0], [0])
    snap = Snapshot(round=1, global_flat=torch.zeros(3), strategy={}, rounds=[{"round": 1}], clients=rec.clients.arrays(),
                    client_evals=[], wall_train_s=0.5, wall_eval_s=0.25, events=len(rec.events), digest=EventDigest().update(rec.events))  # fmt: skip
    store = DiskStore(tmp_path)
    store.save("snapshot", snap.payload())
    payload = store.load("snapshot")  # torch.load(weights_only=True)
    assert payload is not None and payload["format"] == FORMAT
    back = Snapshot.from_payload(payload)
    assert back.digest == snap.digest and back.rounds == snap.rounds
    assert back.clients.keys() == snap.clients.keys()
    for name, column in snap.clients.items():
        np.testing.assert_array_equal(back.clients[name], column)
        assert back.clients[name].dtype == column.dtype
