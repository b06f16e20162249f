"""β-mixed BatchNorm fine-tuning: the two ends of β in plain torch, and the client profile."""

from __future__ import annotations

import copy

import torch

from fedsim.models.dnn import AnomalyDNN
from fedsim.seeding import torch_generator
from fedsim.train.finetune import STAT_EPS, finetune_state, mlp_arch, profile
from fedsim.train.flat import FlatLayout
from fedsim.train.local import batch_bounds


def _setup(seed: int = 0, n: int = 90):
    """A [16, 8] model without dropout (so train mode is deterministic) with non-trivial running statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AnomalyDNN(6, hidden=(16, 8), dropout=0.0)
    model.train()
    with torch.no_grad():
        for _ in range(30):
            model(torch.randn(64, 6, generator=gen))
    x = torch.randn(n, 6, generator=gen) * 1.5 + 0.7
    return model, FlatLayout.of(model), x, (x[:, 0] + x[:, 1] > 1.4).long()


def test_beta_one_is_train_mode_batchnorm_and_leaves_the_clients_own_statistics():
    model, layout, x, y = _setup()
    arch = mlp_arch(model, layout)
    lr, steps = 0.05, 8
    bounds = batch_bounds(len(x), 16)
    idx, perm = [], None
    for step in range(steps):
        epoch, i = divmod(step, len(bounds) - 1)
        perm = torch.randperm(len(x), generator=torch_generator(0, "fedl2p-batches", epoch)) if i == 0 else perm
        idx.append(perm[bounds[i] : bounds[i + 1]])
    batches = ([x[r] for r in idx], [y[r] for r in idx], [torch.ones(len(r)) for r in idx])
    out = finetune_state(arch, arch.state(layout.flatten(model)), torch.ones(2), torch.full((10,), lr), batches, x, torch.ones(len(x)))
    hand = copy.deepcopy(model)
    hand.train()
    opt = torch.optim.SGD(hand.parameters(), lr=lr)
    for r in idx:
        opt.zero_grad()
        hand.loss(x[r], y[r]).backward()
        opt.step()
    # Personalised statistics at β = 1: layer by layer, the mean and unbiased variance of its
    # input over all rows, earlier layers normalised by theirs (train mode, momentum 1).
    bns = [m for m in hand.net if isinstance(m, torch.nn.BatchNorm1d)]
    with torch.no_grad():
        hand.eval()
        for bn in bns:
            bn.train()
            bn.momentum = 1.0
            hand(x)
            bn.eval()
    expected = layout.flatten(hand)
    ours = torch.cat([t.reshape(-1) for t in out])
    keep = torch.cat([torch.full((n,), "num_batches" not in name) for name, n in zip(layout.names, layout.numels)])
    torch.testing.assert_close(ours[keep], expected[keep], rtol=0, atol=1e-6)  # float32: BN written out vs torch's kernel, a few ulps


def test_profile_gap_is_zero_for_a_client_that_matches_the_global_statistics_and_grows_with_shift():
    model, layout, x, _ = _setup()
    arch = mlp_arch(model, layout)
    t = arch.state(layout.flatten(model))
    first = model.net[0](x).detach()
    t[arch.stats[0][0]], t[arch.stats[0][1]] = first.mean(0), first.var(0)  # global = this client's own, layer 1
    w = torch.ones(len(x))
    gap, stats = profile(arch, t, x, w)
    assert gap[0].abs() < 1e-6 and gap[1] > 0
    shifted_gap, _ = profile(arch, t, x + 1.0, w)
    assert shifted_gap[0] > 0.1
    # LR-net input: (mean, std) over all elements of each Linear/BatchNorm layer's input
    torch.testing.assert_close(stats[:4], torch.stack([x.mean(), (x.var() + STAT_EPS).sqrt(), first.mean(), (first.var() + STAT_EPS).sqrt()]))
    assert stats.shape == (2 * 5,)
