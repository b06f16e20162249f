"""Stacked training of many clients equals local_train client by client, bit for bit on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import tiny_model
from fedsim.models.dnn import AnomalyDNN
from fedsim.tasks import Classification
from fedsim.train.batched import Job, stack_support, train_stacked
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState, local_train, steps_per_epoch

SIZES = (90, 90, 65, 110)  # unequal: different last batches and step counts


def _clients(tiny_data):
    x = torch.cat([c[0] for c in tiny_data["clients"]])
    y = torch.cat([c[1] for c in tiny_data["clients"]])
    out, lo = [], 0
    for n in SIZES:
        out.append((x[lo : lo + n], y[lo : lo + n]))
        lo += n
    return out


def test_dropout_masks_are_bernoulli_draws_on_a_seeded_generator():
    x = torch.randn(37, 16, requires_grad=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        expected = nn.functional.dropout(x, 0.2, True)
    g = torch.Generator().manual_seed(1234)
    assert torch.equal(expected, x * torch.empty(37, 16).bernoulli_(0.8, generator=g).div_(0.8))


def test_stacked_equals_local_train_bitwise_with_bn_dropout_snapshots_and_resume(tiny_data):
    clients = _clients(tiny_data)
    model = tiny_model(clients[0][0].shape[1])
    layout = FlatLayout.of(model)
    flat = layout.flatten(model)
    spec = LocalSpec(batch_size=32, epochs=2)
    stops = [2 * steps_per_epoch(len(x), 32) - i % 2 for i, (x, _) in enumerate(clients)]  # each stops elsewhere
    jobs = [Job(x=x, y=y, start=TrainState(flat), seed=10 + i, stop_step=stops[i], snapshots=(2, 3)) for i, (x, y) in enumerate(clients)]
    trajectories = train_stacked(model, layout, jobs, spec=spec)
    for (x, y), job, traj in zip(clients, jobs, trajectories):
        ref = local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=job.seed, stop_step=job.stop_step)
        got = traj.result(0, job.stop_step)
        assert torch.equal(got.state.flat, ref.state.flat)
        assert got.loss == ref.loss and got.samples == ref.samples
        mid = local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=job.seed, stop_step=3)
        assert torch.equal(traj.states[3].flat, mid.state.flat)
        for i, s in mid.state.optimizer["state"].items():
            assert torch.equal(traj.states[3].optimizer["state"][i]["exp_avg_sq"], s["exp_avg_sq"])
        # a sequential resume from a stacked snapshot lands on the same final state
        resumed = local_train(model, layout, traj.states[3], x, y, spec=spec, seed=job.seed, stop_step=job.stop_step)
        assert torch.equal(resumed.state.flat, ref.state.flat)
        assert traj.result(3, job.stop_step).loss == resumed.loss


def test_stacked_resumes_from_a_sequential_checkpoint(tiny_data):
    clients = _clients(tiny_data)[:2]
    model = tiny_model(clients[0][0].shape[1])
    layout = FlatLayout.of(model)
    flat = layout.flatten(model)
    spec = LocalSpec(batch_size=32)
    starts = [local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=i, stop_step=2).state for i, (x, y) in enumerate(clients)]
    trajs = train_stacked(model, layout, [Job(x=x, y=y, start=s, seed=i, stop_step=4) for i, ((x, y), s) in enumerate(zip(clients, starts))], spec=spec)
    for i, ((x, y), traj) in enumerate(zip(clients, trajs)):
        ref = local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=i, stop_step=4)
        assert torch.equal(traj.states[4].flat, ref.state.flat)


def test_mlp_without_batchnorm_uses_bmm_and_stays_within_1e6(tiny_data):
    clients = _clients(tiny_data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AnomalyDNN(clients[0][0].shape[1], hidden=(60, 30, 10), batch_norm=False, dropout=0.0)
    layout = FlatLayout.of(model)
    flat = layout.flatten(model)
    spec = LocalSpec(batch_size=64)
    jobs = [Job(x=x, y=y, start=TrainState(flat), seed=i, stop_step=6) for i, (x, y) in enumerate(clients)]
    for (x, y), job, traj in zip(clients, jobs, train_stacked(model, layout, jobs, spec=spec)):
        ref = local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=job.seed, stop_step=6)
        assert float((traj.states[6].flat - ref.state.flat).abs().max()) <= 1e-6


def test_unsupported_models_say_why():
    class Odd(AnomalyDNN):
        def forward(self, x):
            return super().forward(x) * 2

    assert "own forward" in stack_support(Odd(4, hidden=(3,)), LocalSpec())
    assert stack_support(AnomalyDNN(4, hidden=(3,)), LocalSpec()) is None
    assert "task=classification" in stack_support(AnomalyDNN(4, hidden=(3,)), LocalSpec(task=Classification(num_classes=3)))
    assert "optimizer=sgd" in stack_support(AnomalyDNN(4, hidden=(3,)), LocalSpec(optimizer="sgd"))
    with pytest.raises(ValueError, match="same step"):
        m = AnomalyDNN(4, hidden=(3,))
        lay = FlatLayout.of(m)
        x, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
        s = TrainState(lay.flatten(m))
        train_stacked(m, lay, [Job(x, y, s, 0, 2), Job(x, y, TrainState(s.flat, step=1), 0, 2)], spec=LocalSpec(batch_size=4))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_bf16_mixed_stacked_agrees_with_local_train(tiny_data, batch_norm):
    """BN models stack in exact mode (the same per-client bfloat16 addmm calls as F.linear under
    autocast), so equality is bitwise. BN-free ones use one bmm per product: its float32
    accumulator is rounded once to bfloat16, so blocking order shows only if a sum lands within
    float32 noise (~1e-7 relative) of a bfloat16 rounding boundary; the tolerance is the float32
    bmm test's 1e-6 (measured: 0 here and for the benchmark MLP, 24 clients × 5 rounds)."""
    clients = _clients(tiny_data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AnomalyDNN(clients[0][0].shape[1], hidden=(60, 30, 10), batch_norm=batch_norm, dropout=0.2 if batch_norm else 0.0)
    layout = FlatLayout.of(model)
    flat = layout.flatten(model)
    spec = LocalSpec(batch_size=32, epochs=2, precision="bf16-mixed")
    stops = [2 * steps_per_epoch(len(x), 32) for x, _ in clients]
    jobs = [Job(x=x, y=y, start=TrainState(flat), seed=i, stop_step=stops[i], snapshots=(3,)) for i, (x, y) in enumerate(clients)]
    for (x, y), job, traj in zip(clients, jobs, train_stacked(model, layout, jobs, spec=spec)):
        ref = local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=job.seed, stop_step=job.stop_step)
        fp32 = local_train(model, layout, TrainState(flat), x, y, spec=LocalSpec(batch_size=32, epochs=2), seed=job.seed, stop_step=job.stop_step)
        got = traj.result(0, job.stop_step)
        diff = float((got.state.flat - ref.state.flat).abs().max())
        assert diff == 0.0 if batch_norm else diff <= 1e-6
        assert float((fp32.state.flat - got.state.flat).abs().max()) > 1e-4  # the stacked run really is bf16, not float32
        assert abs(got.loss - ref.loss) <= (0.0 if batch_norm else 1e-6)
        resumed = local_train(model, layout, traj.states[3], x, y, spec=spec, seed=job.seed, stop_step=job.stop_step)
        assert float((resumed.state.flat - ref.state.flat).abs().max()) <= (0.0 if batch_norm else 1e-6)
