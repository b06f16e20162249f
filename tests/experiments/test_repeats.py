"""run.repeats averages a job over a fixed seed set; run.objective is what the job returns to a sweeper."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from fedsim.compose import CONF_DIR, SEARCHPATH, to_config
from fedsim.config import register_configs
from fedsim.experiments.repeats import run_seeds
from fedsim.results import is_done
from fedsim.sweep import objective_value

register_configs()
SYSTEM = ["compute.system_only=true", "data.source.n_samples=400", "model.hidden=[16,8,4]", "run.figure=false", "run.max_rounds=2",
          "failure=weibull", "failure.scale=2.0", "failure.repair_mean_s=0.2", "compute.cost_per_sample_s=0.02"]


def test_repeats_run_each_seed_into_its_own_directory_and_report_the_mean(tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        raw = compose("config", overrides=[*SYSTEM, "run.seed=7", "run.repeats=3", "run.objective=virtual_s", SEARCHPATH])
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_yaml(raw, resolve=True)
    summary = run_seeds(to_config(raw), tmp_path, resolved)
    seeds = pd.read_csv(tmp_path / "seeds.csv")
    assert seeds["seed"].tolist() == [7, 8, 9] == summary["seeds"]
    singles = [json.loads((tmp_path / f"seed_{s}" / "summary.json").read_text()) for s in (7, 8, 9)]
    assert len({s["virtual_s"] for s in singles}) == 3  # the seeds differ
    assert summary["virtual_s"] == pytest.approx(sum(s["virtual_s"] for s in singles) / 3)
    assert summary["objective"] == "virtual_s" and summary["objective_value"] == summary["virtual_s"]
    assert OmegaConf.load(tmp_path / "seed_8" / "config.yaml").run.seed == 8
    assert is_done(tmp_path, resolved)  # a re-run sweep skips it


def test_objective_value_is_the_named_field_and_a_target_never_reached_is_worst():
    assert objective_value({"virtual_s": 12.5}, "virtual_s") == 12.5
    assert objective_value({"time_to_target_s": float("nan")}, "time_to_target_s") == math.inf
