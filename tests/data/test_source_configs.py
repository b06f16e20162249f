"""Every loader/model YAML matches its typed dataclass and names its target."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fedsim.data.digits import DigitsSource
from fedsim.data.fedprox_synthetic import FedProxSyntheticSource
from fedsim.data.kddcup99 import KDDCup99Source
from fedsim.data.nsl_kdd import NSLKDDSource
from fedsim.data.road import ROADSource
from fedsim.data.unsw_nb15 import UNSWNB15Source
from fedsim.models.cnn import CNNConfig
from fedsim.models.dagmm import DAGMMConfig

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("data/source/kddcup99", KDDCup99Source),
        ("data/source/unsw_nb15", UNSWNB15Source),
        ("data/source/road", ROADSource),
        ("data/source/nsl_kdd", NSLKDDSource),
        ("data/source/synthetic_fedprox", FedProxSyntheticSource),
        ("data/source/digits", DigitsSource),
        ("model/dagmm", DAGMMConfig),
        ("model/cnn", CNNConfig),
    ],
)
def test_yaml_matches_dataclass(name: str, schema: type) -> None:
    yaml = OmegaConf.load(CONF / f"{name}.yaml")
    structured = OmegaConf.structured(schema)
    assert set(yaml) == set(structured)
    merged = OmegaConf.merge(structured, yaml)
    assert merged._target_ == structured._target_
