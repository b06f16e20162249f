"""FedL2P's client side: personalisation, hypergradients, batching across clients."""

from __future__ import annotations

import copy

import pytest
import torch

from fedsim.errors import FedsimError
from fedsim.models.dagmm import DAGMM
from fedsim.models.dnn import AnomalyDNN
from fedsim.seeding import torch_generator, torch_seed
from fedsim.tasks import BinaryAnomalyDetection
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState, batch_bounds, local_train
from fedsim.train.personalize import (
    PersonalizeSpec,
    client_profile,
    finetune,
    meta_gradient,
    meta_gradient_many,
    meta_init,
    meta_outputs,
    personalize,
    personalize_many,
)

SPEC = PersonalizeSpec(steps=9, batch_size=16, hidden=8)  # 9 steps cross an epoch boundary on ≤ 128 rows
N_PARAMS = 10  # parameter tensors of a [16, 8] AnomalyDNN: 3 Linear + 2 BatchNorm, weight and bias each


def evaluate(model, layout, flat, x, y, threshold):
    """The anomaly task's scores of ``flat`` on ``(x, y)``."""
    layout.load(model, flat)
    return BinaryAnomalyDetection().evaluate(model, x, y, threshold)


@pytest.fixture(scope="module")
def fed(tiny_data):
    """A global [16, 8] model with trained weights and running statistics, and its clients' rows."""
    x = torch.cat([c[0] for c in tiny_data["clients"]])
    y = torch.cat([c[1] for c in tiny_data["clients"]])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(0, "init"))
        model = AnomalyDNN(x.shape[1], hidden=(16, 8))
    layout = FlatLayout.of(model)
    trained = local_train(model, layout, TrainState(layout.flatten(model)), x[:150], y[:150], spec=LocalSpec(batch_size=32, lr=1e-2), seed=0, stop_step=40)
    return {"model": model, "layout": layout, "flat": trained.state.flat, "x": x[150:], "y": y[150:], "meta": meta_init(model, SPEC, 0)}


def _hand_finetune(model, layout, flat, x, y, *, lr, steps, batch_size, seed, train_bn):
    """Plain-torch SGD on the documented batch schedule; BatchNorm in eval (global stats) or train mode."""
    hand = copy.deepcopy(model)
    layout.load(hand, flat)
    hand.eval()
    for m in hand.net:
        if isinstance(m, torch.nn.BatchNorm1d):
            m.train(train_bn)
    opt = torch.optim.SGD(hand.parameters(), lr=lr)
    bounds = batch_bounds(len(x), batch_size)
    for step in range(steps):
        epoch, i = divmod(step, len(bounds) - 1)
        if i == 0:
            perm = torch.randperm(len(x), generator=torch_generator(seed, "fedl2p-batches", epoch))
        rows = perm[bounds[i] : bounds[i + 1]]
        opt.zero_grad()
        hand.loss(x[rows], y[rows]).backward()
        opt.step()
    return hand


def test_pinned_meta_outputs_equal_finetuning_by_hand(fed):
    # Issue #12: LR-net pinned to the base LR and β pinned to 0 is plain SGD with BatchNorm
    # on the global running statistics. 1e-6: the same float32 arithmetic up to how BN is
    # written (weighted sums vs torch's kernel), ≈1e-7 relative per step.
    model, layout, flat, x, y = fed["model"], fed["layout"], fed["flat"], fed["x"][:100], fed["y"][:100]
    spec = PersonalizeSpec(steps=9, batch_size=16, base_lr=0.05)
    out = finetune(model, layout, flat, x, y, betas=torch.zeros(2), lrs=torch.full((N_PARAMS,), 0.05), spec=spec, seed=3)
    hand = _hand_finetune(model, layout, flat, x, y, lr=0.05, steps=9, batch_size=16, seed=3, train_bn=False)
    assert (out - flat).abs().max() > 1e-3  # it did train
    torch.testing.assert_close(out, layout.flatten(hand), rtol=0, atol=1e-6)
    test_x, test_y = fed["x"][100:], fed["y"][100:]
    ours, theirs = evaluate(model, layout, out, test_x, test_y, threshold=0.5), evaluate(hand, layout, layout.flatten(hand), test_x, test_y, threshold=0.5)
    assert abs(ours["loss"] - theirs["loss"]) < 1e-6 and abs(ours["auc"] - theirs["auc"]) < 1e-6
    stats = [i for i, n in enumerate(layout.names) if "running" in n]
    offsets = torch.tensor([0, *layout.numels]).cumsum(0)
    for i in stats:  # β = 0 keeps the global statistics bit for bit
        assert torch.equal(out[offsets[i] : offsets[i + 1]], flat[offsets[i] : offsets[i + 1]])


def test_changing_betas_or_lrs_changes_the_personalised_model(fed):
    model, layout, flat, x, y = fed["model"], fed["layout"], fed["flat"], fed["x"][:100], fed["y"][:100]
    run = lambda betas, lrs: finetune(model, layout, flat, x, y, betas=torch.tensor(betas), lrs=torch.full((N_PARAMS,), lrs), spec=SPEC, seed=1)  # noqa: E731
    base = run([0.5, 0.5], 0.01)
    for other in (run([0.5, 0.9], 0.01), run([0.1, 0.5], 0.01), run([0.5, 0.5], 0.02)):
        assert (other - base).abs().max() > 1e-4


def test_meta_outputs_feed_personalize(fed):
    model, layout, flat, meta, x, y = fed["model"], fed["layout"], fed["flat"], fed["meta"], fed["x"][:100], fed["y"][:100]
    betas, lrs = meta_outputs(model, layout, meta, client_profile(model, layout, flat, x), spec=SPEC)
    assert betas.shape == (2,) and lrs.shape == (N_PARAMS,)
    expected = finetune(model, layout, flat, x, y, betas=betas, lrs=lrs, spec=SPEC, seed=4)
    torch.testing.assert_close(personalize(model, layout, flat, meta, x, y, spec=SPEC, seed=4), expected, rtol=0, atol=0)


def test_meta_validation_loss_is_the_evaluated_loss_on_held_out_rows(fed):
    model, layout, flat, meta, x, y = fed["model"], fed["layout"], fed["flat"], fed["meta"], fed["x"][:100], fed["y"][:100]
    perm = torch.randperm(100, generator=torch_generator(5, "fedl2p-split"))  # the documented split: 20 held out
    ft, val = perm[20:], perm[:20]
    personal = personalize(model, layout, flat, meta, x[ft], y[ft], spec=SPEC, seed=5)
    loss, _ = meta_gradient(model, layout, flat, meta, x, y, spec=SPEC, seed=5)
    assert abs(evaluate(model, layout, personal, x[val], y[val], threshold=0.5)["loss"] - loss) < 1e-6


def test_meta_gradient_agrees_with_finite_differences(fed):
    # float64: central differences with ε = 1e-6 have truncation error ~ε² and rounding
    # ~1e-16/ε ≈ 1e-10, so 1e-6 relative is a loose bound for a correct gradient; a wrong
    # term (e.g. a missing path through the unrolled steps) is off by far more.
    model = copy.deepcopy(fed["model"]).double()
    layout = FlatLayout.of(model)
    flat, meta, x, y = fed["flat"].double(), fed["meta"].double(), fed["x"][:80].double(), fed["y"][:80]
    loss, g = meta_gradient(model, layout, flat, meta, x, y, spec=SPEC, seed=2)
    assert g.dtype == torch.float64 and g.shape == meta.shape
    f = lambda m: meta_gradient(model, layout, flat, m, x, y, spec=SPEC, seed=2)[0]  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    directions = [torch.randn(meta.shape, generator=gen, dtype=torch.float64) for _ in range(2)]
    directions += [torch.nn.functional.one_hot(torch.tensor(i), len(meta)).double() for i in (len(meta) - 1, len(meta) - N_PARAMS - 1)]
    eps = 1e-6
    for v in directions:  # random directions, and the biases of the last LR multiplier and of a β
        fd = (f(meta + eps * v) - f(meta - eps * v)) / (2 * eps)
        analytic = float(g @ v)
        assert analytic != 0.0 and abs(fd - analytic) <= 1e-6 * max(abs(analytic), 1e-3)


def test_gradient_descent_on_the_meta_nets_lowers_a_skewed_clients_loss(fed):
    # A client whose features are scaled and shifted (covariate shift) is what the BN-net is
    # for. Gradient descent with Armijo backtracking: from α0 = 1% of |meta|, halve α until a
    # step along −g/|g| lowers the loss by at least half its first-order prediction α|g|.
    # For a correct gradient such an α exists (the loss is piecewise smooth: ReLUs), so a
    # fixed step need not descend every time but a backtracked one must; a gradient of the
    # wrong direction or scale runs out of the 8 halvings (α ≥ α0/256).
    model, layout, flat, meta = fed["model"], fed["layout"], fed["flat"], fed["meta"]
    x, y = fed["x"][:100] * 2.0 + 1.5, fed["y"][:100]
    f = lambda m: meta_gradient(model, layout, flat, m, x, y, spec=SPEC, seed=7)  # noqa: E731
    m, (loss, g) = meta, f(meta)
    start = loss
    for _ in range(4):
        alpha = 0.01 * float(meta.norm())
        for _ in range(9):
            trial = m - alpha * g / g.norm()
            new_loss, new_g = f(trial)
            if loss - new_loss >= 0.5 * alpha * float(g.norm()):
                break
            alpha /= 2
        else:
            pytest.fail(f"no descent step along the meta-gradient from loss {loss}")
        m, loss, g = trial, new_loss, new_g
    assert loss < start


def test_same_seed_same_outputs_and_inputs_untouched(fed):
    model, layout, flat, meta, x, y = fed["model"], fed["layout"], fed["flat"], fed["meta"], fed["x"][:100], fed["y"][:100]
    before = [t.clone() for t in (flat, meta, x, y)]
    a, b, c = (personalize(model, layout, flat, meta, x, y, spec=SPEC, seed=s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    (la, ga), (lb, gb), (lc, gc) = (meta_gradient(model, layout, flat, meta, x, y, spec=SPEC, seed=s) for s in (1, 1, 2))
    assert la == lb and torch.equal(ga, gb) and not torch.equal(ga, gc)
    assert all(torch.equal(t, u) for t, u in zip(before, (flat, meta, x, y)))
    assert torch.equal(meta_init(model, SPEC, 0), meta) and not torch.equal(meta_init(model, SPEC, 1), meta)


def test_batched_clients_match_one_at_a_time(fed):
    # Unequal sizes: padding rows (weight 0) and per-step batch shapes differ by client.
    # 1e-6: same float32 arithmetic up to summation order (padding, batched kernels).
    model, layout, flat, meta, x, y = fed["model"], fed["layout"], fed["flat"], fed["meta"], fed["x"], fed["y"]
    clients = [(x[:70], y[:70]), (x[70:123], y[70:123]), (x[123:213], y[123:213])]
    seeds = [11, 12, 13]
    many = personalize_many(model, layout, flat, meta, clients, spec=SPEC, seeds=seeds)
    grads = meta_gradient_many(model, layout, flat, meta, clients, spec=SPEC, seeds=seeds)
    for (cx, cy), s, personal, (loss, g) in zip(clients, seeds, many, grads):
        torch.testing.assert_close(personal, personalize(model, layout, flat, meta, cx, cy, spec=SPEC, seed=s), rtol=0, atol=1e-6)
        ref_loss, ref_g = meta_gradient(model, layout, flat, meta, cx, cy, spec=SPEC, seed=s)
        assert abs(loss - ref_loss) < 1e-6
        torch.testing.assert_close(g, ref_g, rtol=0, atol=1e-6)


def test_models_without_batchnorm_are_refused_with_the_fix():
    for model in (DAGMM(8, hidden=(6, 4), components=2), AnomalyDNN(8, hidden=(6, 4), batch_norm=False)):
        with pytest.raises(FedsimError, match="BatchNorm"):
            meta_init(model, SPEC, 0)


def test_bad_spec_and_too_small_clients_are_refused(fed):
    with pytest.raises(FedsimError, match="val_fraction"):
        PersonalizeSpec(val_fraction=1.0)
    with pytest.raises(FedsimError, match="≥ 3 rows"):
        meta_gradient(fed["model"], fed["layout"], fed["flat"], fed["meta"], fed["x"][:2], fed["y"][:2], spec=SPEC, seed=0)
