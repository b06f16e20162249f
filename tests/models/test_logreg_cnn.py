"""Logistic regression and the small CNN: output shapes, gradients to every weight, bad sizes in one line."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, vmap

from fedsim.errors import FedsimError
from fedsim.models.cnn import CNN
from fedsim.models.logreg import LogisticRegression


def every_weight_gets_a_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> bool:
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_logreg_is_one_linear_map_of_the_flattened_sample():
    model = LogisticRegression(num_features=12, num_classes=4)
    x = torch.randn(5, 3, 4)
    assert model(x).shape == (5, 4)
    assert torch.allclose(model(x), x.flatten(1) @ model.linear.weight.T + model.linear.bias)
    assert every_weight_gets_a_gradient(model, x, torch.tensor([0, 1, 2, 3, 0]))


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (1, 7, 9)])
def test_cnn_fits_the_input_shape(shape):
    model = CNN(input_shape=shape, num_classes=10, channels=(4, 8), hidden=16)
    x = torch.rand(6, *shape)
    assert model(x).shape == (6, 10)
    assert every_weight_gets_a_gradient(model, x, torch.arange(6))


def test_cnn_has_no_batchnorm_or_dropout_and_runs_under_vmap():
    model = CNN(input_shape=(1, 8, 8), num_classes=10)
    assert not any(isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.Dropout)) for m in model.modules())
    params = {k: torch.stack([v, v + 0.01]) for k, v in model.named_parameters()}
    x = torch.rand(2, 3, 1, 8, 8)
    out = vmap(lambda p, xb: functional_call(model, p, (xb,)))(params, x)
    assert out.shape == (2, 3, 10)
    assert torch.allclose(out[0], model(x[0]), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"input_shape": (64,)}, "model=cnn"),
        ({"input_shape": (1, 8, 8), "channels": (4, 4, 4, 4)}, "model.channels"),
        ({"input_shape": (1, 8, 8), "hidden": 0}, "model.hidden"),
        ({"input_shape": (1, 8, 8), "channels": (0,)}, "model.channels"),
    ],
)
def test_cnn_bad_sizes_are_one_line(kwargs, key):
    with pytest.raises(FedsimError, match=key) as err:
        CNN(num_classes=10, **kwargs)
    assert "\n" not in str(err.value)


def test_logreg_with_one_output_is_binary_logistic_regression():
    assert LogisticRegression(num_features=3, num_classes=1)(torch.rand(4, 3)).shape == (4, 1)
    with pytest.raises(FedsimError, match="model=logreg"):
        LogisticRegression(num_features=0, num_classes=10)
