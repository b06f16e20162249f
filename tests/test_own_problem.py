"""examples/own_problem, the README's "Bring your own" proof: its documented command runs as written, from the repo root."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pandas as pd
import pytest
import torch

from fedsim.compose import REPO
from fedsim.fl.messages import Update

QUICK = ["run.max_rounds=2", "run.figure=false"]  # the documented command, shortened


def documented_command() -> tuple[dict[str, str], list[str]]:
    """The environment and arguments of the README's one command that runs the example."""
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if "fedsim --config-dir examples/own_problem/conf" in line]
    assert len(lines) == 1, lines
    words = shlex.split(lines[0])
    at = words.index("fedsim")
    env = dict(w.split("=", 1) for w in words[:at])
    return env, words[at + 1 :]


def fedsim(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``fedsim <args>`` in a fresh process at the repo root (``python -m``: this checkout's fedsim)."""
    return subprocess.run(
        [sys.executable, "-m", "fedsim", *args], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_documented_command_writes_the_tasks_metrics(tmp_path):
    env, args = documented_command()
    assert env == {"PYTHONPATH": "examples/own_problem"}
    out = tmp_path / "run"
    proc = fedsim(env, *args, *QUICK, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    rounds = pd.read_csv(out / "rounds.csv")
    assert list(rounds["round"]) == [1, 2]
    assert {"accuracy", "macro_f1", "recall_0", "recall_1", "recall_2"} <= set(rounds.columns)  # Classification's scores, three shapes
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "smoothed_classification"
    assert summary["final_accuracy"] > 1 / 3  # better than chance after two rounds
    assert "_target_: own_problem.strategy.TrimmedMean" in (out / "config.yaml").read_text()


@pytest.mark.slow
def test_a_target_that_does_not_import_is_one_line_on_a_real_command_line(tmp_path):
    """Only a fresh process shows it: hydra's own multi-line log of the failed import would come first on stderr."""
    env, args = documented_command()
    proc = fedsim(env, *args, "task._target_=own_problem.task.Nope", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("fedsim: error: task._target_=own_problem.task.Nope cannot be imported")
    assert not (tmp_path / "run").exists()


def test_the_trimmed_mean_cuts_each_coordinates_extremes(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples" / "own_problem"))
    from own_problem.strategy import TrimmedMean

    values = [[1.0, -1.0], [2.0, 0.0], [3.0, 1.0], [4.0, 5.0], [1e6, -1e6]]  # the last client is wild in both coordinates
    updates = [Update(client=k, round=1, flat=torch.tensor(v), num_samples=10 * (k + 1), loss=0.0) for k, v in enumerate(values)]
    current = torch.zeros(2)
    assert torch.equal(TrimmedMean(trim=0.2).aggregate(1, current, updates), torch.tensor([3.0, 0.0]))  # ⌊0.2·5⌋ = 1 cut per end
    assert torch.equal(TrimmedMean(trim=0.0).aggregate(1, current, updates), torch.tensor(values).mean(0))  # no cut: the plain mean
    assert torch.equal(TrimmedMean(trim=0.45).aggregate(1, current, updates), torch.tensor([3.0, 0.0]))  # two cut per end: the median
