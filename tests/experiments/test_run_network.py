"""The builder turns network and aggregation settings into engine objects; a bad trace stops the CLI in one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hydra import compose, initialize_config_dir

from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.experiments.run import build_network, build_settings


def config(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=[*overrides, SEARCHPATH]))


def test_defaults_keep_identical_private_links_and_constant_aggregation():
    cfg = config()
    net = build_network(cfg)
    assert (net.server_down_bps, net.server_up_bps, net.clients) == (None, None, None)
    assert (net.latency_s, net.down_bps, net.up_bps) == (cfg.network.latency_s, cfg.network.down_mbps * 1e6, cfg.network.up_mbps * 1e6)
    assert build_settings(cfg, 0.5).aggregation.kind == "constant"


def test_server_capacity_spread_and_linear_aggregation():
    cfg = config("data.num_clients=7", "network.server_up_mbps=1000", "network.spread=0.4", "run.aggregation=linear")
    net = build_network(cfg)
    assert net.server_up_bps == 1e9 and net.server_down_bps is None
    assert len(net.clients.up_bps) == 7 and np.all(net.clients.up_bps != cfg.network.up_mbps * 1e6)
    # seeded by run.seed alone: the same links every build, whatever the method (paired comparisons)
    other = config("data.num_clients=7", "network.server_up_mbps=1000", "network.spread=0.4", "strategy=fedprox")
    assert np.array_equal(build_network(other).clients.up_bps, net.clients.up_bps)
    assert build_settings(cfg, 0.5).aggregation.per_param_s == cfg.run.aggregation_per_param_s


def test_trace_rates_reach_the_links(tmp_path):
    trace = tmp_path / "bw.csv"
    trace.write_text("client,time,down_mbps,up_mbps\n0,0,50,5\n0,60,10,1\n")
    net = build_network(config("data.num_clients=2", f"network.trace={trace}"))
    assert [net.clients.schedules(c)[1].rate_at(100) for c in (0, 1)] == [1e6, 1e6]


def test_bad_trace_stops_the_run_with_file_and_line(tmp_path):
    trace = tmp_path / "bw.csv"
    trace.write_text("client,time,down_mbps,up_mbps\n0,0,50,5\n0,60,fast,1\n")
    args = ["data.source.n_samples=400", "model.hidden=[8]", "run.max_rounds=1", "run.figure=false", f"network.trace={trace}", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run([sys.executable, "-m", "fedsim", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("fedsim: error:") and f"{trace}:3:" in lines[0]
