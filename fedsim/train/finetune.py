"""Fine-tuning an MLP with β-mixed BatchNorm, as pure functions of its state tensors.

FedL2P's inner loop (see :mod:`fedsim.train.personalize` for the contract and the
differences from the authors' code). The model is read once into a list of functional
layers indexed into its :class:`~fedsim.train.flat.FlatLayout`; every function here
takes the state as a list of tensors and is written for ``torch.func``: it can be
differentiated through (second order) and ``vmap``-ed over clients. Rows carry a
weight, 1 for a real row and 0 for padding, so clients of different sizes stack; all
statistics and losses are weighted means over the real rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import grad
from torch.nn import functional as F

from fedsim.errors import FedsimError
from fedsim.models.base import AnomalyModel
from fedsim.train.batched import mlp_support
from fedsim.train.flat import FlatLayout

STAT_EPS = 1e-5  # variance floor of the profile's Gaussians and stds (the authors' eps)

Norm = Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # (BatchNorm k, its input) -> (mean, var)


def fedl2p_support(model: AnomalyModel) -> str | None:
    """``None`` when FedL2P can personalise ``model``, else the reason it cannot."""
    reason = mlp_support(model)
    if reason is not None:
        return reason
    if not any(isinstance(m, nn.BatchNorm1d) for m in model.net):
        return f"{type(model).__name__} has no BatchNorm1d layers"
    if any(isinstance(m, nn.Linear) and m.bias is None for m in model.net):
        return "a Linear layer has no bias"
    return None


@dataclass(frozen=True)
class MLPArch:
    """The layers of a FedL2P-ready MLP, as indices into its flat layout's entries."""

    ops: tuple[tuple, ...]  # ("linear", w, b) | ("bn", w, b, k, eps) | ("act", module)
    params: tuple[int, ...]  # entries of the parameters, in named_parameters() order
    stats: tuple[tuple[int, int], ...]  # entries of (running_mean, running_var) of BatchNorm layer k
    layout: FlatLayout

    @property
    def n_layers(self) -> int:
        """Linear and BatchNorm layers (the LR-net sees the input of each)."""
        return sum(op[0] != "act" for op in self.ops)

    def state(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``flat``, one per layout entry."""
        return [c.view(s) for c, s in zip(torch.split(flat, self.layout.numels), self.layout.shapes)]

    def running(self, t: Sequence[torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """BatchNorm layer k's (running_mean, running_var) in state ``t``."""
        return t[self.stats[k][0]], t[self.stats[k][1]]


def mlp_arch(model: AnomalyModel, layout: FlatLayout) -> MLPArch:
    """Read ``model.net``; a model FedL2P cannot personalise is a user error."""
    reason = fedl2p_support(model)
    if reason is not None:
        raise FedsimError(
            f"strategy=fedl2p needs an MLP classifier with BatchNorm layers (model=dnn with model.batch_norm=true; "
            f"DAGMM and BatchNorm-free models do not work): {reason}"
        )
    index = {name: i for i, name in enumerate(layout.names)}
    ops: list[tuple] = []
    stats: list[tuple[int, int]] = []
    for i, layer in enumerate(model.net):
        at = lambda key: index[f"net.{i}.{key}"]  # noqa: E731
        if isinstance(layer, nn.Linear):
            ops.append(("linear", at("weight"), at("bias")))
        elif isinstance(layer, nn.BatchNorm1d):
            ops.append(("bn", at("weight"), at("bias"), len(stats), layer.eps))
            stats.append((at("running_mean"), at("running_var")))
        elif not isinstance(layer, nn.Dropout):  # dropout is off in fine-tuning
            ops.append(("act", layer))
    params = tuple(index[name] for name, _ in model.named_parameters())
    return MLPArch(tuple(ops), params, tuple(stats), layout)


def forward(arch: MLPArch, t: Sequence[torch.Tensor], x: torch.Tensor, norm: Norm, seen: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """Logits of state ``t`` on ``x``; BatchNorm k normalises by ``norm(k, input)``; ``seen`` gets each layer's input."""
    h = x
    for op in arch.ops:
        if op[0] == "act":
            h = op[1](h)
            continue
        if seen is not None:
            seen(h)
        if op[0] == "linear":
            h = F.linear(h, t[op[1]], t[op[2]])
        else:
            mean, var = norm(op[3], h)
            h = (h - mean) / torch.sqrt(var + op[4]) * t[op[1]] + t[op[2]]
    return h.squeeze(-1)


def running_norm(arch: MLPArch, t: Sequence[torch.Tensor]) -> Norm:
    """Eval-mode BatchNorm: the running statistics stored in ``t``."""
    return lambda k, h: arch.running(t, k)


def moments(h: torch.Tensor, w: torch.Tensor, *, unbiased: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and variance of the rows of ``h`` weighted by ``w``."""
    n = w.sum()
    mean = (w @ h) / n
    return mean, (w @ (h - mean).square()) / (n - 1 if unbiased else n)


def bce(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy on logits over the rows weighted by ``w``."""
    return (w * F.binary_cross_entropy_with_logits(z, y.to(z.dtype), reduction="none")).sum() / w.sum()


def profile(arch: MLPArch, t: Sequence[torch.Tensor], x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BN-net input (gap per BatchNorm layer) and LR-net input (mean, std per layer) of rows ``x``."""
    gaps: list[torch.Tensor] = []
    stats: list[torch.Tensor] = []

    def seen(h: torch.Tensor) -> None:
        n = w.sum() * h.shape[-1]
        mean = (w @ h).sum() / n
        stats.extend([mean, torch.sqrt((w @ (h - mean).square()).sum() / (n - 1) + STAT_EPS)])

    def norm(k: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu_g, var_g = arch.running(t, k)
        mu_c, var_c = moments(h, w, unbiased=True)
        s_g, s_c, d2 = var_g + STAT_EPS, var_c + STAT_EPS, (mu_c - mu_g).square()
        kl_sym = 0.25 * ((s_g + d2) / s_c + (s_c + d2) / s_g - 2)  # ½KL(g‖c) + ½KL(c‖g): the logs cancel
        gaps.append(torch.log1p(kl_sym.mean()))
        return mu_g, var_g

    with torch.no_grad():
        forward(arch, t, x, norm, seen)
    return torch.stack(gaps), torch.stack(stats)


def finetune_state(
    arch: MLPArch,
    t: Sequence[torch.Tensor],
    betas: torch.Tensor,
    lrs: torch.Tensor,
    batches: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor], Sequence[torch.Tensor]],
    x: torch.Tensor,
    w: torch.Tensor,
) -> list[torch.Tensor]:
    """The personalised state: SGD on each minibatch (xb, yb, wb) of ``batches``, then β-mixed statistics on ``x``."""
    xb, yb, wb = batches

    def mixed(k: int, h: torch.Tensor, rows: torch.Tensor, unbiased: bool) -> tuple[torch.Tensor, torch.Tensor]:
        mu_g, var_g = arch.running(t, k)
        mu, var = moments(h, rows, unbiased=unbiased)
        return (1 - betas[k]) * mu_g + betas[k] * mu, (1 - betas[k]) * var_g + betas[k] * var

    def with_params(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = list(t)
        for i, p in zip(arch.params, params):
            out[i] = p
        return out

    params = [t[i] for i in arch.params]
    for s in range(len(xb)):

        def loss(ps: list[torch.Tensor], s: int = s) -> torch.Tensor:
            z = forward(arch, with_params(ps), xb[s], lambda k, h: mixed(k, h, wb[s], False))
            return bce(z, yb[s], wb[s])

        grads = grad(loss)(params)
        params = [p - lrs[i] * g for i, (p, g) in enumerate(zip(params, grads))]
    out = with_params(params)
    personal: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(k: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        personal.append(mixed(k, h, w, True))
        return personal[-1]

    forward(arch, out, x, record)
    for (i_mean, i_var), (mean, var) in zip(arch.stats, personal):
        out[i_mean], out[i_var] = mean, var
    return out
