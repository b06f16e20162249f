"""Resuming from a snapshot gives the tables of an uninterrupted run, for every strategy."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import reproducible_tables
from hydra import compose, initialize_config_dir

from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.errors import FedsimError
from fedsim.experiments.run import run_experiment
from fedsim.fl.replay import Snapshot

TINY = [
    "model.hidden=[16,8]", "data.num_clients=4", "data.max_rows=600", "run.max_rounds=8", "strategy.lr=0.01",
    "failure=weibull", "failure.shape=0.8", "failure.scale=3.0", "failure.repair_mean_s=1.0", "failure.dropout=0.2",
    "compute.cost_per_sample_s=0.01", "compute.threads=1",
]  # fmt: skip
CASES = {
    "fedavg": ["strategy=fedavg"],
    "proposed": ["strategy=proposed", "run.patience=0", "failure.server=true", "failure.server_scale=20.0", "failure.server_repair_mean_s=1.0"],
    "fedadam": ["strategy=fedadam", "checkpoint=every_tau", "recovery=restore_checkpoint", "checkpoint.tau_s=0.3"],
    "fedl2p": ["strategy=fedl2p", "strategy.finetune_steps=2", "strategy.meta_hidden=8", "data.partition=dirichlet"],
    # updates dropped as divergent: the replay must drop the same ones
    "diverged": ["strategy.lr=1e9", "run.on_divergence=skip_client"],
    # a shared server link, spread client links, aggregation time linear in the updates
    "network": ["network.server_up_mbps=2.0", "network.server_down_mbps=5.0", "network.spread=0.5", "run.aggregation=linear"],
    # asynchronous: clients are still training at every snapshot, and restored ones come back stale
    "fedbuff": ["strategy=fedbuff", "strategy.buffer_size=2", "strategy.concurrency=3", "checkpoint=every_tau", "recovery=restore_checkpoint", "checkpoint.tau_s=0.3"],
    "fedasync": ["strategy=fedasync", "strategy.concurrency=2", "failure.server=true", "failure.server_scale=20.0", "failure.server_repair_mean_s=1.0", "checkpoint=every_tau", "checkpoint.tau_s=0.3"],
}


def _cfg(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=[*TINY, *overrides, SEARCHPATH]))


def _tables(result) -> dict[str, pd.DataFrame]:
    return reproducible_tables(result, "events", "accounting", "clients", "client_evals")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_resumed_run_has_the_uninterrupted_runs_tables(case):
    cfg = _cfg(*CASES[case])
    taken: list[Snapshot] = []
    reference = run_experiment(cfg, on_snapshot=lambda make: taken.append(make()))
    assert len(taken) >= 5
    kinds = set(reference.events["kind"])
    assert {"failure", "repair", "dropout"} <= kinds  # the timeline has something to replay
    assert "diverged" in kinds if case == "diverged" else "work_lost" in kinds
    if case == "proposed":
        assert {"server_failure", "server_restore", "checkpoint", "restore", "redistribute"} <= kinds
    want = _tables(reference)
    for snap in (taken[0], taken[len(taken) // 2], taken[-1]):
        # the snapshot as it would come back from disk
        resumed = run_experiment(cfg, resume=Snapshot.from_payload(snap.payload()))
        for name, table in _tables(resumed).items():
            pd.testing.assert_frame_equal(table, want[name], obj=f"{case} {name} after round {snap.round}")
        assert resumed.final.equal(reference.final), f"{case}: final model differs after resuming at round {snap.round}"


def test_a_snapshot_of_another_history_is_refused():
    cfg = _cfg(*CASES["fedavg"])
    taken: list[Snapshot] = []
    run_experiment(cfg, on_snapshot=lambda make: taken.append(make()))
    other = _cfg(*CASES["fedavg"], "failure.scale=2.5")  # another failure trace
    with pytest.raises(FedsimError, match="did not reproduce the snapshot"):
        run_experiment(other, resume=taken[2])


def test_measured_aggregation_times_are_replayed_not_measured_again():
    """A measured cost differs run to run, so only the history up to the snapshot can be compared:
    the replay reuses the recorded times (else its events would not match and it would stop)."""
    cfg = _cfg(*CASES["fedavg"], "run.aggregation=measured", "run.aggregation_scale=1000")
    taken: list[Snapshot] = []
    reference = run_experiment(cfg, on_snapshot=lambda make: taken.append(make()))
    snap = taken[3]
    resumed = run_experiment(cfg, resume=Snapshot.from_payload(snap.payload()))
    k = len(snap.rounds)
    pd.testing.assert_frame_equal(resumed.rounds.drop(columns="wall_s").iloc[:k], reference.rounds.drop(columns="wall_s").iloc[:k])
    upto = reference.events["time_s"] <= snap.rounds[-1]["time_s"]
    pd.testing.assert_frame_equal(resumed.events[: int(upto.sum())], reference.events[upto])
