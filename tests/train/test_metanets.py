"""FedL2P's meta-nets: initial outputs, straight-through clamp, flat layout."""

from __future__ import annotations

import math

import pytest
import torch

from fedsim.errors import FedsimError
from fedsim.train.metanets import MetaShapes, init_meta, run_meta

SHAPES = MetaShapes(n_bn=7, n_stats=30, n_lrs=30, hidden=100)  # the paper's DNN


def test_initial_outputs_are_half_local_statistics_and_the_base_learning_rate():
    # Weights are Xavier-normal with gain 0.1 and every bias is the net's constant c, so an
    # output is c + W3·relu(≈c) with W3 entries of std 0.1·√(2/(100+n)) ≈ 0.013: about
    # ±0.07 around β = 0.5 and ±0.12 around multiplier 1 (one σ, for inputs of the
    # profile's size); the bounds are 3.5 σ and 4 σ.
    meta = init_meta(SHAPES, 0.1, torch.Generator().manual_seed(0))
    assert meta.dtype == torch.float32 and meta.shape == (SHAPES.size,)
    gen = torch.Generator().manual_seed(1)
    gap, stats = torch.rand(7, generator=gen) * 3, torch.randn(30, generator=gen)
    betas, mult = run_meta(SHAPES, meta, gap, stats, lr_max=100.0)
    assert betas.shape == (7,) and mult.shape == (30,)
    assert (betas - 0.5).abs().max() < 0.25 and (mult - 1).abs().max() < 0.5


def test_clamped_outputs_still_pass_gradients_straight_through():
    meta = init_meta(SHAPES, 0.1, torch.Generator().manual_seed(0))
    ends = [0, *torch.tensor([math.prod(s) for s in SHAPES.shapes]).cumsum(0).tolist()]
    bn_out_bias = slice(ends[5], ends[6])  # the BN-net's (W1, b1, W2, b2, W3, b3): b3
    meta[bn_out_bias] = 5.0  # β far above 1: clamped
    meta.requires_grad_(True)
    betas, mult = run_meta(SHAPES, meta, torch.zeros(7), torch.zeros(30), lr_max=2.0)
    assert torch.equal(betas.detach(), torch.ones(7)) and mult.max() <= 2.0
    (g,) = torch.autograd.grad(betas.sum(), meta)
    assert torch.equal(g[bn_out_bias], torch.ones(7))  # ∂β/∂bias = 1 despite the clamp


def test_a_meta_vector_of_another_architecture_is_refused():
    with pytest.raises(FedsimError, match="meta-net vector"):
        run_meta(SHAPES, torch.zeros(SHAPES.size + 1), torch.zeros(7), torch.zeros(30), lr_max=1.0)
