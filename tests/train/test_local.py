"""Local training is a pure, resumable function of (start, data, seed, steps)."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import tiny_model
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState, batch_bounds, local_train, samples_in_steps, steps_per_epoch


@given(n=st.integers(1, 500), b=st.integers(2, 64))
def test_batches_cover_each_epoch_once_and_never_hold_one_row(n, b):
    bounds = batch_bounds(n, b)
    assert bounds[0] == 0 and bounds[-1] == n
    sizes = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
    assert all(s >= 2 for s in sizes) or n == 1
    assert samples_in_steps(n, b, 0, 3 * steps_per_epoch(n, b)) == 3 * n


@given(n=st.integers(2, 300), b=st.integers(2, 50), a=st.integers(0, 20), k=st.integers(0, 20))
def test_samples_in_steps_is_additive(n, b, a, k):
    assert samples_in_steps(n, b, 0, a) + samples_in_steps(n, b, a, a + k) == samples_in_steps(n, b, 0, a + k)


def _setup(tiny_data):
    x, y = tiny_data["clients"][0]
    model = tiny_model(x.shape[1])
    layout = FlatLayout.of(model)
    return model, layout, layout.flatten(model), x, y


def test_same_inputs_same_result_and_inputs_untouched(tiny_data):
    model, layout, start, x, y = _setup(tiny_data)
    before = start.clone()
    spec = LocalSpec(batch_size=16)
    a = local_train(model, layout, TrainState(start), x, y, spec=spec, seed=3, stop_step=7)
    b = local_train(model, layout, TrainState(start), x, y, spec=spec, seed=3, stop_step=7)
    c = local_train(model, layout, TrainState(start), x, y, spec=spec, seed=4, stop_step=7)
    assert torch.equal(a.state.flat, b.state.flat) and not torch.equal(a.state.flat, c.state.flat)
    assert torch.equal(start, before)


def test_resuming_from_a_midway_state_equals_training_straight_through(tiny_data):
    model, layout, start, x, y = _setup(tiny_data)
    spec = LocalSpec(batch_size=16, epochs=2)
    total = 2 * steps_per_epoch(len(x), 16)
    straight = local_train(model, layout, TrainState(start), x, y, spec=spec, seed=9, stop_step=total)
    half = local_train(model, layout, TrainState(start), x, y, spec=spec, seed=9, stop_step=total // 2 + 1)
    resumed = local_train(model, layout, half.state, x, y, spec=spec, seed=9, stop_step=total)
    assert torch.equal(straight.state.flat, resumed.state.flat)
    assert half.samples + resumed.samples == straight.samples == 2 * len(x)
