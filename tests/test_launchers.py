"""Launcher configs compose (each where its plugin is installed); the CLI dispatches its subcommands."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_dir

from fedsim.cli import main, preflight, scenario_dirs, sweep_points
from fedsim.compose import CONF_DIR, SEARCHPATH
from fedsim.config import register_configs

register_configs()


def hydra_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*overrides, SEARCHPATH], return_hydra_config=True).hydra


def needs(module: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} is not installed (pip install 'fedsim[cluster]')")


def test_default_launcher_is_basic():
    assert hydra_cfg().runtime.choices["hydra/launcher"] == "basic"


def test_joblib_launcher_runs_all_cores_by_default():
    launcher = hydra_cfg("hydra/launcher=joblib").launcher
    assert launcher.n_jobs == -1 and launcher.backend is None  # loky processes; fedsim gives each cores // n_jobs threads


@needs("hydra_plugins.hydra_submitit_launcher")
def test_slurm_launcher_composes_with_fedsim_defaults():
    launcher = hydra_cfg("hydra/launcher=slurm", "hydra.launcher.partition=cpu").launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.cpus_per_task == 2 and launcher.partition == "cpu" and launcher.array_parallelism == 64


@needs("hydra_plugins.hydra_ray_launcher")
def test_ray_launcher_composes_with_fedsim_defaults():
    launcher = hydra_cfg("hydra/launcher=ray_cluster").launcher
    assert launcher._target_.endswith("RayLauncher") and launcher.ray.remote.num_cpus == 2


@pytest.mark.parametrize("name", ["dropout_sweep", "client_scaling", "checkpoint_interval"])
def test_sweep_scenarios_are_multiruns_into_a_fixed_dir(name):
    if not (CONF_DIR.parent / "scenarios" / f"{name}.yaml").is_file():
        pytest.skip(f"scenarios/{name}.yaml not written")
    hydra = hydra_cfg(f"scenarios={name}", *scenario_dirs([f"scenarios={name}"]))
    assert str(hydra.mode) == "RunMode.MULTIRUN" and hydra.sweep.dir == f"multirun/{name}" and hydra.sweeper.params
    assert scenario_dirs([f"scenarios={name}", "hydra.sweep.dir=elsewhere"]) == []  # the user's own dir wins


def test_preflight_checks_every_swept_value_including_a_scenarios_own():
    assert sweep_points(["a=1,2", "b=x", "c=3,4"]) == [["a=1", "b=x", "c=3"], ["a=2", "b=x", "c=3"], ["a=1", "b=x", "c=4"]]
    with pytest.raises(Exception, match="failure.dropout"):
        preflight(["failure.dropout=0.0,1.5"])  # only the second value is out of range
    with pytest.raises(Exception, match="failure.dropout"):
        preflight(["scenarios=dropout_sweep", "failure.dropout=0.2,1.0"])


def test_collect_and_plot_subcommands_dispatch(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["collect", str(tmp_path)])
    assert exit_.value.code == 2 and "no hydra jobs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["plot", "dropout", str(tmp_path / "absent.parquet")])
    assert exit_.value.code == 2 and capsys.readouterr().err.startswith("fedsim: error:")


def test_tune_dispatches_lazily(monkeypatch):
    import sys
    import types

    seen = {}
    fake = types.ModuleType("fedsim.experiments.tune")
    fake.main = lambda: seen.setdefault("argv", list(sys.argv))
    monkeypatch.setitem(sys.modules, "fedsim.experiments.tune", fake)
    monkeypatch.setattr(sys, "argv", ["fedsim", "tune", "x=1"])
    main(["tune", "x=1"])
    assert seen["argv"][1:] == ["x=1"]
