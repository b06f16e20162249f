"""The vmap path (FunctionalStack) equals local_train client by client, within float32 rounding.

Tolerance: ``assert_close(rtol=1e-5, atol=1e-6)`` on the flat states (and on the
optimiser state) after up to three epochs (≤ 15 steps). Why: vmap runs ``bmm`` for a
linear layer and a grouped convolution for a convolution where the sequential path
runs one ``mm``/convolution per client; CPU kernels block their float32 sums by shape,
so each step's gradients differ by a few ulps (≈1e-7 relative), while the optimiser
updates themselves round as alone (``rowwise``). Each step carries that difference
forward scaled by lr (SGD) or by about lr·|Δg|/√v (Adam), so it grows slowly with the
steps. Measured: at most 1.2e-7 in these tests (8.9e-8 after six epochs, 30 steps, of
the CNN), 2.7e-7 in 30 steps of an 8-channel CNN with BatchNorm under SGD; weights are
of size 0.01–1, so atol 1e-6 leaves ≥ 3× headroom and rtol 1e-5 covers the larger
entries, while a wrong step (an Adam step count off by one, a missing proximal term)
moves states by ≥ 1e-4. Losses agree to 1e-5 relative for the same reason.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedsim.models.dagmm import DAGMM
from fedsim.models.dropout import SeededDropout
from fedsim.tasks import Classification, Regression
from fedsim.train.batched import Job, train_stacked
from fedsim.train.flat import FlatLayout
from fedsim.train.functional import FunctionalStack, functional_support
from fedsim.train.local import LocalSpec, TrainState, local_train, steps_per_epoch

TOL = dict(rtol=1e-5, atol=1e-6)
SIZES = (150, 97, 128)  # last batches of 22, 33 (a trailing row merged) and 32 rows
CLASSIFY = Classification(num_classes=10)
SGD = LocalSpec(batch_size=32, lr=0.05, optimizer="sgd", momentum=0.9, task=CLASSIFY)
ADAM = LocalSpec(batch_size=32, lr=1e-2, optimizer="adam", task=CLASSIFY)


def _seeded(make, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def _images(sizes=SIZES, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)) for n in sizes]


def logreg() -> nn.Module:
    return _seeded(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))


def cnn(bn: bool = False) -> nn.Module:
    return _seeded(lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), *([nn.BatchNorm2d(4)] if bn else []), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)))


def _close_state(got: TrainState, ref: TrainState) -> None:
    torch.testing.assert_close(got.flat, ref.flat, **TOL)
    assert got.step == ref.step
    assert got.optimizer["param_groups"] == ref.optimizer["param_groups"]
    assert got.optimizer["state"].keys() == ref.optimizer["state"].keys()
    for i, s in ref.optimizer["state"].items():
        assert got.optimizer["state"][i].keys() == s.keys()
        for key, value in s.items():
            torch.testing.assert_close(got.optimizer["state"][i][key], value, rtol=1e-5, atol=1e-9 if key == "exp_avg_sq" else 1e-6)


def _check(model: nn.Module, data, spec: LocalSpec, *, epochs: int = 2, mu: float = 0.0, snapshot: int = 3) -> None:
    """Stacked vmap training equals local_train per client: final and snapshot states, losses, and a resume from the snapshot."""
    layout = FlatLayout.of(model)
    flat = layout.flatten(model)
    anchor = flat + 0.05 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(9)) if mu else None
    stops = [epochs * steps_per_epoch(len(x), spec.batch_size) - i for i, (x, _) in enumerate(data)]  # each stops elsewhere
    jobs = [Job(x=x, y=y, start=TrainState(flat), seed=10 + i, stop_step=stops[i], snapshots=(snapshot,), anchor=anchor, prox_mu=mu) for i, (x, y) in enumerate(data)]
    trajectories = train_stacked(model, layout, jobs, spec=spec, stacked=FunctionalStack(model, layout, spec))
    for (x, y), job, traj in zip(data, jobs, trajectories):
        run = lambda start, stop: local_train(model, layout, start, x, y, spec=spec, seed=job.seed, stop_step=stop, anchor=anchor, prox_mu=mu)  # noqa: E731
        ref = run(TrainState(flat), job.stop_step)
        got = traj.result(0, job.stop_step)
        _close_state(got.state, ref.state)
        assert got.loss == pytest.approx(ref.loss, rel=1e-5) and got.samples == ref.samples and got.diverged_step is None
        mid = run(TrainState(flat), snapshot)
        _close_state(traj.states[snapshot], mid.state)
        resumed = run(traj.states[snapshot], job.stop_step)  # the vmap path's optimiser state resumes sequentially
        _close_state(resumed.state, ref.state)
        assert traj.result(snapshot, job.stop_step).loss == pytest.approx(resumed.loss, rel=1e-5)


@pytest.mark.parametrize("spec", [SGD, LocalSpec(batch_size=32, lr=0.1, optimizer="sgd", task=CLASSIFY), ADAM], ids=["sgd-momentum", "sgd", "adam"])
def test_logistic_regression_equals_local_train(spec):
    _check(logreg(), _images(), spec)


@pytest.mark.parametrize("spec", [SGD, ADAM], ids=["sgd", "adam"])
def test_small_cnn_equals_local_train(spec):
    _check(cnn(), _images(), spec)


@pytest.mark.parametrize("spec", [SGD, ADAM], ids=["sgd", "adam"])
def test_fedprox_equals_local_train(spec):
    _check(cnn(), _images(), spec, mu=0.1)


def test_batchnorm_under_sgd_equals_local_train():
    """Running statistics and num_batches_tracked are stacked buffers vmap updates per client."""
    _check(cnn(bn=True), _images(), SGD)


def test_regression_mlp_equals_local_train():
    g = torch.Generator().manual_seed(3)
    data = []
    for n in SIZES:
        x = torch.randn(n, 6, generator=g)
        data.append((x, x[:, :3].sum(1) - x[:, 3] * x[:, 4] + 0.1 * torch.randn(n, generator=g)))
    model = _seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1)))
    for spec in (LocalSpec(batch_size=32, lr=0.05, optimizer="sgd", momentum=0.5, task=Regression(outputs_per_row=1)), LocalSpec(batch_size=32, lr=1e-2, task=Regression(outputs_per_row=1))):
        _check(model, data, spec, epochs=3)


@pytest.mark.parametrize("spec", [SGD, ADAM], ids=["sgd", "adam"])
def test_resumes_from_sequential_checkpoints_and_is_deterministic(spec):
    data = _images()
    model = cnn()
    layout = FlatLayout.of(model)
    flat = layout.flatten(model)
    starts = [local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=i, stop_step=2).state for i, (x, y) in enumerate(data)]
    jobs = [Job(x=x, y=y, start=s, seed=i, stop_step=7) for i, ((x, y), s) in enumerate(zip(data, starts))]
    net = FunctionalStack(model, layout, spec)
    trajs = train_stacked(model, layout, jobs, spec=spec, stacked=net)
    again = train_stacked(model, layout, jobs, spec=spec, stacked=net)
    for i, ((x, y), traj, other) in enumerate(zip(data, trajs, again)):
        _close_state(traj.states[7], local_train(model, layout, TrainState(flat), x, y, spec=spec, seed=i, stop_step=7).state)
        assert torch.equal(traj.states[7].flat, other.states[7].flat)



def test_support_names_what_vmap_cannot_train():
    x, y = _images((40,))[0]
    assert functional_support(logreg(), SGD, (x, y)) is None
    assert functional_support(cnn(bn=True), SGD, (x, y)) is None
    dropout = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.2), nn.Linear(32, 10))
    assert "model has dropout (2: Dropout(p=0.2))" in functional_support(dropout, SGD)
    assert "dropout" in functional_support(nn.Sequential(nn.Flatten(), SeededDropout(0.5), nn.Linear(64, 10)), SGD)
    assert functional_support(nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(64, 10)), SGD) is None
    assert "per-channel normalisation" in functional_support(cnn(bn=True), ADAM)
    assert "bf16-mixed" in functional_support(logreg(), LocalSpec(precision="bf16-mixed", task=CLASSIFY))

    class Branchy(nn.Module):  # data-dependent control flow: only trying a step finds it
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            h = self.fc(x.flatten(1))
            return h if h.sum().item() > 0 else -h

    assert functional_support(Branchy(), SGD) is None
    assert "Branchy fails under vmap" in functional_support(Branchy(), SGD, (x, y))
    features = torch.randn(40, 12, generator=torch.Generator().manual_seed(1))
    assert "DAGMM fails under vmap" in functional_support(DAGMM(12, dropout=0.0), LocalSpec(optimizer="sgd"), (features, torch.zeros(40)))
    with pytest.raises(ValueError, match="dropout"):
        FunctionalStack(dropout, FlatLayout.of(dropout), SGD)
