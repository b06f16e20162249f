"""FedL2P's client side (Lee et al., NeurIPS 2023, "FedL2P: Federated Learning to Personalize").

Two meta-nets shared by all clients (:mod:`fedsim.train.metanets`) decide how a client
fine-tunes the global model: the BN-net maps, per BatchNorm layer, the gap between the
client's feature statistics and the global running statistics to a mixing ratio β_l
(personalised statistics = β·local + (1−β)·global); the LR-net maps the client's
feature statistics to one learning rate per parameter tensor. A client's
hypergradient is the gradient of its meta-validation loss after fine-tuning with
respect to the meta-nets' parameters; the server averages these and steps.

Contract (every function here is pure; randomness comes only from ``seed``):

* profile: on the global model in eval mode, per BatchNorm layer the symmetric KL
  ½KL(g‖c)+½KL(c‖g) between N(μ,σ²+1e-5) of the global running statistics and of the
  client's rows (mean, unbiased variance), averaged over channels, as ``log1p``; per
  Linear/BatchNorm layer the mean and std (√(unbiased var + 1e-5)) over all elements
  of its input. Both in forward order.
* fine-tuning: ``spec.steps`` plain SGD steps, parameter tensor i at ``lrs[i]``; the
  minibatches of epoch e are ``randperm(n)`` from ``torch_generator(seed,
  "fedl2p-batches", e)`` cut by :func:`~fedsim.train.local.batch_bounds`. BatchNorm l
  normalises a batch with mean (1−β_l)·μ_global + β_l·mean_batch and variance
  (1−β_l)·σ²_global + β_l·var_batch (biased): β=0 is eval-mode BatchNorm on the global
  running statistics, β=1 is train-mode BatchNorm; running statistics are not updated
  during the steps. Dropout is off (identity) throughout: the objective is
  deterministic and differentiable, and ``evaluate`` scores in eval mode anyway.
* personalised state: the fine-tuned parameters, and per BatchNorm layer
  running_mean/var = (1−β)·global + β·(mean, unbiased var of that layer's input over
  all the client's fine-tuning rows under the fine-tuned weights, earlier layers
  normalised by their personalised statistics); ``num_batches_tracked`` unchanged.
  So β=0 leaves the global statistics bit for bit, and ``evaluate`` scores the flat
  vector as is.
* meta-gradient: ``round(val_fraction·n)`` rows (≥ 1, leaving ≥ 2) drawn by
  ``torch_generator(seed, "fedl2p-split")`` are the meta-validation split; the rest are
  profiled and fine-tuned on; the loss is the eval-mode BCE of the personalised state
  on the whole validation split, differentiated exactly through the unrolled steps.
* batching: :func:`personalize_many` and :func:`meta_gradient_many` run the same
  per-client functions under ``torch.func.vmap``, each client's rows padded to the
  largest client's with weight-0 rows; results equal one client at a time up to
  float32 summation order (≤ 1e-6 in the tests). Memory is K times one client's.
* dtype and device: everything runs in ``x``'s; ``flat`` and ``meta_flat`` are moved there.

Where fedsim differs from the authors' code (royson/fedl2p, ``fedl2p_classification_client.py``,
``weight_net.py``, ``model_utils.py``, ``configs/cifar10/cifar_fedl2p.yaml``):

1. Hypergradient: exact reverse mode through all unrolled SGD steps (second order,
   ``torch.func``; memory grows as steps × model size). The authors use the implicit
   function theorem with a 3-term Neumann series (``Hypergrad``, lr 0.1) at the
   fine-tuned weights, with first-order inner steps, so the LR-net enters only through
   the last step's update; plus the direct ∂L_val/∂β of the BN-net.
2. Global model: the authors personalise a pretrained global model held fixed while
   only the meta-nets learn; in fedsim the global model may be trained by FedAvg at
   the same time, so the meta-nets follow a moving model.
3. Meta update: the authors take ``outer_loop_epochs`` local SGD steps on the meta-nets
   per client and round (one per validation minibatch, gradients clamped to ±1) and
   FedAvg the meta-net weights by validation rows; here a client returns one
   hypergradient and the server averages and steps (the same for one outer SGD step);
   clamping and weighting are the server's choice.
4. Meta-validation: the whole validation split in one batch, not one minibatch.
5. BN-net input: the authors' symmetric KL, but through ``log1p`` (a client with a
   near-constant feature gives KL ~ 1e5, which would saturate β) and in forward layer
   order (the authors' ``precompute_kld`` prepends, i.e. reverse order; immaterial for a
   dense net).
6. LR-net: the authors' "layerwise" inputs and per-tensor outputs, clamp [0, lr_max]
   with a straight-through gradient; the authors also learn a per-tensor base LR
   (``learnable_lrs``) that the multiplier scales, fedsim keeps ``base_lr`` fixed.
7. Personalised statistics for evaluation: the authors mix the global statistics with
   an EMA (momentum 0.1, reset to 0/1) of the fine-tuning batches; fedsim mixes with the
   exact statistics of the client's rows, which is unbiased after few steps.
8. Dropout is off in fine-tuning (the authors fine-tune in train mode); the loss is
   binary cross-entropy (theirs: softmax CE); no augmentation, no skipping of NaN
   batches, no gradient clipping of the inner loop; length in steps, not epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch.func import grad_and_value, vmap

from fedsim.errors import FedsimError
from fedsim.models.base import AnomalyModel
from fedsim.seeding import torch_generator
from fedsim.train.finetune import MLPArch, bce, finetune_state, forward, mlp_arch, profile, running_norm
from fedsim.train.flat import FlatLayout
from fedsim.train.local import batch_bounds
from fedsim.train.metanets import MetaShapes, init_meta, run_meta


@dataclass(frozen=True)
class PersonalizeSpec:
    """How a client personalises: fine-tuning schedule, meta-validation split, meta-net size."""

    steps: int = 20  # SGD minibatch steps of fine-tuning
    batch_size: int = 32  # rows per fine-tuning minibatch
    base_lr: float = 0.01  # SGD learning rate that the LR-net's multipliers scale
    lr_max: float = 100.0  # upper clamp of an LR multiplier (base_lr·lr_max = 1.0, the authors' 1e-3·1000)
    val_fraction: float = 0.2  # share of a client's rows held out for the meta-validation loss (authors: 1/5)
    hidden: int = 100  # width of both hidden layers of each meta-net (authors: 100)
    init_gain: float = 0.1  # Xavier-normal gain of the meta-nets' initial weights (authors: 0.1)

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 0, "steps", "≥ 0"),
            (self.batch_size >= 2, "batch_size", "≥ 2 (BatchNorm needs two rows)"),
            (self.base_lr > 0, "base_lr", "> 0"),
            (self.lr_max > 0, "lr_max", "> 0"),
            (0 < self.val_fraction < 1, "val_fraction", "in (0, 1)"),
            (self.hidden >= 1, "hidden", "≥ 1"),
            (self.init_gain > 0, "init_gain", "> 0"),
        ]
        for ok, key, allowed in checks:
            if not ok:
                raise FedsimError(f"fedl2p {key}={getattr(self, key)!r} is out of range: must be {allowed}")


# --- the pipeline, per client; torch.func.vmap batches it over clients ----------------


def _meta_shapes(arch: MLPArch, spec: PersonalizeSpec) -> MetaShapes:
    return MetaShapes(n_bn=len(arch.stats), n_stats=2 * arch.n_layers, n_lrs=len(arch.params), hidden=spec.hidden)


def _personal_flat(meta_flat, flat, x, w, xb, yb, wb, *, arch: MLPArch, spec: PersonalizeSpec) -> torch.Tensor:
    """Profile → meta-nets → fine-tune: one client's personalised flat state."""
    t = arch.state(flat)
    betas, mult = run_meta(_meta_shapes(arch, spec), meta_flat, *profile(arch, t, x, w), spec.lr_max)
    return torch.cat([v.reshape(-1) for v in finetune_state(arch, t, betas, spec.base_lr * mult, (xb, yb, wb), x, w)])


def _meta_loss(meta_flat, flat, x, w, xb, yb, wb, xv, yv, wv, *, arch: MLPArch, spec: PersonalizeSpec) -> torch.Tensor:
    """One client's meta-validation loss: eval-mode BCE of its personalised state on (xv, yv)."""
    personal = arch.state(_personal_flat(meta_flat, flat, x, w, xb, yb, wb, arch=arch, spec=spec))
    return bce(forward(arch, personal, xv, running_norm(arch, personal)), yv, wv)


# --- a client's rows: fine-tuning minibatches and the meta-validation split ----------


def _batches(n: int, spec: PersonalizeSpec, seed: int) -> list[torch.Tensor]:
    """Row indices of each fine-tuning step (CPU), per the module contract."""
    bounds = batch_bounds(n, spec.batch_size)
    out, perm = [], None
    for step in range(spec.steps):
        epoch, i = divmod(step, len(bounds) - 1)
        if i == 0:
            perm = torch.randperm(n, generator=torch_generator(seed, "fedl2p-batches", epoch))
        out.append(perm[bounds[i] : bounds[i + 1]])
    return out


def _split(n: int, spec: PersonalizeSpec, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fine-tuning rows, meta-validation rows) of a client with ``n`` rows (CPU)."""
    if n < 3:
        raise FedsimError(f"fedl2p: a client with {n} rows cannot be split for meta-validation; give every client ≥ 3 rows")
    n_val = min(max(1, round(spec.val_fraction * n)), n - 2)
    perm = torch.randperm(n, generator=torch_generator(seed, "fedl2p-split"))
    return perm[n_val:], perm[:n_val]


@dataclass
class _Rows:
    """One client's (or, padded and stacked, K clients') tensors in :func:`_meta_loss` argument order."""

    x: torch.Tensor | list
    w: torch.Tensor | list
    xb: torch.Tensor | list
    yb: torch.Tensor | list
    wb: torch.Tensor | list
    xv: torch.Tensor | list | None = None
    yv: torch.Tensor | list | None = None
    wv: torch.Tensor | list | None = None

    def args(self) -> list:
        """The tensors as positional arguments (validation rows only when split)."""
        head = [self.x, self.w, self.xb, self.yb, self.wb]
        return head if self.xv is None else head + [self.xv, self.yv, self.wv]


def _rows(x: torch.Tensor, y: torch.Tensor, spec: PersonalizeSpec, seed: int, *, split: bool) -> _Rows:
    """A client's rows, unpadded: all rows fine-tune unless ``split``."""
    if len(x) < 2:
        raise FedsimError(f"fedl2p: a client with {len(x)} rows cannot be fine-tuned (BatchNorm needs 2); give every client ≥ 3 rows")
    ones = lambda t: torch.ones(len(t), dtype=x.dtype, device=x.device)  # noqa: E731
    val = None
    if split:
        ft, val = (i.to(x.device) for i in _split(len(x), spec, seed))
        x, y, xv, yv = x[ft], y[ft], x[val], y[val]
    idx = [b.to(x.device) for b in _batches(len(x), spec, seed)]
    rows = _Rows(x, ones(x), [x[b] for b in idx], [y[b] for b in idx], [ones(b) for b in idx])
    if val is not None:
        rows.xv, rows.yv, rows.wv = xv, yv, ones(xv)
    return rows


def _pad(ts: Sequence[torch.Tensor], *lead: int) -> torch.Tensor:
    """Zero-padded stack of ``ts`` along their first axis to its longest length."""
    longest = max((len(t) for t in ts), default=0)
    out = ts[0].new_zeros((len(ts), longest, *ts[0].shape[1:]))
    for i, t in enumerate(ts):
        out[i, : len(t)] = t
    return out.view(*lead, longest, *ts[0].shape[1:]) if lead else out


def _stack(rows: Sequence[_Rows]) -> _Rows:
    """K clients' rows padded to common shapes (padding rows have weight 0) and stacked."""
    k, steps = len(rows), len(rows[0].xb)
    fields = {}
    for name in ("x", "w", "xv", "yv", "wv"):
        if getattr(rows[0], name) is not None:
            fields[name] = _pad([getattr(r, name) for r in rows])
    for name in ("xb", "yb", "wb"):
        flat_list = [b for r in rows for b in getattr(r, name)]
        fields[name] = _pad(flat_list, k, steps) if flat_list else getattr(rows[0], name)
    return _Rows(**fields)


# --- public API ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientProfile:
    """The meta-nets' inputs for one client under one global state."""

    gap: torch.Tensor  # (BatchNorm layers,): log1p of the mean symmetric KL, client vs global
    stats: torch.Tensor  # (2·(Linear + BatchNorm layers),): mean, std of each layer's input


def meta_init(model: AnomalyModel, spec: PersonalizeSpec, seed: int) -> torch.Tensor:
    """Initial meta-net parameters (float32, flat), β ≈ 0.5 and LR multiplier ≈ 1 for any client."""
    shapes = _meta_shapes(mlp_arch(model, FlatLayout.of(model)), spec)
    return init_meta(shapes, spec.init_gain, torch_generator(seed, "fedl2p-meta-init"))


def pinned_meta(model: AnomalyModel, spec: PersonalizeSpec, *, beta: float, multiplier: float) -> torch.Tensor:
    """Meta-nets that answer every client with the same β and LR multiplier (last layers' weights zero).

    β = 0 and multiplier 1 make personalisation plain SGD at ``base_lr`` on the global
    BatchNorm statistics: FedL2P's ablation "FedAvg, then fine-tune".
    """
    shapes = _meta_shapes(mlp_arch(model, FlatLayout.of(model)), spec)
    parts = [torch.zeros(s) for s in shapes.shapes]
    parts[5].fill_(beta)  # BN-net output bias
    parts[11].fill_(multiplier)  # LR-net output bias
    return torch.cat([t.reshape(-1) for t in parts])


def client_profile(model: AnomalyModel, layout: FlatLayout, flat: torch.Tensor, x: torch.Tensor) -> ClientProfile:
    """The profile of the rows ``x`` under the global state ``flat`` (model in eval mode)."""
    arch = mlp_arch(model, layout)
    w = torch.ones(len(x), dtype=x.dtype, device=x.device)
    return ClientProfile(*profile(arch, arch.state(flat.to(x)), x, w))


def meta_outputs(model: AnomalyModel, layout: FlatLayout, meta_flat: torch.Tensor, profile: ClientProfile, *, spec: PersonalizeSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(β per BatchNorm layer, learning rate per parameter tensor = base_lr × multiplier)."""
    shapes = _meta_shapes(mlp_arch(model, layout), spec)
    betas, mult = run_meta(shapes, meta_flat.to(profile.gap), profile.gap, profile.stats, spec.lr_max)
    return betas, spec.base_lr * mult


def finetune(
    model: AnomalyModel,
    layout: FlatLayout,
    flat: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    betas: torch.Tensor,
    lrs: torch.Tensor,
    spec: PersonalizeSpec,
    seed: int,
) -> torch.Tensor:
    """The personalised state (same layout as ``flat``) after fine-tuning on all of ``(x, y)``.

    ``betas``: one mixing ratio per BatchNorm layer; ``lrs``: one SGD learning rate per
    parameter tensor, in ``model.named_parameters()`` order.
    """
    arch = mlp_arch(model, layout)
    rows = _rows(x, y, spec, seed, split=False)
    out = finetune_state(arch, arch.state(flat.to(x)), betas, lrs, (rows.xb, rows.yb, rows.wb), rows.x, rows.w)
    return torch.cat([v.reshape(-1) for v in out])


def personalize(model: AnomalyModel, layout: FlatLayout, flat: torch.Tensor, meta_flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, spec: PersonalizeSpec, seed: int) -> torch.Tensor:
    """Profile → meta-nets → fine-tune on all of ``(x, y)``: the client's personalised state."""
    arch = mlp_arch(model, layout)
    with torch.no_grad():
        return _personal_flat(meta_flat.to(x), flat.to(x), *_rows(x, y, spec, seed, split=False).args(), arch=arch, spec=spec)


def meta_gradient(model: AnomalyModel, layout: FlatLayout, flat: torch.Tensor, meta_flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, spec: PersonalizeSpec, seed: int) -> tuple[float, torch.Tensor]:
    """(meta-validation BCE after fine-tuning, its gradient w.r.t. ``meta_flat``) for one client."""
    arch = mlp_arch(model, layout)
    fn = grad_and_value(partial(_meta_loss, arch=arch, spec=spec))
    g, loss = fn(meta_flat.to(x), flat.to(x), *_rows(x, y, spec, seed, split=True).args())
    return float(loss), g


def personalize_many(model: AnomalyModel, layout: FlatLayout, flat: torch.Tensor, meta_flat: torch.Tensor, clients: Sequence[tuple[torch.Tensor, torch.Tensor]], *, spec: PersonalizeSpec, seeds: Sequence[int]) -> list[torch.Tensor]:
    """:func:`personalize` of K clients as one ``vmap`` over padded, stacked rows."""
    arch = mlp_arch(model, layout)
    rows = _stack([_rows(x, y, spec, s, split=False) for (x, y), s in zip(clients, seeds, strict=True)])
    fn = vmap(partial(_personal_flat, arch=arch, spec=spec), in_dims=(None, None, 0, 0, 0, 0, 0))
    with torch.no_grad():
        return list(fn(meta_flat.to(rows.x), flat.to(rows.x), *rows.args()).unbind(0))


def meta_gradient_many(model: AnomalyModel, layout: FlatLayout, flat: torch.Tensor, meta_flat: torch.Tensor, clients: Sequence[tuple[torch.Tensor, torch.Tensor]], *, spec: PersonalizeSpec, seeds: Sequence[int]) -> list[tuple[float, torch.Tensor]]:
    """:func:`meta_gradient` of K clients as one ``vmap`` over padded, stacked rows."""
    arch = mlp_arch(model, layout)
    rows = _stack([_rows(x, y, spec, s, split=True) for (x, y), s in zip(clients, seeds, strict=True)])
    fn = vmap(grad_and_value(partial(_meta_loss, arch=arch, spec=spec)), in_dims=(None, None, *[0] * 8))
    grads, losses = fn(meta_flat.to(rows.x), flat.to(rows.x), *rows.args())
    return [(float(v), g) for v, g in zip(losses, grads.unbind(0))]
