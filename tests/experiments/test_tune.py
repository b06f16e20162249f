"""The tuning study end to end with tiny settings, its config checks, and the multirun job mode."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fedsim.experiments.tune import CONF_DIR, SEARCHPATH, TuneConfig, run_study, synthetic_log

TINY = dict(nodes=60, sim_work=5.0, sim_jobs=20, grid=2, seeds=2, table_shapes=[0.7, 1.5])


def test_study_writes_every_table_and_the_figure(tmp_path: Path) -> None:
    paths = run_study(TuneConfig(out_dir=str(tmp_path), **TINY))
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in paths.values()}
    summary = pd.read_csv(paths["summary"])
    assert set(summary["model"]) == {"segment", "renewal", "minimal_repair"}
    assert np.all(summary["lo"] <= summary["mean"]) and np.all(summary["mean"] <= summary["hi"])
    table = pd.read_csv(paths["rule_of_thumb"])
    assert len(table) == 2 * 4  # shapes × (paper + three models)
    assert paths["figure"].stat().st_size > 10_000


def test_synthetic_log_censors_one_lifetime_per_node() -> None:
    durations, censored = synthetic_log(1.2, 1.0, nodes=40, observe=2.0, seed=0)
    assert censored.sum() == 40
    assert np.all(durations > 0)


def test_tuning_scenario_composes() -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("tune", overrides=["tuning=checkpoint_tuning", SEARCHPATH])
    assert isinstance(OmegaConf.to_object(cfg), TuneConfig)


@pytest.mark.parametrize(("key", "value"), [("delta", 0.0), ("grid", 1), ("models", ["weibull"]), ("failure_log", "nope.csv")])
def test_bad_settings_fail_with_the_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        TuneConfig(**{key: value})


@pytest.mark.slow
def test_multirun_writes_one_table_per_job(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "fedsim.experiments.tune", "-m", "tau=0.05,0.1", "seed=0,1",
        "nodes=40", "sim_work=2.0", "sim_jobs=5", f"hydra.sweep.dir={tmp_path}",
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    tables = [pd.read_csv(p) for p in tmp_path.glob("*/measured.csv")]
    assert len(tables) == 4
    assert sorted(pd.concat(tables)["tau"].unique()) == [0.05, 0.1]
