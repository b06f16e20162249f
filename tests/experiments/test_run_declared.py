"""System-only runs of declared client sizes (no data loaded), and event logs too large to write whole."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.data import partition
from fedsim.errors import FedsimError
from fedsim.experiments.rows import declared_sizes
from fedsim.experiments.run import run_and_write, run_experiment
from fedsim.seeding import rng

SYSTEM = ["compute.system_only=true", "failure=weibull", "failure.scale=20.0", "failure.dropout=0.1", "run.max_rounds=2", "run.figure=false"]


def config(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=[*overrides, SEARCHPATH]))


def test_iid_declared_sizes_are_an_iid_splits_sizes():
    cfg = config(*SYSTEM, "data.num_clients=7", "data.declared_rows=1003")
    want = [len(s) for s in partition.iid(1003, 7, rng(0, "partition"))]
    assert declared_sizes(cfg).tolist() == want


def test_dirichlet_declared_sizes_add_up_or_say_what_to_change():
    sizes = declared_sizes(config(*SYSTEM, "data.num_clients=50", "data.declared_rows=100000", "data.partition=dirichlet", "data.alpha=1.0"))
    assert sizes.sum() == 100000 and sizes.min() >= 1 and sizes.std() > 0
    with pytest.raises(FedsimError, match="raise data.declared_rows or data.alpha"):
        declared_sizes(config(*SYSTEM, "data.num_clients=500", "data.declared_rows=600", "data.partition=dirichlet", "data.alpha=0.05"))


def test_declared_rows_need_system_only():
    with pytest.raises(FedsimError, match="compute.system_only=true"):
        config("data.declared_rows=1000")


def test_a_declared_fleet_runs_with_the_declared_models_sizes():
    result = run_experiment(config(*SYSTEM, "data.num_clients=300", "data.declared_rows=600000", "model.hidden=[64,32]"))
    assert len(result.rounds) == 2 and len(result.accounting) == 300
    assert result.accounting["total_s"].eq(result.virtual_s).all()
    accounts = result.accounting[["useful_s", "checkpoint_s", "lost_s", "recovery_s", "waiting_s"]].sum(axis=1)
    assert np.allclose(accounts, result.virtual_s, rtol=1e-9)
    assert {"failure", "dropout", "receive"} <= set(result.events["kind"])


def test_an_event_log_over_the_limit_is_written_as_whole_client_histories_and_counts(tmp_path):
    cfg = config(*SYSTEM, "data.num_clients=200", "data.declared_rows=400000", "run.events_max_rows=300")
    summary = run_and_write(cfg, tmp_path, "resolved: yaml")
    events = pd.read_csv(tmp_path / "events.csv")
    counts = pd.read_csv(tmp_path / "event_counts.csv")
    assert len(events) <= 300 and summary["events_written"] == len(events) and counts["count"].sum() == summary["events_logged"] > 300
    assert summary["failures"] == counts.loc[counts["kind"] == "failure", "count"].sum()  # the summary counts every event
    assert len(pd.read_csv(tmp_path / "accounting.csv")) == 200  # accounting stays exact
    assert json.loads((tmp_path / "summary.json").read_text())["rounds"] == 2


def test_the_detection_latency_is_a_mean_over_every_detection_not_only_the_rows_written(tmp_path):
    cfg = config(*SYSTEM, "data.num_clients=200", "data.declared_rows=400000", "run.events_max_rows=300", "recovery.detection=true")
    summary = run_and_write(cfg, tmp_path, "resolved: yaml")
    whole = run_experiment(cfg).events  # no cap: every row
    detected = whole.loc[whole["kind"] == "detected", "value"].dropna()
    written = pd.read_csv(tmp_path / "events.csv")
    assert 0 < (written["kind"] == "detected").sum() < len(detected)  # the table keeps some detections, the mean reads all
    assert summary["detection_latency_s"] == pytest.approx(detected.mean(), rel=1e-12)
    assert summary["events_logged"] == len(whole)


def test_a_system_only_run_reports_only_what_its_surrogate_models(tmp_path):
    """The surrogate models an accuracy and a loss; no other metric appears, under any name, in the tables or the summary."""
    cfg = config(*SYSTEM, "data.num_clients=12", "data.declared_rows=1200", "run.figure=true")
    summary = run_and_write(cfg, tmp_path, "run: {}\n")
    modelled = {"surrogate_accuracy", "surrogate_loss"}
    assert {k.removeprefix("final_") for k in summary if k.startswith("final_")} == modelled
    assert summary["target_metric"] == "surrogate_accuracy" and summary["task"] == "surrogate"
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    event_loop = {"round", "time_s", "round_time_s", "wall_s", "selected", "participants", "dropouts", "failures"}
    assert set(rounds.columns) == event_loop | modelled | {"train_loss"} and rounds["train_loss"].isna().all()
    assert (tmp_path / "learning_curve.png").is_file()


@pytest.mark.parametrize("objective", ["final_auc", "final_accuracy", "final_loss"])
def test_an_objective_the_surrogate_does_not_model_stops_in_one_line(objective):
    with pytest.raises(FedsimError, match=f"run.objective={objective} names a metric system-only runs .* model only") as err:
        run_experiment(config(*SYSTEM, "data.num_clients=4", "data.declared_rows=400", f"run.objective={objective}"))
    assert "\n" not in str(err.value) and "final_surrogate_accuracy" in str(err.value)
