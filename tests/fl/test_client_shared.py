"""What a fleet's clients share: which of them share their speed with another, a whole round's seconds of each."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from fedsim.fl.client_shared import ClientShared, lone_speeds
from fedsim.sim.compute import ComputeModel


def test_clients_of_one_speed_are_not_alone():
    assert list(lone_speeds(np.array([1.0, 2.0, 1.0, 3.0, 2.0 + 1e-12]))) == [0, 1, 0, 1, 1]
    assert list(lone_speeds(np.ones(3))) == [0, 0, 0] and lone_speeds(np.array([])) == bytearray()


def test_a_whole_rounds_seconds_summed_for_the_fleet_are_each_clients_own_sums():
    rows = [2000, 7, 130, 2000, 1, 4099, 130, 64] * 50  # one step to hundreds, several clients of each row count
    executor = SimpleNamespace(layout=SimpleNamespace(nbytes=lambda: 4), spec=SimpleNamespace(batch_size=16, epochs=2),
                               num_samples=lambda c: rows[c])  # fmt: skip
    shared = ClientShared(executor, ComputeModel(0.0021))
    speeds = np.random.default_rng(5).lognormal(0, 0.3, len(rows))
    got = shared.whole_rounds(speeds, chunk=7)  # groups split into chunks
    want = [float((shared.costs(c) / float(speeds[c])).sum()) for c in range(len(rows))]  # what a client sums at each round
    assert got.tolist() == want and shared.whole_rounds(np.array([])).tolist() == []
