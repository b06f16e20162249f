"""τ searched by hydra's optuna sweeper through the real ``fedsim`` entry point (needs the optuna extra)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the optuna extra is not installed (pip install -e '.[optuna]')")

from fedsim.cli import preflight  # noqa: E402
from fedsim.collect import collect  # noqa: E402
from fedsim.config import register_configs  # noqa: E402

register_configs()
SMALL = ["data.num_clients=4", "data.source.n_samples=400", "run.max_rounds=3", "run.repeats=2", "hydra.sweeper.n_trials=3"]


@pytest.mark.slow
def test_the_sweep_returns_the_mean_objective_over_the_same_seeds_and_keeps_the_best(tmp_path):
    sweep = tmp_path / "search"
    proc = subprocess.run([sys.executable, "-m", "fedsim", "scenarios=tau_search", *SMALL, f"hydra.sweep.dir={sweep}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    trials, written = [], {}
    for seeds in sorted(sweep.glob("*/seeds.csv")):
        table = pd.read_csv(seeds)
        assert table["seed"].tolist() == [100, 101]  # every trial meets the same failure traces
        tau = OmegaConf.load(seeds.parent / "config.yaml").checkpoint.tau_s
        trials.append((table["virtual_s"].mean(), tau))
        written[tau] = table["checkpoints"].mean()
    assert len(trials) == 3 and len({t for _, t in trials}) == 3
    # the τ a trial's config names is the one its runs used: same seeds and work, so a longer τ writes fewer checkpoints
    by_tau = [written[t] for t in sorted(written)]
    assert by_tau == sorted(by_tau, reverse=True) and len(set(by_tau)) == 3
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert (best.best_value, best.best_params["checkpoint.tau_s"]) == pytest.approx(min(trials))
    jobs = collect(sweep).jobs  # an optuna sweep collects too: its trials, not a grid
    assert jobs["status"].tolist() == ["complete"] * 3 and jobs["summary.objective"].eq("virtual_s").all()


def test_preflight_checks_both_ends_of_a_searched_interval():
    assert preflight(["scenarios=tau_search"])["__trials__"] == "24"  # a valid search space passes; n_trials counts the jobs
    with pytest.raises(Exception, match="checkpoint.tau_s=-1.0 is out of range"):
        preflight(["scenarios=tau_search", "checkpoint.tau_s=tag(log, interval(-1.0, 5.0))"])
