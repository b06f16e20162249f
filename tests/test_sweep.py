"""Sweeps end to end: a joblib grid collects into one table, a re-run does no work, a killed sweep resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fedsim.collect import collect
from fedsim.sweep import expand, threads_per_job

TINY = ["data.source.n_samples=400", "model.hidden=[16,8,4]", "run.max_rounds=2", "run.figure=false", "compute.threads=1"]
GRID = ["failure.dropout=0.0,0.2,0.4", "data.num_clients=2,3", "run.seed=0,1"]  # 3 × 2 × 2 = 12 jobs
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def sweep_cmd(sweep: Path, launcher: list[str] = JOBLIB) -> list[str]:
    return [sys.executable, "-m", "fedsim", "-m", *launcher, *TINY, *GRID, f"hydra.sweep.dir={sweep}"]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run to the end; hydra logs to stdout, so both streams land in ``stdout``."""
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Everything but real (wall-clock) time, which differs between any two runs."""
    return table.drop(columns=[c for c in table.columns if "wall" in c])


def mtimes(sweep: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 12-job joblib sweep, and its log."""
    root = tmp_path_factory.mktemp("ref")
    proc = run(sweep_cmd(root / "sweep"), cwd=root)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return root / "sweep", proc.stdout


@pytest.mark.slow
def test_joblib_grid_collects_twelve_jobs_and_a_rerun_does_no_work(reference):
    sweep, log = reference
    assert log.count("done:") == 12 and "job 12/12" in log
    got = collect(sweep)
    assert len(got.jobs) == 12 and set(got.jobs["status"]) == {"complete"}
    assert len(got.table) == 24 and list(got.table["round"].unique()) == [1, 2]
    for key, values in [("failure.dropout", {0.0, 0.2, 0.4}), ("data.num_clients", {2, 3}), ("run.seed", {0, 1})]:
        assert set(got.table[key]) == values
    assert (got.table.groupby("job")["data.num_clients"].first() == got.table.groupby("job")["selected"].first()).all()

    before = mtimes(sweep)
    again = run(sweep_cmd(sweep), cwd=sweep.parent)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("skipped: complete") == 12 and "done:" not in again.stdout
    assert mtimes(sweep) == before


@pytest.mark.slow
def test_killed_sweep_reruns_only_missing_jobs_and_matches_an_uninterrupted_one(reference, tmp_path):
    """Killed and resumed under the basic launcher (one process, quicker to start), compared with the joblib sweep.

    ``compute.threads=1`` in both makes the launcher irrelevant to the numbers.
    """
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(sweep_cmd(sweep, []), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(list(sweep.glob("*/summary.json"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its loky workers
    proc.wait()
    survivors = mtimes(sweep)
    partial = collect(sweep)
    assert 3 <= len(survivors) < 12, "the sweep finished before it could be killed"
    assert len(partial.not_complete()) == 12 - len(survivors)

    resumed = run(sweep_cmd(sweep, []), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert resumed.stdout.count("skipped: complete") == len(survivors)
    assert resumed.stdout.count("done:") == 12 - len(survivors)
    assert {k: v for k, v in mtimes(sweep).items() if k in survivors} == survivors
    pd.testing.assert_frame_equal(comparable(collect(sweep).table), comparable(collect(reference[0]).table))


@pytest.mark.parametrize(
    "launcher, cores, threads",
    [
        ({"n_jobs": -1}, 8, 1),
        ({"n_jobs": 2}, 8, 4),
        ({"n_jobs": 3}, 8, 2),
        ({"n_jobs": 16}, 8, 1),
        ({"n_jobs": -2}, 8, 1),
        ({"n_jobs": -5}, 8, 2),  # joblib: all but four = 4 jobs
        ({"cpus_per_task": 4}, 64, 4),
        ({"ray": {"remote": {"num_cpus": 2}}}, 64, 2),
        ({}, 8, 0),
    ],
)
def test_threads_times_parallel_jobs_fit_the_cores(launcher, cores, threads):
    assert threads_per_job(launcher, cores) == threads


def test_expand_follows_hydra_order_params_first_command_line_wins():
    jobs = expand(["b=1,2", "c=x"], {"a": "0,1", "b": "9"})
    assert jobs == [["a=0", "b=1", "c=x"], ["a=0", "b=2", "c=x"], ["a=1", "b=1", "c=x"], ["a=1", "b=2", "c=x"]]
