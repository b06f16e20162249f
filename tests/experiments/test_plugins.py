"""Plug-ins through fedsim's one door (fedsim.experiments.plugins), with examples/own_problem as the user's package:
they see the same failures as fedsim's own, resume like them, and every mistake in them stops in one line."""

from __future__ import annotations

import contextlib
import io
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import reproducible_tables
from hydra import compose, initialize_config_dir

from fedsim.cli import main
from fedsim.compose import CONF_DIR, REPO, search_path, to_config
from fedsim.config import Config, register_configs
from fedsim.experiments.run import run_experiment
from fedsim.fl.replay import Snapshot

EXAMPLE = REPO / "examples" / "own_problem"
PLUGINS = ["data=waves", "model=seqconv", "task=smoothed", "strategy=trimmed_mean"]
TINY = [
    "data.source.n_samples=400", "model.channels=4", "compute.threads=1", "run.figure=false",
    "failure=weibull", "failure.shape=0.8", "failure.scale=2.0", "failure.repair_mean_s=0.5", "failure.dropout=0.3",
    "compute.cost_per_sample_s=0.01",
]  # fmt: skip


@pytest.fixture(autouse=True)
def own_problem_importable(monkeypatch):
    """What ``PYTHONPATH=examples/own_problem`` does for the command line."""
    monkeypatch.syspath_prepend(str(EXAMPLE))


def _cfg(*overrides: str) -> Config:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_config(compose("config", overrides=[*PLUGINS, *TINY, *overrides, search_path(["--config-dir", str(EXAMPLE / "conf")])]))


def test_a_plugged_in_strategy_sees_the_failures_repairs_and_dropouts_fedavg_sees():
    same_training = ["strategy.batch_size=32", "strategy.lr=0.005", "run.max_rounds=3"]
    results = {s: run_experiment(_cfg(f"strategy={s}", *same_training)) for s in ("fedavg", "trimmed_mean")}
    horizon = min(r.virtual_s for r in results.values())
    trace = {
        s: r.events[r.events.kind.isin(["failure", "repair"]) & (r.events.time_s <= horizon)][["time_s", "kind", "client"]].reset_index(drop=True)
        for s, r in results.items()
    }
    assert len(trace["fedavg"]) > 4  # something to compare
    pd.testing.assert_frame_equal(trace["fedavg"], trace["trimmed_mean"], obj="failure trace of trimmed_mean")
    drops = {s: set(map(tuple, r.events.loc[r.events.kind == "dropout", ["client", "round"]].to_numpy())) for s, r in results.items()}
    assert drops["fedavg"] and drops["trimmed_mean"] == drops["fedavg"]
    assert not results["fedavg"].final.equal(results["trimmed_mean"].final)  # the method did differ


def test_a_run_of_plugins_resumed_from_a_snapshot_has_the_uninterrupted_runs_tables():
    cfg = _cfg("run.max_rounds=6")
    taken: list[Snapshot] = []
    reference = run_experiment(cfg, on_snapshot=lambda make: taken.append(make()))
    assert len(taken) >= 5 and {"failure", "repair", "dropout", "work_lost"} <= set(reference.events["kind"])
    want = reproducible_tables(reference, "events", "accounting")
    for snap in (taken[0], taken[len(taken) // 2], taken[-1]):
        resumed = run_experiment(cfg, resume=Snapshot.from_payload(snap.payload()))  # as it comes back from disk
        for name, table in reproducible_tables(resumed, "events", "accounting").items():
            pd.testing.assert_frame_equal(table, want[name], obj=f"{name} after resuming at round {snap.round}")
        assert resumed.final.equal(reference.final), f"final model differs after resuming at round {snap.round}"


# --- one-line errors -------------------------------------------------------------------------------

MISTAKES = '''
    """A user's plug-ins with a mistake each."""
    import numpy as np


    def arrays(seed: int, **settings):
        """A loader that returns its arrays rather than a fedsim.data.Dataset."""
        x = np.random.default_rng(seed).normal(size=(100, 8)).astype(np.float32)
        return x, (x[:, 0] > 0).astype(np.int64)
'''


def run_cli(*args: str, tmp_path: Path) -> tuple[int, list[str], Path]:
    """Exit code, non-empty stderr lines and the run directory of ``fedsim <args>`` (the example's groups found), in process."""
    err, code, run_dir = io.StringIO(), 0, tmp_path / "run"
    with contextlib.redirect_stderr(err):
        try:
            main(["--config-dir", str(EXAMPLE / "conf"), *PLUGINS, *TINY, "run.max_rounds=1", *args, f"hydra.run.dir={run_dir}"])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, [line for line in err.getvalue().splitlines() if line.strip()], run_dir


@pytest.mark.parametrize("override, words", [
    ("strategy.trimm=0.1", ["strategy.trimm"]),  # not in the YAML: hydra refuses the key
    ("+strategy.trimm=0.1", ["strategy.trimm", "not an argument", "trim, fraction, min_clients"]),  # in the YAML: the constructor's signature does
    ("strategy.trim=0.7", ["strategy.trim=0.7", "[0, 0.5)"]),  # the constructor's own check
    ("model._target_=own_problem.model.SeqConvNett", ["model._target_=own_problem.model.SeqConvNett", "cannot be imported"]),
    ("data.source._target_=own_problem.nowhere.load", ["data.source._target_", "cannot be imported"]),
    ("task._target_=own_problem.task.Smoothed", ["task._target_", "cannot be imported"]),
    ("data.source._target_=mistakes.arrays", ["data.source._target_=mistakes.arrays", "returned a tuple", "Dataset"]),
    ("+model.num_outputs=5", ["model=SeqConvNet", "(2, 5)", "(2, 3)", "num_outputs"]),  # output width ≠ 3 classes
    ("task=binary_anomaly", ["[0, 1, 2]", "task=binary_anomaly"]),  # three classes
    ("data.source.target=frequency task=classification", ["float values", "task=classification", "task=regression"]),
])  # fmt: skip
def test_a_mistake_in_a_plugin_is_one_line_before_training(override, words, tmp_path, monkeypatch):
    (tmp_path / "mistakes.py").write_text(textwrap.dedent(MISTAKES))
    monkeypatch.syspath_prepend(str(tmp_path))
    code, lines, run_dir = run_cli(*override.split(), tmp_path=tmp_path)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("fedsim: error: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not run_dir.exists()  # stopped before the run wrote anything
