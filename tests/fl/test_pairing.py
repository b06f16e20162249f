"""Paired comparisons: every strategy sees the same failures, repairs and dropouts for a seed."""

from __future__ import annotations

import pandas as pd
from hydra import compose, initialize_config_dir

from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.experiments.run import run_experiment

TINY = [
    "data.source.n_samples=500", "model.hidden=[16,8,4]", "data.num_clients=4", "run.max_rounds=4",
    "failure=weibull", "failure.shape=0.8", "failure.scale=2.0", "failure.repair_mean_s=0.5", "failure.dropout=0.3",
    "compute.cost_per_sample_s=0.01", "checkpoint.tau_s=0.2",
]  # fmt: skip
STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedyogi", "proposed")


def _run(strategy: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        raw = compose("config", overrides=[f"strategy={strategy}", *TINY, SEARCHPATH])
    return run_experiment(to_config(raw))


def test_failure_repair_and_dropout_draws_do_not_depend_on_the_method():
    results = {s: _run(s) for s in STRATEGIES}
    horizon = min(r.virtual_s for r in results.values())
    trace = {
        s: r.events[r.events.kind.isin(["failure", "repair"]) & (r.events.time_s <= horizon)][["time_s", "kind", "client"]].reset_index(drop=True)
        for s, r in results.items()
    }
    assert len(trace["fedavg"]) > 4  # the comparison has failures to compare
    for s in STRATEGIES[1:]:
        pd.testing.assert_frame_equal(trace["fedavg"], trace[s], obj=f"failure trace of {s}")
    drops = {s: set(map(tuple, r.events.loc[r.events.kind == "dropout", ["client", "round"]].to_numpy())) for s, r in results.items()}
    assert drops["fedavg"]
    for s in ("fedprox", "fedadam", "fedyogi"):  # same clients every round, same rounds: same dropouts
        assert drops[s] == drops["fedavg"]
    # proposed selects fewer clients while it suspects failures, so its dropouts are a subset
    assert drops["proposed"] and drops["proposed"] <= drops["fedavg"]
    # and it hands a dropped client's data to the others, as it does for a failed one
    assert (results["proposed"].events.kind == "redistribute").any()
