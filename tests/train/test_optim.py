"""fedsim's local Adam and SGD against torch.optim: the same parameters and the same state_dict, bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedsim.train.local import LocalSpec
from fedsim.train.optim import LocalOptimizer, param_groups

SPECS = [LocalSpec(lr=0.01), LocalSpec(lr=0.05, optimizer="sgd", momentum=0.9), LocalSpec(lr=0.05, optimizer="sgd")]
IDS = ["adam", "sgd-momentum", "sgd"]


def torch_optimizer(spec: LocalSpec, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum)
    return torch.optim.Adam(params, lr=spec.lr)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 3), nn.Tanh(), nn.Linear(3, 1))


def steps(model: nn.Module, opt, batches: list[tuple[torch.Tensor, torch.Tensor]], frozen: int | None = None) -> None:
    """A step per batch; ``frozen``: the parameter left without a gradient in the first step."""
    for k, (x, y) in enumerate(batches):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        if frozen is not None and k == 0:
            list(model.parameters())[frozen].grad = None
        opt.step()


def assert_same_state(ours: dict, theirs: dict) -> None:
    assert ours["param_groups"] == theirs["param_groups"]
    assert list(ours["state"]) == list(theirs["state"])
    for i, entry in theirs["state"].items():
        assert list(ours["state"][i]) == list(entry)
        for key, value in entry.items():
            assert ours["state"][i][key].dtype == value.dtype and torch.equal(ours["state"][i][key], value), (i, key)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@pytest.mark.parametrize("frozen", [None, 2], ids=["all-grads", "one-without-grad"])
def test_steps_and_state_are_torchs_and_each_resumes_from_the_other(spec, frozen):
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 6, generator=g), torch.randn(16, 1, generator=g)) for _ in range(8)]
    ours, theirs = net(), net()
    opt_ours = LocalOptimizer(spec, list(ours.parameters()))
    opt_theirs = torch_optimizer(spec, list(theirs.parameters()))
    steps(ours, opt_ours, batches[:4], frozen)
    steps(theirs, opt_theirs, batches[:4], frozen)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert_same_state(opt_ours.state_dict(), opt_theirs.state_dict())
    # swap: ours goes on from torch's state, torch from ours
    mine, saved_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    kept = {i: {k: v.clone() for k, v in e.items()} for i, e in saved_theirs["state"].items()}
    opt_ours = LocalOptimizer(spec, list(ours.parameters()), saved_theirs)
    opt_theirs = torch_optimizer(spec, list(theirs.parameters()))
    opt_theirs.load_state_dict(mine)
    steps(ours, opt_ours, batches[4:])
    steps(theirs, opt_theirs, batches[4:])
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert_same_state(opt_ours.state_dict(), opt_theirs.state_dict())
    assert_same_state(saved_theirs, {"state": kept, "param_groups": saved_theirs["param_groups"]})  # the state it was given is untouched


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_param_groups_are_torchs(spec):
    params = list(net().parameters())
    assert param_groups(spec, len(params)) == torch_optimizer(spec, params).state_dict()["param_groups"]


def test_a_state_for_another_model_is_refused_by_name():
    model = net()
    opt = LocalOptimizer(SPECS[0], list(model.parameters()))
    steps(model, opt, [(torch.ones(2, 6), torch.zeros(2, 1))])
    with pytest.raises(ValueError, match="6 parameters, the model has 2"):
        LocalOptimizer(SPECS[0], list(nn.Linear(3, 1).parameters()), opt.state_dict())
