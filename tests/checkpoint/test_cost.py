"""C(τ) and τ*: closed forms, agreement between the models, the exponential limit, argument checks."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import minimize_scalar

from fedsim.checkpoint import (
    daly_interval,
    expected_cost,
    expected_overhead,
    exponential_optimum,
    minimal_repair_overhead,
    optimal_interval,
    paper_cost,
    renewal_overhead,
    segment_overhead,
    young_interval,
)
from fedsim.checkpoint.weibull import survival, weibull_mean

SHAPES = [0.5, 0.7, 1.0, 1.5, 2.0]


def daly_expectation(tau: float, delta: float, restart: float, mtbf: float) -> float:
    """Daly (2006) eq. 13: expected wall time per unit of work with exponential failures."""
    return mtbf * math.exp(restart / mtbf) * (math.exp((tau + delta) / mtbf) - 1.0) / tau


@pytest.mark.parametrize("ratio", [1e-4, 1e-3, 1e-2, 0.1, 0.5])
@pytest.mark.parametrize("model", ["segment", "renewal"])
def test_k1_optimum_is_dalys_exact_minimiser(ratio: float, model: str) -> None:
    mtbf, restart = 3.0, 0.2
    delta = ratio * mtbf
    exact = minimize_scalar(
        lambda lt: daly_expectation(math.exp(lt), delta, restart, mtbf), bounds=(-15, 5), method="bounded",
        options={"xatol": 1e-12},
    )
    assert exponential_optimum(delta, mtbf) == pytest.approx(math.exp(exact.x), rel=1e-6)
    assert optimal_interval(delta, restart, 1.0, mtbf, model).tau == pytest.approx(math.exp(exact.x), rel=1e-3)


def test_k1_minimal_repair_optimum_picks_the_nearest_whole_number_of_segments() -> None:
    # a finite job picks n = T/τ; with T/τ* ≈ 23 the best n is one of the two around it
    best = optimal_interval(0.01, 0.1, 1.0, 1.0, "minimal_repair", total_work=3.0)
    n_star = 3.0 / exponential_optimum(0.01, 1.0)
    assert round(3.0 / best.tau) in (math.floor(n_star), math.ceil(n_star))


@pytest.mark.parametrize("ratio", [1e-4, 1e-3, 1e-2, 0.05, 0.2])
def test_young_and_daly_sit_within_their_known_error(ratio: float) -> None:
    # expanding M(1 + W0(−e^{−1−ε})) in ε = δ/M: τ* = √(2δM) − 2δ/3 + O(δ^{3/2}M^{-1/2}), so
    # Young's relative error is (√2/3)√ε + O(ε) and Daly's (which matches both terms) is O(ε)
    exact = exponential_optimum(ratio, 1.0)
    young_err = young_interval(ratio, 1.0) / exact - 1
    assert young_err == pytest.approx(math.sqrt(2) / 3 * math.sqrt(ratio), abs=1.5 * ratio)
    assert abs(daly_interval(ratio, 1.0) / exact - 1) <= ratio


@pytest.mark.parametrize("model", ["segment", "renewal"])
def test_k1_models_equal_the_exponential_formula(model: str) -> None:
    tau, delta, restart, mtbf = np.array([0.05, 0.3, 1.2]), 0.02, 0.1, 2.0
    expected = (mtbf + restart) * np.expm1((tau + delta) / mtbf) / tau - 1
    assert expected_overhead(tau, delta, restart, 1.0, mtbf, model) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("tau", "work"), [(0.4, 0.4), (0.1, 2.0), (0.02, 1.0)])
def test_k1_minimal_repair_is_the_exponential_case(tau: float, work: float) -> None:
    # memoryless: a finite job of n equal segments costs exactly n segments of the segment model;
    # the Richardson-extrapolated age grid is accurate to ~1e-5 relative (O(Δ²))
    exact = float(segment_overhead(work / round(work / tau), 0.02, 0.1, 1.0, 1.0))
    assert minimal_repair_overhead(tau, 0.02, 0.1, 1.0, 1.0, total_work=work) == pytest.approx(exact, rel=2e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_segment_model_matches_quadrature(shape: float) -> None:
    tau, delta, restart, scale = 0.3, 0.05, 0.2, 1.5
    w = tau + delta
    up = quad(lambda t: survival(t, shape, scale), 0, w)[0]
    s = survival(w, shape, scale)
    assert segment_overhead(tau, delta, restart, shape, scale) == pytest.approx(
        (up + (1 - s) * restart) / (s * tau) - 1, rel=1e-9
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tau", [1e-3, 0.05, 0.5, 3.0])
def test_renewal_series_matches_brute_force(shape: float, tau: float) -> None:
    delta, restart, scale = 1e-3, 0.1, 1.0
    w = tau + delta
    n = np.arange(1, 3_000_000)
    brute = np.exp(-((n * w / scale) ** shape)).sum()
    expected = (weibull_mean(shape, scale) + restart) / (tau * brute) - 1
    assert renewal_overhead(tau, delta, restart, shape, scale) == pytest.approx(expected, rel=1e-9)


def test_wear_out_hurts_renewal_more_than_segment_and_infant_mortality_the_reverse() -> None:
    # renewal nodes age across checkpoints: worse than a fresh node per segment when the hazard
    # rises (k > 1), better when it falls (k < 1)
    args = (0.2, 0.01, 0.05)
    assert renewal_overhead(*args, 2.0, 1.0) > segment_overhead(*args, 2.0, 1.0)
    assert renewal_overhead(*args, 0.5, 1.0) < segment_overhead(*args, 0.5, 1.0)


@settings(max_examples=30, deadline=None)
@given(
    tau=st.floats(1e-3, 2.0),
    delta=st.floats(0.0, 0.2),
    restart=st.floats(0.0, 1.0),
    shape=st.floats(0.3, 4.0),
)
def test_overheads_exceed_the_checkpoint_share(tau: float, delta: float, restart: float, shape: float) -> None:
    # the total time is at least the work plus its checkpoints
    for model in ("segment", "renewal"):
        assert expected_overhead(tau, delta, restart, shape, 1.0, model) >= delta / tau * (1 - 1e-9)


def test_paper_cost_is_the_documented_first_order_form() -> None:
    tau, delta, restart, shape, scale, work = 0.5, 0.05, 0.2, 1.5, 2.0, 100.0
    fail = 1 - math.exp(-((tau / scale) ** shape))
    assert paper_cost(tau, delta, restart, shape, scale, work) == pytest.approx(
        work / tau * (delta + fail * (restart + tau / 2))
    )


def test_paper_optimum_tends_to_young_for_small_delta() -> None:
    assert optimal_interval(1e-6, 0.0, 1.0, 1.0, "paper").tau == pytest.approx(young_interval(1e-6, 1.0), rel=2e-3)


def test_expected_cost_is_work_times_overhead() -> None:
    assert expected_cost(0.2, 0.01, 0.1, 0.7, 1.0, "renewal", total_work=50.0) == pytest.approx(
        50.0 * renewal_overhead(0.2, 0.01, 0.1, 0.7, 1.0)
    )
    t = 1.0 / 8
    assert expected_cost(t, 0.01, 0.1, 1.5, 1.0, "minimal_repair", total_work=1.0) == pytest.approx(
        minimal_repair_overhead(t, 0.01, 0.1, 1.5, 1.0, 1.0)
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("model", ["segment", "renewal", "paper"])
def test_optimum_is_a_minimum(shape: float, model: str) -> None:
    best = optimal_interval(0.01, 0.05, shape, 1.0, model)
    near = expected_overhead(best.tau * np.array([0.98, 1.02]), 0.01, 0.05, shape, 1.0, model)
    assert np.all(near >= best.overhead)


def test_minimal_repair_with_strong_wear_out_is_infinite() -> None:
    # k = 3 over a job of 5λ: some paths age to where segments (almost) never complete
    assert minimal_repair_overhead(0.5, 0.01, 0.1, 3.0, 1.0, total_work=5.0) == math.inf


def test_minimal_repair_needs_total_work() -> None:
    with pytest.raises(ValueError, match="total_work"):
        expected_overhead(0.1, 0.01, 0.1, 1.5, 1.0, "minimal_repair")
    with pytest.raises(ValueError, match="total_work"):
        optimal_interval(0.01, 0.1, 1.5, 1.0, "minimal_repair")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": -0.1}, "tau"),
        ({"delta": -0.01}, "delta"),
        ({"restart": -1.0}, "restart"),
        ({"shape": 0.0}, "shape"),
        ({"shape": -1.0}, "shape"),
        ({"scale": 0.0}, "scale"),
    ],
)
@pytest.mark.parametrize("model", ["paper", "segment", "renewal", "minimal_repair"])
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, name: str, model: str) -> None:
    args = {"tau": 0.1, "delta": 0.01, "restart": 0.1, "shape": 1.5, "scale": 1.0} | kwargs
    with pytest.raises(ValueError, match=name):
        expected_overhead(**args, model=model, total_work=1.0)
    if name != "tau":
        args.pop("tau")
        with pytest.raises(ValueError, match=name):
            optimal_interval(**args, model=model, total_work=1.0)


def test_unknown_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="model"):
        expected_overhead(0.1, 0.01, 0.1, 1.5, 1.0, "weibull")
