"""FedAvg maths and client selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fedsim.fl.aggregate import weighted_mean
from fedsim.fl.strategies import FedAvg


@given(st.lists(st.integers(1, 1000), min_size=1, max_size=8))
def test_weighted_mean_of_equal_vectors_is_that_vector(weights):
    v = torch.linspace(-1, 1, 5)
    assert torch.allclose(weighted_mean([v] * len(weights), weights), v)


def test_weighted_mean_is_sample_weighted():
    a, b = torch.zeros(3), torch.ones(3)
    assert torch.allclose(weighted_mean([a, b], [1, 3]), torch.full((3,), 0.75))
    with pytest.raises(ValueError):
        weighted_mean([a], [0])


def test_fedavg_selects_fraction_with_minimum():
    g = np.random.default_rng(0)
    assert FedAvg().configure_round(1, list(range(5)), g) == [0, 1, 2, 3, 4]
    picked = FedAvg(fraction=0.3, min_clients=2).configure_round(1, list(range(10)), g)
    assert len(picked) == 3 and len(set(picked)) == 3
    assert len(FedAvg(fraction=0.01, min_clients=2).configure_round(1, list(range(10)), g)) == 2
