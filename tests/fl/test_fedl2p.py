"""FedL2P on the engine: meta-nets learn, personalisation is what it says, batched ≈ sequential."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch

from conftest import tiny_model
from fedsim.data import partition
from fedsim.fl.batched_executor import BatchedExecutor
from fedsim.fl.server import Stopping
from fedsim.fl.simulation import SimSettings
from fedsim.fl.strategies import FedAvg, FedL2P
from fedsim.seeding import rng, torch_generator, torch_seed
from fedsim.tasks import BinaryAnomalyDetection
from fedsim.train.flat import FlatLayout
from fedsim.train.local import batch_bounds
from fedsim.train.personalize import PersonalizeSpec, meta_init, pinned_meta

SPEC = PersonalizeSpec(steps=6, batch_size=16, base_lr=0.05, hidden=8)
SETTINGS = SimSettings(seed=1, stopping=Stopping(max_rounds=3), client_eval=True)


def evaluate(model, layout, flat, x, y, threshold):
    """The anomaly task's scores of ``flat`` on ``(x, y)``."""
    layout.load(model, flat)
    return BinaryAnomalyDetection().evaluate(model, x, y, threshold)


@pytest.fixture(scope="module")
def client_tests(tiny_data):
    x, y = tiny_data["test"]
    return [(x[s], y[s]) for s in partition.iid(len(y), 3, rng(0, "test-partition"))]


def _model(tiny_data):
    return tiny_model(tiny_data["clients"][0][0].shape[1])


def test_meta_nets_learn_and_the_global_model_is_fedavgs(run_tiny, tiny_data, client_tests):
    meta0 = meta_init(_model(tiny_data), SPEC, 0)
    strategy = FedL2P(meta=meta0, spec=SPEC, meta_lr=0.1)
    l2p = run_tiny(strategy=strategy, settings=SETTINGS, client_tests=client_tests)
    avg = run_tiny(strategy=FedAvg(), settings=SETTINGS, client_tests=client_tests)
    assert (strategy.meta - meta0).abs().max() > 1e-3  # the meta-nets moved
    assert torch.equal(l2p.final, avg.final)  # FedL2P trains the global model as FedAvg does
    assert (l2p.events.kind == "meta_step").sum() == 3 * 3
    assert set(l2p.client_evals["round"]) == {1, 2, 3} and len(l2p.client_evals) == 9
    assert not l2p.client_evals["loss"].equals(avg.client_evals["loss"])  # personalised ≠ global


def test_pinned_meta_nets_are_fine_tuning_the_fedavg_model_by_hand(run_tiny, tiny_data, client_tests):
    """β = 0 and LR = base: each client's score is that of plain SGD on the FedAvg model, done by hand.

    1e-6: the same float32 arithmetic up to how BatchNorm is written (≈1e-7 per step; see
    tests/train/test_personalize.py)."""
    model = _model(tiny_data)
    pinned = pinned_meta(model, SPEC, beta=0.0, multiplier=1.0)
    l2p = run_tiny(strategy=FedL2P(meta=pinned, spec=SPEC, meta_lr=0.0), settings=SETTINGS, client_tests=client_tests)
    avg = run_tiny(strategy=FedAvg(), settings=SETTINGS)
    layout = FlatLayout.of(model)
    last = l2p.client_evals[l2p.client_evals["round"] == 3].set_index("client")
    for cid, (x, y) in enumerate(tiny_data["clients"]):
        hand = copy.deepcopy(model)
        layout.load(hand, avg.final)
        hand.eval()  # BatchNorm on the global statistics (β = 0), dropout off
        opt = torch.optim.SGD(hand.parameters(), lr=SPEC.base_lr)
        bounds, seed = batch_bounds(len(x), SPEC.batch_size), torch_seed(1, "personalize", cid)
        for step in range(SPEC.steps):
            epoch, i = divmod(step, len(bounds) - 1)
            if i == 0:
                perm = torch.randperm(len(x), generator=torch_generator(seed, "fedl2p-batches", epoch))
            opt.zero_grad()
            hand.loss(x[perm[bounds[i] : bounds[i + 1]]], y[perm[bounds[i] : bounds[i + 1]]]).backward()
            opt.step()
        want = evaluate(hand, layout, layout.flatten(hand), *client_tests[cid], threshold=0.5)
        for key in ("loss", "auc", "accuracy"):
            assert abs(last.loc[cid, key] - want[key]) < 1e-6, (cid, key)


def test_changing_the_meta_nets_changes_the_personalised_models(run_tiny, tiny_data, client_tests):
    model = _model(tiny_data)
    scores = []
    for beta, mult in ((0.0, 1.0), (1.0, 1.0), (0.0, 3.0)):
        strategy = FedL2P(meta=pinned_meta(model, SPEC, beta=beta, multiplier=mult), spec=SPEC, meta_lr=0.0)
        scores.append(run_tiny(strategy=strategy, settings=SETTINGS, client_tests=client_tests).client_evals["loss"])
    assert not scores[0].equals(scores[1]) and not scores[0].equals(scores[2])


def test_batched_fedl2p_agrees_with_sequential(run_tiny, tiny_data, client_tests):
    """The batched executor vmaps meta steps and personalisation over clients: same results up to
    float32 summation order (≤ 1e-6 in tests/train/test_personalize.py); the timeline is identical."""
    def run(executor=None):
        strategy = FedL2P(meta=meta_init(_model(tiny_data), SPEC, 0), spec=SPEC, meta_lr=0.1)
        kwargs = {"executor": executor} if executor else {}
        return run_tiny(strategy=strategy, settings=SETTINGS, client_tests=client_tests, **kwargs), strategy

    (seq, s_seq), (bat, s_bat) = run(), run(lambda *a: BatchedExecutor(*a))
    pd.testing.assert_frame_equal(seq.events, bat.events)
    torch.testing.assert_close(s_seq.meta, s_bat.meta, rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.tensor(seq.client_evals["loss"].to_numpy()), torch.tensor(bat.client_evals["loss"].to_numpy()), rtol=0, atol=1e-5)
