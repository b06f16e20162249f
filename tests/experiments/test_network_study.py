"""The network scaling study: simulated round times on the predictions, knees, figure."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hydra import compose, initialize_config_dir

from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.errors import FedsimError
from fedsim.experiments.network import Grid, configure, n_samples_for, plot, study

TINY = ["model.hidden=[16,8,4]", "run.max_rounds=2", "run.target_accuracy=0.6"]
GRID = Grid(clients=(2, 6), servers_mbps=(None, 0.5), spreads=(0.0, 0.5), real_max_clients=2, rows_per_client=40, curve_points=5)


def config(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=["scenarios=network_scaling", *TINY, *overrides, SEARCHPATH]))


def test_points_lie_on_the_predictions_and_the_capped_server_is_slower(tmp_path):
    points, curves, knees = study(config(), GRID)
    assert len(points) == 2 * (2 + 2 + 1)  # servers × (system-only identical + spread, torch at 2 clients)
    assert points["rel_error"].abs().max() <= 1e-9
    identical = points[points["spread"] == 0]
    assert (identical["round_time_s"] / identical["closed_form_round_s"] - 1).abs().max() <= 1e-2  # rows differ by a few per client
    by = identical[identical["mode"] == "system_only"].set_index(["server", "clients"])["round_time_s"]
    assert by["0.5 Mbit/s", 6] > by["0.5 Mbit/s", 2] > by["unlimited", 2]
    # torch and system-only runs share message sizes and compute: the same round time
    pair = identical[identical["clients"] == 2].groupby("server")["round_time_s"]
    assert (pair.max() - pair.min()).max() <= 1e-9
    assert knees["knee_upload_clients"].tolist() == [0.5 / 20] and knees["knee_download_clients"].tolist() == [0.5 / 100]
    assert set(curves["server"]) == {"unlimited", "0.5 Mbit/s"}
    assert all(p.stat().st_size > 0 for p in plot(points, curves, knees, tmp_path / "fig"))


def test_grid_point_changes_only_its_keys():
    cfg = config()
    point = configure(cfg, clients=7, server_mbps=100.0, spread=0.3, system_only=True, rows_per_client=10)
    assert (point.data.num_clients, point.network.server_up_mbps, point.network.server_down_mbps, point.network.spread) == (7, 100.0, 100.0, 0.3)
    assert point.compute.system_only and point.run == cfg.run and point.data.source.n_samples >= 7 * 10


def test_study_needs_a_source_it_can_size():
    cfg = config()
    with pytest.raises(FedsimError, match="data=synthetic"):
        n_samples_for(replace(cfg, data=replace(cfg.data, source=object())), 2, 10)


def test_study_entry_writes_the_resolved_config_and_calls_the_body(tmp_path, monkeypatch):
    from fedsim.compose import study_entry

    seen = []
    monkeypatch.setattr("sys.argv", ["study", f"hydra.run.dir={tmp_path}", "scenarios=network_scaling", "run.seed=3"])
    study_entry(lambda cfg, out: seen.append((cfg.run.seed, cfg.network.latency_s, out)))
    assert seen == [(3, 0.03, tmp_path)] and "seed: 3" in (tmp_path / "config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # no .hydra folder, no log file
