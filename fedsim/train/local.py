"""Local training as a pure function of (start state, data, seed, steps).

The result does not depend on virtual time or on which process calls it, which is
what lets the simulator decide *when* work happens separately from *what* it
computes, and lets a batched executor compute many clients at once.

Randomness contract (the plain-torch reference in the tests follows it too):
epoch ``e`` visits rows in ``randperm(n)`` drawn from ``torch_generator(seed,
"batches", e)``; step ``s`` draws its dropout masks from ``torch_generator(seed,
"dropout", s)`` (handed to the model's :class:`~fedsim.models.dropout.SeededDropout`
layers; the same bits as ``nn.Dropout`` under ``torch.manual_seed`` of that seed), so
masks are fixed per step and training can resume at any step from a checkpoint.
Other random layers (a user's own ``nn.Dropout``) run under ``torch.manual_seed`` of
that seed inside :func:`torch.random.fork_rng`, as every layer once did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from fedsim.models.dropout import SeededDropout
from fedsim.seeding import torch_generator, torch_seed
from fedsim.tasks import BinaryAnomalyDetection, Task
from fedsim.train.flat import FlatLayout
from fedsim.train.optim import LocalOptimizer, state_keys
from fedsim.train.precision import autocast

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class LocalSpec:
    """How a client trains: the task whose loss it minimises, the optimiser (Adam, as in the checkpointing
    paper, or SGD, as in FedProx's), batching and arithmetic precision."""

    batch_size: int = 64
    lr: float = 1e-3
    epochs: int = 1
    precision: str = "32"  # 32 | bf16-mixed (fedsim.train.precision): autocast region of each step
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.0  # sgd: heavy-ball momentum (0: plain SGD)
    task: Task = BinaryAnomalyDetection()

    def state_numels(self, params: list[torch.Tensor]) -> int:
        """Elements of the optimiser's per-parameter state (what a client checkpoint holds beyond the model)."""
        return len(state_keys(self)) * sum(p.numel() for p in params)


@dataclass(slots=True)
class TrainState:
    """Where a client's local training stands: weights, optimiser state, steps done."""

    flat: torch.Tensor
    step: int = 0
    optimizer: dict | None = None


@dataclass(frozen=True, slots=True)
class TrainResult:
    """New state after training plus the mean training loss over the steps run."""

    state: TrainState
    loss: float
    samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    diverged_step: int | None = None  # first step whose loss (or the final state) was NaN/inf; None = finite


def batch_bounds(n_rows: int, batch_size: int) -> list[int]:
    """Row offsets of each minibatch in one epoch, ending with ``n_rows``.

    A trailing batch of one row is merged into the previous one: BatchNorm cannot
    train on a single row, and the rule keeps every client's schedule well defined.
    """
    spe = max(1, math.ceil(n_rows / batch_size))
    if n_rows > 1 and n_rows % batch_size == 1:
        spe -= 1
    return [i * batch_size for i in range(spe)] + [n_rows]


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Minibatches in one pass over ``n_rows``."""
    return len(batch_bounds(n_rows, batch_size)) - 1


def samples_in_steps(n_rows: int, batch_size: int, start: int, stop: int) -> int:
    """Rows processed by steps ``start``..``stop-1`` (the compute model charges per row)."""
    bounds = batch_bounds(n_rows, batch_size)
    spe = len(bounds) - 1

    def upto(s: int) -> int:
        return (s // spe) * n_rows + bounds[s % spe]

    return upto(stop) - upto(start)


def local_train(
    model: nn.Module,
    layout: FlatLayout,
    start: TrainState,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    spec: LocalSpec,
    seed: int,
    stop_step: int,
    anchor: torch.Tensor | None = None,
    prox_mu: float = 0.0,
) -> TrainResult:
    """Train ``model`` from ``start`` up to global step ``stop_step`` on ``(x, y)``, minimising ``spec.task``'s loss.

    ``model`` is a scratch module whose state is overwritten; the caller's tensors are
    never modified. Returns the state at ``stop_step`` with a fresh copy of the weights.
    With ``prox_mu`` > 0 (FedProx), every step adds μ·(w − anchor) to the gradient of
    the parameters, i.e. minimises loss + μ/2·‖w − anchor‖²; the reported loss is the
    data loss alone.
    """
    n = len(x)
    layout.load(model, start.flat)
    model.train()
    params = list(model.parameters())
    anchors = layout.views(anchor, [name for name, _ in model.named_parameters()]) if prox_mu else []
    opt = LocalOptimizer(spec, params, start.optimizer)
    bounds = batch_bounds(n, spec.batch_size)
    spe = len(bounds) - 1
    drops = [m for m in model.modules() if isinstance(m, SeededDropout)]
    unseeded = any(isinstance(m, _DropoutNd) and not isinstance(m, SeededDropout) for m in model.modules())
    total, perm, perm_epoch, losses = 0.0, None, -1, []
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else [], enabled=unseeded):
        for step in range(start.step, stop_step):
            epoch, i = divmod(step, spe)
            if epoch != perm_epoch:
                perm = torch.randperm(n, generator=torch_generator(seed, "batches", epoch)).to(x.device)
                perm_epoch = epoch
            rows = perm[bounds[i] : bounds[i + 1]]
            if drops:
                gen = torch_generator(seed, "dropout", step)
                for d in drops:
                    d.generator = gen
            if unseeded:  # a model with random layers of its own: they draw from the global RNG
                torch.manual_seed(torch_seed(seed, "dropout", step))
            opt.zero_grad()
            with autocast(spec.precision, x.device.type):
                loss = spec.task.loss(model, x[rows], y[rows])
            loss.backward()
            for p, a in zip(params, anchors):
                p.grad.add_(p.detach() - a, alpha=prox_mu)
            opt.step()
            total += loss.detach()
            losses.append(loss.detach())
    for d in drops:
        d.generator = None
    steps = stop_step - start.step
    mean_loss = float(total) / steps if steps else float("nan")
    state = TrainState(flat=layout.flatten(model), step=stop_step, optimizer=opt.state_dict())
    samples = samples_in_steps(n, spec.batch_size, start.step, stop_step)
    bad = first_divergence(torch.stack(losses) if losses else torch.zeros(0), start.step, state.flat)
    return TrainResult(state=state, loss=mean_loss, samples=samples, diverged_step=bad)


def first_divergence(losses: torch.Tensor, start_step: int, flat: torch.Tensor) -> int | None:
    """The first step whose loss is NaN/inf (``losses[i]`` is step ``start_step + i``), else the last
    step if the resulting state is not finite, else ``None``."""
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        return start_step + int((~finite).nonzero()[0])
    if not bool(torch.isfinite(flat).all()):
        return start_step + len(losses) - 1
    return None
