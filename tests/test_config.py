"""Every config option and scenario composes and validates; bad values fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from fedsim.cli import pin_auto_precision
from fedsim.sweep import first_point
from fedsim.compose import CONF_DIR, REPO, SEARCHPATH, one_line, to_config
from fedsim.config import ComputeConfig, Config, register_configs
from fedsim.errors import FedsimError

register_configs()
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")
SCENARIOS = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml")) + sorted(f"paper/{p.stem}" for p in (REPO / "scenarios" / "paper").glob("*.yaml"))


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*overrides, SEARCHPATH])


def options():
    for group in GROUPS:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            yield f"{group}={path.stem}"


@pytest.mark.parametrize("override", list(options()))
def test_every_group_option_composes_and_validates(override):
    assert isinstance(to_config(composed(override)), Config)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_composes_and_validates(name):
    assert isinstance(to_config(composed(f"scenarios={name}")), Config)


@pytest.mark.parametrize(
    "override, key",
    [
        ("failure.shape=0", "failure.shape"),
        ("failure.shape=-1.5", "failure.shape"),
        ("failure.scale=-2", "failure.scale"),
        ("network.down_mbps=-1", "network.down_mbps"),
        ("network.latency_s=-0.1", "network.latency_s"),
        ("failure.dropout=1.0", "failure.dropout"),
        ("data.num_clients=0", "data.num_clients"),
        ("strategy.fraction=0", "strategy.fraction"),
        ("checkpoint.tau_s=-1", "checkpoint.tau_s"),
        ("checkpoint.tau_s=sometimes", "checkpoint.tau_s"),
        ("checkpoint.refit_on=weekly", "checkpoint.refit_on"),
        ("checkpoint.model=minimal_repair", "checkpoint.model"),
        ("failure.groups=[{share: 0.5, shape: 0.7, scale: 30}]", "failure.groups"),
        ("failure.groups=[{share: 1.0, shape: 0, scale: 30}]", "failure.groups[].shape"),
        ("run.objective=loss", "run.objective"),
        ("run.repeats=0", "run.repeats"),
        ("network.server_up_mbps=0", "network.server_up_mbps"),
        ("network.spread=-0.1", "network.spread"),
        ("run.aggregation=quadratic", "run.aggregation"),
        ("run.aggregation_scale=0", "run.aggregation_scale"),
        ("compute.precision=16", "compute.precision"),
    ],
)
def test_out_of_range_values_name_the_key(override, key):
    with pytest.raises(FedsimError) as err:
        to_config(composed(override))
    message = str(err.value)
    assert key in message and "must be" in message and "\n" not in message


def test_measured_aggregation_needs_real_training():
    with pytest.raises(FedsimError, match="run.aggregation=measured") as err:
        to_config(composed("compute.system_only=true", "run.aggregation=measured"))
    assert "\n" not in str(err.value)


def test_unknown_key_is_one_line_naming_it():
    with pytest.raises(Exception) as err:
        composed("data.bogus=1")
    message = one_line(err.value)
    assert "bogus" in message and "\n" not in message


def test_first_point_expands_sweeps():
    assert first_point(["a.b=1,2,3", "c=x", "hydra.launcher.n_jobs=2"]) == ["a.b=1", "c=x"]


def test_conf_dir_is_the_repo_conf():
    assert CONF_DIR == Path(REPO) / "conf" and (CONF_DIR / "config.yaml").is_file()


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("ADAPTIVE", "adaptive"), ("2", 2.0), ("0.25", 0.25)])
def test_tau_s_is_a_positive_number_auto_or_adaptive(value, expected):
    assert to_config(composed("checkpoint=every_tau", f"checkpoint.tau_s={value}")).checkpoint.tau_s == expected


def test_tau_s_rule_and_tau_steps_exclude_each_other():
    with pytest.raises(FedsimError, match="checkpoint.tau_steps"):
        to_config(composed("checkpoint=every_tau", "checkpoint.tau_s=auto", "checkpoint.tau_steps=3"))


def test_the_proposed_method_takes_tau_from_the_failure_law():
    assert to_config(composed("strategy=proposed")).checkpoint.tau_s == "auto"


def test_precision_32_given_as_an_int_becomes_the_string():
    assert ComputeConfig(precision=32).precision == "32"  # type: ignore[arg-type]
    assert to_config(composed()).compute.precision == "32"
    assert to_config(composed("compute.precision=32")).compute.precision == "32"
    assert to_config(composed("compute.precision=bf16-mixed")).compute.precision == "bf16-mixed"


def test_auto_precision_is_pinned_in_the_resolved_config():
    from fedsim.train.precision import resolve_precision

    cfg = composed("compute.precision=auto", "compute.device=cpu")
    pin_auto_precision(cfg)
    assert cfg.compute.precision == resolve_precision("auto", "cpu")[0]  # what a resumed sweep compares
    explicit = composed("compute.precision=32", "compute.device=cpu")
    pin_auto_precision(explicit)
    assert explicit.compute.precision == "32"  # explicit values pass through untouched
