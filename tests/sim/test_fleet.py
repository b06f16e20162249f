"""Which failure group each client of a mixed fleet belongs to."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fedsim.seeding import rng
from fedsim.sim.fleet import assign_groups, group_counts


@given(st.integers(1, 500), st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6))
def test_counts_sum_to_the_fleet_and_round_each_share_to_a_neighbour(n, shares):
    counts = group_counts(n, shares)
    exact = n * np.asarray(shares) / sum(shares)
    assert counts.sum() == n
    assert np.all(np.abs(counts - exact) < 1)


def test_assignment_is_seeded_exact_and_shuffled():
    a = assign_groups(20, [0.5, 0.5], rng(0, "failure-group"))
    assert np.bincount(a).tolist() == [10, 10]
    assert np.array_equal(a, assign_groups(20, [0.5, 0.5], rng(0, "failure-group")))
    assert not np.array_equal(a, assign_groups(20, [0.5, 0.5], rng(1, "failure-group")))
    assert not np.array_equal(a, np.sort(a))
