"""Water-filling against closed forms, and the incremental FairShare against the pure allocation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.sim.fairshare import FairShare, fluid_finish_times, max_min_rates

caps_st = st.lists(st.floats(0.1, 100.0), min_size=1, max_size=12)


def test_equal_caps_above_the_fair_share_split_the_capacity_evenly():
    assert max_min_rates(10.0, [5.0] * 4).tolist() == [2.5] * 4


def test_capacity_a_slow_flow_leaves_goes_to_the_others():
    # level: (10 - 1 - 2) / 2 = 3.5 > 2, so flows capped at 1 and 2 keep their caps
    assert max_min_rates(10.0, [10.0, 1.0, 10.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_enough_capacity_gives_every_flow_its_cap():
    assert max_min_rates(100.0, [1.0, 2.0, 3.0]).tolist() == [1.0, 2.0, 3.0]


@given(st.floats(0.1, 200.0), caps_st)
def test_allocation_is_max_min_fair(capacity, caps):
    rates = max_min_rates(capacity, caps)
    assert np.all(rates <= np.asarray(caps) * (1 + 1e-12))
    assert rates.sum() == pytest.approx(min(capacity, sum(caps)), rel=1e-9)
    # a flow below its cap is held back by the link, so no flow runs faster than it
    held = rates < np.asarray(caps) * (1 - 1e-12)
    if held.any():
        assert rates.max() == pytest.approx(rates[held].min(), rel=1e-9)


def test_fluid_identical_flows_finish_together_at_n_bits_over_capacity():
    assert fluid_finish_times([0.0] * 5, [8.0] * 5, [100.0] * 5, 10.0) == pytest.approx([4.0] * 5, rel=1e-12)


def test_fluid_mixed_flows_by_hand():
    # C = 10, caps 2, 10, 10, sizes 8, 12, 36. Phase 1: rates 2, 4, 4 until t = 3 (flow 1 done: 12 bits at 4).
    # flow 0 has 2 left, flow 2 has 24; phase 2: rates 2, 8 until t = 4 (flow 0 done); flow 2 has 16 left at 10: t = 5.6
    assert fluid_finish_times([0, 0, 0], [8, 12, 36], [2, 10, 10], 10.0) == pytest.approx([4.0, 3.0, 5.6], rel=1e-12)


def test_fluid_late_start_and_unlimited_capacity():
    assert fluid_finish_times([0, 1], [10, 10], [10, 10], math.inf) == pytest.approx([1.0, 2.0])
    # C = 10: flow 0 alone at 10 for 0.5 s (5 left); then 5 each until flow 0 ends at 1.5 (flow 1 has 5 left),
    # then flow 1 alone at 10 for 0.5 s
    assert fluid_finish_times([0, 0.5], [10, 10], [10, 10], 10.0) == pytest.approx([1.5, 2.0])


ops_st = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "cap"]), st.floats(0.0, 1.0), st.floats(0.1, 50.0), st.integers(0, 30)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 100.0), ops_st)
def test_incremental_rates_equal_the_water_filling_after_every_change(capacity, ops):
    share, caps, now, fid = FairShare(capacity), {}, 0.0, 0
    for op, dt, value, pick in ops:
        now += dt
        live = sorted(caps)
        if op == "add" or not live:
            share.add(now, fid, 1e9, value)  # flows too big to finish within the test
            caps[fid] = value
            fid += 1
        elif op == "remove":
            victim = live[pick % len(live)]
            share.remove(now, victim)
            del caps[victim]
        else:
            target = live[pick % len(live)]
            share.set_cap(now, target, value)
            caps[target] = value
        got = share.rates()
        want = max_min_rates(capacity, [caps[i] for i in sorted(caps)])
        assert [got[i] for i in sorted(caps)] == pytest.approx(want.tolist(), rel=1e-9)


def drive(share: FairShare, starts, sizes, caps) -> np.ndarray:
    """Play flows through ``share`` event by event, as the SimPy link does; returns finish times."""
    order = np.argsort(starts, kind="stable")
    done = np.full(len(starts), np.nan)
    k = 0
    while k < len(order) or len(share):
        t_start = starts[order[k]] if k < len(order) else math.inf
        t_end = share.next_finish()
        if t_end < t_start:
            for fid in share.pop_finished(t_end):
                done[fid] = t_end
        else:
            share.add(t_start, int(order[k]), sizes[order[k]], caps[order[k]])
            k += 1
    return done


@settings(max_examples=100, deadline=None)
@given(st.floats(1.0, 100.0), st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.1, 100.0), st.floats(0.1, 50.0)), min_size=1, max_size=15))
def test_incremental_finish_times_equal_the_fluid_reference(capacity, flows):
    starts, sizes, caps = (np.array(c) for c in zip(*flows))
    got = drive(FairShare(capacity), starts, sizes, caps)
    assert got == pytest.approx(fluid_finish_times(starts, sizes, caps, capacity), rel=1e-9, abs=1e-9)


def test_identical_flows_finish_at_n_s_over_c_to_1e_9():
    n, bits, c = 1000, 8 * 5.6e6, 1e9
    got = drive(FairShare(c), np.zeros(n), np.full(n, bits), np.full(n, 20e6))
    assert np.all(np.abs(got / (n * bits / c) - 1) <= 1e-9)


def test_rejects_non_positive_capacity_and_caps():
    with pytest.raises(ValueError):
        FairShare(0.0)
    with pytest.raises(ValueError):
        FairShare(1.0).add(0.0, 0, 1.0, 0.0)
