"""Weibull helpers: closed forms, k = 1 reduces to the exponential, argument checks."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad

from fedsim.checkpoint import weibull_fail_prob, weibull_mean
from fedsim.checkpoint.weibull import cumulative_hazard, hazard, survival

pos = st.floats(0.05, 20.0)


@given(tau=pos, shape=st.floats(0.2, 5.0), scale=pos)
def test_fail_prob_is_one_minus_survival(tau: float, shape: float, scale: float) -> None:
    p = weibull_fail_prob(tau, shape, scale)
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(1.0 - survival(tau, shape, scale), abs=1e-12)


def test_exponential_case() -> None:
    assert weibull_fail_prob(2.0, 1.0, 4.0) == pytest.approx(1 - math.exp(-0.5))
    assert weibull_mean(1.0, 4.0) == pytest.approx(4.0)
    assert hazard(np.array([0.1, 3.0]), 1.0, 4.0) == pytest.approx([0.25, 0.25])


@pytest.mark.parametrize("shape", [0.5, 1.5, 3.0])
def test_mean_and_hazard_match_their_integrals(shape: float) -> None:
    assert weibull_mean(shape, 2.0) == pytest.approx(quad(lambda t: survival(t, shape, 2.0), 0, np.inf)[0], rel=1e-7)
    h = quad(lambda t: hazard(t, shape, 2.0), 0, 1.3)[0]
    assert h == pytest.approx(cumulative_hazard(1.3, shape, 2.0), rel=1e-7)


def test_fail_prob_is_monotone_in_tau() -> None:
    p = weibull_fail_prob(np.geomspace(1e-3, 10, 50), 0.7, 1.0)
    assert np.all(np.diff(p) > 0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"tau": 0.0}, "tau"), ({"tau": -1.0}, "tau"), ({"shape": 0.0}, "shape"), ({"scale": -2.0}, "scale")],
)
def test_bad_arguments_name_themselves(kwargs: dict, name: str) -> None:
    args = {"tau": 1.0, "shape": 1.0, "scale": 1.0} | kwargs
    with pytest.raises(ValueError, match=name):
        weibull_fail_prob(**args)
