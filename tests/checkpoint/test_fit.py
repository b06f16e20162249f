"""Weibull MLE with right-censoring, and the failure-log readers."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import weibull_min

from fedsim.checkpoint.fit import event_log_lifetimes, fit_weibull, read_failure_csv, read_failure_log


@pytest.mark.parametrize("shape", [0.5, 1.0, 2.5])
def test_recovers_k_and_lambda_within_5_percent_from_10000_samples(shape: float) -> None:
    x = 3.0 * np.random.default_rng(1).weibull(shape, 10_000)
    fit = fit_weibull(x)
    assert fit.shape == pytest.approx(shape, rel=0.05)
    assert fit.scale == pytest.approx(3.0, rel=0.05)
    assert fit.shape_ci[0] < fit.shape < fit.shape_ci[1]


def test_matches_scipy_without_censoring() -> None:
    x = 2.0 * np.random.default_rng(2).weibull(1.7, 500)
    k, _, lam = weibull_min.fit(x, floc=0)
    fit = fit_weibull(x)
    assert (fit.shape, fit.scale) == pytest.approx((k, lam), rel=1e-4)  # scipy's optimiser stops earlier


def test_unbiased_and_covered_under_30_percent_censoring() -> None:
    # 200 fleets of 2000 nodes, each observed until a random time that censors ~30% of them.
    # The MLE's bias is O(1/n) ≈ 1e-3, far inside the 1% band; the mean over 200 fits has a
    # standard error of ≈ 0.15%, so a 1% band is > 6 SE wide.
    g = np.random.default_rng(3)
    shape, scale, fits = 1.5, 2.0, []
    for _ in range(200):
        life = scale * g.weibull(shape, 2000)
        stop = g.uniform(0, 6.0, 2000)  # ≈ 30% of nodes still up when observation stops
        fits.append(fit_weibull(np.minimum(life, stop), stop < life))
    censored = 1 - np.mean([f.failures / f.n for f in fits])
    assert censored == pytest.approx(0.30, abs=0.02)
    assert np.mean([f.shape for f in fits]) == pytest.approx(shape, rel=0.01)
    assert np.mean([f.scale for f in fits]) == pytest.approx(scale, rel=0.01)
    coverage = np.mean([f.shape_ci[0] <= shape <= f.shape_ci[1] for f in fits])
    assert 0.90 <= coverage <= 0.99  # nominal 95%; Bin(200, 0.95) stays in this band w.p. > 0.99


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_non_positive_durations_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match=r"durations\[1\]"):
        fit_weibull([1.0, bad, 2.0])


def test_too_few_failures_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="two distinct failure"):
        fit_weibull([1.0, 2.0, 3.0], censored=[True, True, False])


def test_csv_reader(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("node,duration,failed\na,1.5,1\nb,2.0,0\nc,0.5,true\n")
    durations, censored = read_failure_log(path)
    assert durations.tolist() == [1.5, 2.0, 0.5]
    assert censored.tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("row", "message"),
    [("x,1", r"line 3: duration 'x'"), ("-2,1", r"line 3: duration '-2' must be > 0"), ("2,maybe", r"line 3: failed 'maybe'")],
)
def test_malformed_csv_row_names_its_line(tmp_path, row: str, message: str) -> None:
    path = tmp_path / "log.csv"
    path.write_text(f"duration,failed\n1.0,1\n{row}\n")
    with pytest.raises(ValueError, match=message):
        read_failure_csv(path)


def test_missing_columns(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("time,failed\n1,1\n")
    with pytest.raises(ValueError, match="duration"):
        read_failure_log(path)


def test_event_log_lifetimes_censor_the_last_one() -> None:
    events = pd.DataFrame(
        [
            (0.0, "round_start", -1),
            (4.0, "failure", 0),
            (5.0, "repair", 0),
            (7.0, "broadcast", 1),
            (9.0, "failure", 0),
            (10.0, "repair", 0),
            (12.0, "aggregate", -1),
        ],
        columns=["time_s", "kind", "client"],
    )
    durations, censored = event_log_lifetimes(events)
    # client 0: 4 (fail), 4 (fail), 2 (censored at 12); client 1: 12 (censored)
    assert durations.tolist() == [4.0, 4.0, 2.0, 12.0]
    assert censored.tolist() == [False, False, True, True]


def test_reads_a_fedsim_events_csv(tmp_path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("time_s,kind,client,round,value\n3.0,failure,0,-1,nan\n4.0,repair,0,-1,nan\n6.0,upload,1,1,nan\n")
    durations, censored = read_failure_log(path)
    assert durations.tolist() == [3.0, 2.0, 6.0]
    assert censored.tolist() == [False, True, True]
