"""Strategies with a client half and server state: FedProx, FedAdam, FedYogi."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from conftest import tiny_model
from fedsim.fl.batched_executor import BatchedExecutor
from fedsim.fl.messages import Update
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import SimSettings
from fedsim.fl.strategies import FedAdam, FedAvg, FedProx, FedYogi
from fedsim.sim.failures import FailureModel, repair_sampler
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec

WALL = ["wall_s"]
SETTINGS = SimSettings(seed=2, stopping=Stopping(max_rounds=3))


def test_fedprox_with_mu_zero_is_fedavg_bit_for_bit(run_tiny):
    avg, prox = run_tiny(strategy=FedAvg(), settings=SETTINGS), run_tiny(strategy=FedProx(mu=0.0), settings=SETTINGS)
    assert torch.equal(avg.final, prox.final)
    pd.testing.assert_frame_equal(avg.rounds.drop(columns=WALL), prox.rounds.drop(columns=WALL))


def test_fedprox_pulls_clients_toward_the_global_model(run_tiny, tiny_data):
    """With μ = 100 the proximal gradient μ·(w − w_global) outweighs the data gradient after a few
    Adam steps of size ~lr, so the trained parameters stay far closer to the start than FedAvg's."""
    model = tiny_model(tiny_data["clients"][0][0].shape[1])  # the model run_tiny starts from
    layout = FlatLayout.of(model)
    start, params = layout.flatten(model), layout.param_mask(model)
    settings = SimSettings(seed=2, stopping=Stopping(max_rounds=1))
    drift = {mu: float((run_tiny(settings=settings, strategy=FedProx(mu=mu)).final - start)[params].norm()) for mu in (0.0, 100.0)}
    assert drift[100.0] < 0.5 * drift[0.0]


def test_fedprox_batched_equals_sequential(run_tiny):
    """The stacked path adds the proximal gradient op for op as local_train does."""
    failure = FailureModel(shape=1.5, scale=3.0, repair=repair_sampler("exponential", 0.5))
    settings = SimSettings(seed=3, failure=failure, dropout=0.2, stopping=Stopping(max_rounds=3))
    seq = run_tiny(strategy=FedProx(mu=0.5), settings=settings)
    made = []
    bat = run_tiny(strategy=FedProx(mu=0.5), settings=settings, executor=lambda *a: made.append(BatchedExecutor(*a)) or made[-1])
    assert made[0].stats["stacked"] > 0 and made[0].stats["fallback"] == 0
    assert torch.equal(seq.final, bat.final)
    pd.testing.assert_frame_equal(seq.events, bat.events)


def _updates(current: torch.Tensor, *targets: tuple[torch.Tensor, int]) -> list[Update]:
    return [Update(client=i, round=1, flat=t, num_samples=n, loss=0.0, origin=i) for i, (t, n) in enumerate(targets)]


@pytest.mark.parametrize("cls", [FedAdam, FedYogi])
def test_server_optimiser_step_matches_a_hand_written_step(cls):
    torch.manual_seed(0)
    x0 = torch.randn(6)
    mask = torch.tensor([True, True, True, True, False, False])  # the last two are buffers
    lr, b1, b2, tau = 0.1, 0.9, 0.99, 1e-3
    strategy = cls(params=mask, server_lr=lr, beta1=b1, beta2=b2, tau=tau)
    m, v, x = torch.zeros(4, dtype=torch.float64), torch.full((4,), tau**2, dtype=torch.float64), x0.clone()
    for rnd in (1, 2):
        a, b = torch.randn(6), torch.randn(6)
        out = strategy.aggregate(rnd, x, _updates(x, (a, 1), (b, 3)))
        avg = (a.double() * 1 + b.double() * 3) / 4
        delta = avg[:4] - x[:4].double()
        m = b1 * m + (1 - b1) * delta
        if cls is FedAdam:
            v = b2 * v + (1 - b2) * delta**2
        else:
            v = v - (1 - b2) * delta**2 * torch.sign(v - delta**2)
        expected = torch.cat([(x[:4].double() + lr * m / (v.sqrt() + tau)).float(), avg[4:].float()])
        assert torch.equal(out, expected)
        x = out
    state = strategy.state_dict()
    fresh = cls(params=mask, server_lr=lr, beta1=b1, beta2=b2, tau=tau)
    fresh.load_state_dict(state)
    a = torch.randn(6)
    assert torch.equal(fresh.aggregate(3, x, _updates(x, (a, 1))), strategy.aggregate(3, x, _updates(x, (a, 1))))


@pytest.mark.parametrize("cls", [FedAdam, FedYogi])
def test_server_optimiser_learns_on_the_engine(run_tiny, cls):
    """On the real engine the server steps descend: validation loss falls every round (seeded run)."""
    strategy = cls(server_lr=0.01)
    result = run_tiny(strategy=strategy, spec=LocalSpec(batch_size=32, lr=1e-2), settings=SimSettings(seed=2, stopping=Stopping(max_rounds=5)))
    assert (result.rounds["val_loss"].diff().dropna() < 0).all()
    assert set(strategy.state_dict()) == {"m", "v"}
