"""End-to-end runs through the real ``fedsim`` entry point, with tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

TINY = ["data.source.n_samples=400", "model.hidden=[16,8,4]", "run.max_rounds=2", "run.figure=false"]


def fedsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedsim", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_single_run_writes_tables_config_figure_and_summary(tmp_path):
    out = tmp_path / "run"
    proc = fedsim(*TINY, "run.figure=true", "failure=weibull", "failure.scale=0.3", "failure.repair_mean_s=0.05", f"hydra.run.dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ["config.yaml", "rounds.csv", "events.csv", "summary.json", "learning_curve.png"]:
        assert (out / name).is_file(), name
    rounds = pd.read_csv(out / "rounds.csv")
    assert list(rounds["round"]) == [1, 2]
    assert {"time_s", "wall_s", "participants", "failures", "loss", "accuracy", "auc"} <= set(rounds.columns)
    events = pd.read_csv(out / "events.csv")
    assert {"failure", "repair", "broadcast", "receive", "aggregate"} <= set(events["kind"])
    assert json.loads((out / "summary.json").read_text())["rounds"] == 2
    assert not list(out.glob("*.tmp"))


@pytest.mark.slow
def test_multirun_leaves_one_directory_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = fedsim("-m", *TINY, "failure=weibull", "failure.scale=5,50", "data.num_clients=2,3", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summaries = sorted(sweep.glob("*/summary.json"))
    assert len(summaries) == 4
    clients = {pd.read_csv(p.parent / "rounds.csv")["selected"].iloc[0] for p in summaries}
    assert clients == {2, 3}


@pytest.mark.slow
def test_bad_config_stops_with_one_line_and_exit_2(tmp_path):
    for override in ["failure.shape=0", "data.bogus=1", "network.up_mbps=-5", "data.num_clients=100000"]:
        proc = fedsim(*TINY, override, f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
        assert proc.returncode == 2, (override, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("fedsim: error:"), proc.stderr
        assert override.split("=")[0] in lines[0]
    assert not (tmp_path / "bad" / "summary.json").exists()
