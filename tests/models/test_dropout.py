"""SeededDropout draws nn.Dropout's bits from a private generator and leaves the global RNG alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedsim.models.dnn import AnomalyDNN
from fedsim.models.dropout import SeededDropout
from fedsim.seeding import torch_generator, torch_seed
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState, local_train


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_masks_are_those_of_nn_dropout_after_manual_seed(dtype):
    x = torch.randn(64, 33).to(dtype)
    seeded = SeededDropout(0.3)
    seeded.generator = torch_generator(5, "dropout", 7)
    got = seeded(x)
    with torch.random.fork_rng():
        torch.manual_seed(torch_seed(5, "dropout", 7))
        want = nn.Dropout(0.3)(x)
    assert torch.equal(got, want)


def test_without_a_generator_or_in_eval_it_is_plain_dropout():
    x = torch.randn(16, 8)
    layer = SeededDropout(0.5).eval()
    layer.generator = torch_generator(0, "dropout", 0)
    assert torch.equal(layer(x), x)
    layer.train().generator = None
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    assert torch.equal(a, nn.Dropout(0.5)(x))


def test_local_train_neither_reads_nor_moves_the_global_rng():
    model = AnomalyDNN(6, hidden=[8, 4], dropout=0.5, dropout_last=2)
    layout = FlatLayout.of(model)
    x, y = torch.randn(40, 6), (torch.rand(40) > 0.5).float()
    start = TrainState(flat=layout.flatten(model), step=0)
    results = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        results.append(local_train(model, layout, start, x, y, spec=LocalSpec(batch_size=8), seed=11, stop_step=10))
        assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(results[0].state.flat, results[1].state.flat)
    assert all(m.generator is None for m in model.modules() if isinstance(m, SeededDropout))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_same_masks_on_cuda():
    x = torch.randn(32, 16)
    layer = SeededDropout(0.25)
    layer.generator = torch_generator(1, "dropout", 2)
    cpu = layer(x)
    layer.generator = torch_generator(1, "dropout", 2)
    assert torch.equal(layer(x.cuda()).cpu(), cpu)
