"""What a fleet's clients share: which of them share their speed with another."""

from __future__ import annotations

import numpy as np

from fedsim.fl.client_shared import lone_speeds


def test_clients_of_one_speed_are_not_alone():
    assert list(lone_speeds(np.array([1.0, 2.0, 1.0, 3.0, 2.0 + 1e-12]))) == [0, 1, 0, 1, 1]
    assert list(lone_speeds(np.ones(3))) == [0, 0, 0] and lone_speeds(np.array([])) == bytearray()
