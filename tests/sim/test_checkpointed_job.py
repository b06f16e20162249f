"""The checkpointed-job process: exact event logs, and its measured overhead against C(τ)."""

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from fedsim.checkpoint import expected_overhead
from fedsim.seeding import rng
from fedsim.sim.checkpointed_job import run_job
from fedsim.sim.failures import weibull_residual_life, weibull_time_to_failure


def logged(**kwargs):
    events: list[tuple[float, str]] = []
    result = run_job(**kwargs, log=lambda t, kind: events.append((t, kind)))
    return result, events


def test_renewal_event_log_is_exact() -> None:
    # replay the node's stream by hand: first lifetime, then one per restart
    kw = dict(work=3.0, tau=1.0, delta=0.25, restart=0.5, shape=1.5, scale=2.0, model="renewal", seed=7)
    g = rng(7, "checkpointed_job", 0)
    expected, now, age = [], 0.0, 0.0
    life = weibull_time_to_failure(g, 1.5, 2.0)
    for _ in range(3):
        while life - age < 1.25:
            now += life - age
            expected.append((now, "failure"))
            now += 0.5
            expected.append((now, "restart"))
            age, life = 0.0, weibull_time_to_failure(g, 1.5, 2.0)
        now, age = now + 1.25, age + 1.25
        expected.append((now, "checkpoint"))
    result, events = logged(**kw)
    assert [(pytest.approx(t), k) for t, k in expected] == events
    assert result.total_time == pytest.approx(now)
    assert result.checkpoints == 3
    assert result.failures == sum(k == "failure" for _, k in expected)


def test_minimal_repair_keeps_the_node_age_across_failures() -> None:
    kw = dict(work=1.2, tau=0.3, delta=0.05, restart=0.3, shape=2.0, scale=1.0, model="minimal_repair", seed=3)
    g = rng(3, "checkpointed_job", 0)
    fail_age, age, now, expected = weibull_time_to_failure(g, 2.0, 1.0), 0.0, 0.0, []
    for _ in range(4):
        while fail_age - age < 0.35:
            now += fail_age - age
            age = fail_age
            fail_age += weibull_residual_life(g, 2.0, 1.0, age)
            expected += [(now, "failure"), (now + 0.3, "restart")]
            now += 0.3
        now, age = now + 0.35, age + 0.35
        expected.append((now, "checkpoint"))
    _, events = logged(**kw)
    assert [(pytest.approx(t), k) for t, k in expected] == events


def test_segment_model_draws_a_fresh_life_per_attempt() -> None:
    kw = dict(work=1.0, tau=0.25, delta=0.05, restart=0.1, shape=0.7, scale=0.5, model="segment", seed=11)
    result, events = logged(**kw)
    assert [k for _, k in events].count("checkpoint") == 4 == result.checkpoints
    assert result.total_time == pytest.approx(4 * 0.3 + sum(
        t1 - t0 for (t0, k0), (t1, k1) in zip([(0.0, "start"), *events], events) if k1 == "failure"
    ) + 0.1 * result.failures)


def test_job_splits_work_into_equal_chunks() -> None:
    result, events = logged(work=1.0, tau=0.3, delta=0.0, restart=0.0, shape=1.0, scale=1e9, model="renewal", seed=0)
    assert [t for t, _ in events] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # ⌈1/0.3⌉ = 4 chunks
    assert result.overhead == pytest.approx(0.0)


def test_a_node_that_cannot_finish_stops_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="shorten tau"):
        run_job(work=20.0, tau=1.0, delta=0.1, restart=0.0, shape=3.0, scale=1.0, model="minimal_repair", seed=0)


@pytest.mark.parametrize(("kwargs", "name"), [({"tau": 0.0}, "tau"), ({"delta": -1.0}, "delta"), ({"shape": 0.0}, "shape"), ({"model": "x"}, "model")])
def test_bad_arguments_name_themselves(kwargs: dict, name: str) -> None:
    args = dict(work=1.0, tau=0.5, delta=0.1, restart=0.1, shape=1.0, scale=1.0, model="renewal", seed=0) | kwargs
    with pytest.raises(ValueError, match=name):
        run_job(**args)


SHAPES = [0.5, 0.7, 1.0, 1.5, 2.0]
RATIOS = [0.001, 0.01, 0.05]  # δ/λ
MODELS = ["segment", "renewal", "minimal_repair"]
RESTART = 0.02  # R/λ


def cell(shape: float, ratio: float, model: str) -> tuple[float, np.ndarray]:
    """The analytic overhead and the replicates' measured overheads for one cell; λ = 1, τ ≈ √(2δλ)."""
    tau_target = math.sqrt(2 * ratio)
    if model == "minimal_repair":  # finite jobs from a new node, the model's own setting; short
        # enough (0.2λ) that at k = 2 the chance of ageing past all hope (E = ∞) is < 1e-9
        # (at 0.25λ and δ = 0.05λ it is already 1e-5: the analytic value is inf)
        n = max(1, round(0.2 / tau_target))
        tau, work, reps = 0.2 / n, 0.2, 4000
    else:  # long jobs: ~1500λ of work in all, 15 independent replicates
        tau, reps = tau_target, 15
        work = tau * round(100.0 / tau)
    analytic = float(expected_overhead(tau, ratio, RESTART, shape, 1.0, model, total_work=work))
    seed = SHAPES.index(shape) * 100 + RATIOS.index(ratio) * 10 + MODELS.index(model)
    measured = np.array([
        run_job(work=work, tau=tau, delta=ratio, restart=RESTART, shape=shape, scale=1.0, model=model, seed=seed, replicate=r).overhead
        for r in range(reps)
    ])
    return analytic, measured


def test_simulated_overhead_matches_the_analytic_value() -> None:
    """45 cells (5 shapes × 3 δ/λ × 3 models), seeded, so the outcome is deterministic.

    Each cell's replicates are i.i.d. job overheads; the CLT gives a 99% Student-t
    interval for their mean. If every analytic value is exact, each cell misses its
    interval with probability 1%, so 45 cells miss 0.45 on average; we require (a) every
    cell inside its Bonferroni-adjusted interval (family-wise 99%: per-cell level
    1 − 0.01/45) and (b) at most 3 cells outside their own 99% interval
    (P(Bin(45, 0.01) ≥ 4) ≈ 0.001). Renewal is a T → ∞ rate, and a job of 100λ from a
    new node carries an O(M/T) start/end bias; at k = 0.5 (the worst case; measured on
    80 000λ of jobs) it is ≈ 0.003, a sixth of the ≈ 0.02 half-width. Segment and minimal-repair expectations are exact for these
    finite jobs.
    """
    misses, worst = 0, 0.0
    for shape in SHAPES:
        for ratio in RATIOS:
            for model in MODELS:
                analytic, measured = cell(shape, ratio, model)
                se = measured.std(ddof=1) / math.sqrt(measured.size)
                z = abs(measured.mean() - analytic) / se
                dof = measured.size - 1
                misses += z > student_t.ppf(0.995, dof)
                worst = max(worst, z / student_t.ppf(1 - 0.005 / 45, dof))
                assert z < student_t.ppf(1 - 0.005 / 45, dof), (shape, ratio, model, analytic, measured.mean(), se)
    assert misses <= 3, misses
    assert worst < 1.0
