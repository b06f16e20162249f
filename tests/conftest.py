"""Shared fixtures: a tiny federation small enough for unit tests to run in milliseconds.

Two depths. ``python -m pytest`` is the default tier: every behaviour, property tests
drawing a few examples of each kind, tests marked ``deep`` left out. ``python -m pytest
-m deep --hypothesis-profile=deep`` is the deep tier (``.ci/run`` runs it after the
default one): many more examples, and the long runs marked ``deep``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import settings

from fedsim.data import partition
from fedsim.data.synthetic import make_synthetic
from fedsim.fl.simulation import NetworkSpec, SimSettings, simulate
from fedsim.fl.strategies import FedAvg
from fedsim.models.dnn import AnomalyDNN
from fedsim.seeding import rng, torch_seed
from fedsim.sim.compute import ComputeModel
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec

TINY_HIDDEN = (32, 16, 8)

settings.register_profile("deep", max_examples=500)  # the deep tier; the default profile is hypothesis' own

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # one torch thread per worker: the workers already fill the cores


def tiny_model(num_features: int, seed: int = 0) -> AnomalyDNN:
    """The paper's architecture shape (BN, dropout on the last three), scaled down."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(seed, "init"))
        return AnomalyDNN(num_features, hidden=TINY_HIDDEN)


@pytest.fixture(scope="session")
def tiny_data():
    """Synthetic data split over 3 clients, plus validation and test tensors."""
    data = make_synthetic(n_samples=600, seed=0)
    shards = partition.iid(len(data.y_train) - 50, 3, rng(0, "partition"))
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    clients = [(x[50:][s], y[50:][s]) for s in shards]
    return {"clients": clients, "val": (x[:50], y[:50]), "test": (torch.from_numpy(data.x_test), torch.from_numpy(data.y_test))}


@pytest.fixture
def run_tiny(tiny_data):
    """Run the engine on the tiny federation with keyword overrides of any simulate() argument."""

    def run(**overrides):
        model = tiny_model(tiny_data["clients"][0][0].shape[1])
        kwargs = dict(
            model=model,
            initial=FlatLayout.of(model).flatten(model),
            clients=tiny_data["clients"],
            speeds=np.ones(len(tiny_data["clients"])),
            strategy=FedAvg(),
            spec=LocalSpec(batch_size=32, lr=1e-3, epochs=1),
            compute=ComputeModel(0.01),
            network=NetworkSpec(latency_s=0.05, down_bps=1e6, up_bps=5e5),
            val=tiny_data["val"],
            test=tiny_data["test"],
            settings=SimSettings(seed=0),
        )
        kwargs.update(overrides)
        return simulate(**kwargs)

    return run


def reproducible_tables(result, *names: str) -> dict:
    """The tables of a run that the same config and seed must give exactly: ``rounds`` without its
    wall-clock column, and each table ``names`` names (attributes of the result)."""
    return {"rounds": result.rounds.drop(columns="wall_s"), **{name: getattr(result, name) for name in names}}
