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
from torch import nn

from fedsim.data import partition
from fedsim.data.synthetic import make_synthetic
from fedsim.fl.monitor import Stopping
from fedsim.fl.simulation import NetworkSpec, SimSettings, simulate
from fedsim.fl.strategies import FedAvg
from fedsim.models.dnn import AnomalyDNN
from fedsim.seeding import rng, torch_seed
from fedsim.sim.compute import ComputeModel
from fedsim.tasks import Classification
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
def one_thread():
    """Tiny models: torch's thread pool only adds spin-waits, badly so on a busy 2-core runner."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


# A small classification problem with equal shards (ROWS rows per client), an MLP without BatchNorm, plain SGD.
CLASSES, FEATURES, ROWS = 3, 8, 90
CLASSIFIER_SPEC = LocalSpec(batch_size=30, lr=0.1, optimizer="sgd", task=Classification(num_classes=CLASSES))


def _classifier_data(n_clients: int) -> tuple[list, tuple, tuple]:
    g = rng(0, "test-data")
    w = g.normal(size=(FEATURES, CLASSES))
    x = g.normal(size=(n_clients * ROWS + 200, FEATURES)).astype(np.float32)
    y = (x @ w).argmax(1).astype(np.int64)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    clients = [(xt[i * ROWS : (i + 1) * ROWS], yt[i * ROWS : (i + 1) * ROWS]) for i in range(n_clients)]
    return clients, (xt[-200:-100], yt[-200:-100]), (xt[-100:], yt[-100:])


def _classifier() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(0, "init"))
        return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))


def run_classifier(strategy, n_clients: int = 3, rounds: int = 4, speeds=None, settings: SimSettings | None = None, **kw):
    """A run on the small classification problem; returns the result and every global model the server scored."""
    clients, val, test = _classifier_data(n_clients)
    model = _classifier()
    scored: list[torch.Tensor] = []

    def evaluator(flat: torch.Tensor) -> dict[str, float]:
        scored.append(flat.clone())
        return {"val_loss": 0.0}

    result = simulate(
        model=model, initial=FlatLayout.of(model).flatten(model), clients=clients, speeds=np.ones(n_clients) if speeds is None else speeds,
        strategy=strategy, spec=kw.pop("spec", CLASSIFIER_SPEC), compute=ComputeModel(0.01), network=NetworkSpec(latency_s=0.05, down_bps=1e6, up_bps=5e5),
        val=val, test=test, settings=settings or SimSettings(seed=0, stopping=Stopping(max_rounds=rounds)), evaluator=evaluator, **kw,
    )  # fmt: skip
    return result, scored
