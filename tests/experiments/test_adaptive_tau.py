"""The adaptive-τ study's statistics: paired differences, the table, and the search's indistinguishability interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedsim.experiments.adaptive_tau import AdaptiveStudy, interval, paired, table


def grid(excess: dict[float, float], sd: float, seeds: int = 10) -> pd.DataFrame:
    """virtual_s per (τ, seed): a per-seed level shared by every τ (paired traces), plus a mean excess and noise."""
    g = np.random.default_rng(0)
    level = 1000 + 100 * g.standard_normal(seeds)
    return pd.DataFrame([{"tau_s": tau, "seed": s, "virtual_s": level[s] + extra + (sd * g.standard_normal() if tau != 4.0 else 0.0)}
                         for tau, extra in excess.items() for s in range(seeds)])


def test_interval_keeps_the_taus_the_search_could_not_tell_from_the_reference():
    # excess 0 and 2 s are far below the noise of 5 seeds (sd 10 s: t·sd/√5 ≈ 12 s); 200 s is far above
    lo, hi, rows = interval(grid({1.0: 200.0, 2.0: 2.0, 4.0: 0.0, 8.0: 0.0, 16.0: 200.0}, sd=10.0), 4.0, search_seeds=5)
    assert (lo, hi) == (2.0, 8.0)
    assert rows.set_index("tau_s").loc[4.0, "mean_excess_s"] == 0.0
    assert rows["noise_s"].iloc[0] == pytest.approx(2.776 * rows["sd_s"].iloc[0] / np.sqrt(5), rel=1e-3)


def test_paired_differences_remove_the_shared_per_seed_level():
    runs = pd.DataFrame({"method": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2], "virtual_s": [100.0, 90.0, 200.0, 190.0, 300.0, 290.0]})
    diffs = paired(runs, "a").set_index("method")
    assert diffs.loc["b", "mean"] == -10.0 and diffs.loc["b", "lo"] == diffs.loc["b", "hi"] == -10.0  # no spread left


def test_table_is_mean_and_std_per_method_in_the_studys_order():
    runs = pd.DataFrame({"method": ["x", "x", "y", "y"], "seed": [0, 1, 0, 1], "virtual_s": [10.0, 20.0, 30.0, 30.0], "lost_s": 1.0,
                         "checkpoint_s": 2.0, "overhead": 0.5, "final_surrogate_accuracy": 0.9})
    out = table(runs, ["y", "x"])
    assert out["method"].tolist() == ["y", "x"]
    assert out["time to finish (s)"].tolist() == ["30 (0)", "15 (7)"]


def test_the_study_compares_the_issue_s_five_methods_on_ten_seeds_by_default():
    study = AdaptiveStudy()
    assert study.seeds >= 10
    assert {"none", "paper", "best single", "auto", "adaptive"} <= set(study.methods)
