"""Local training of many clients at once, as one stacked computation.

K clients that share an architecture keep their parameters stacked along a leading
client axis; every local step of all of them is one batched forward (``baddbmm``),
one autograd backward and one Adam update over the stacks. The result for each
client is that of :func:`fedsim.train.local.local_train` on its own, because the
per-client arithmetic is the same:

* each client's minibatch rows come from its own ``randperm`` stream;
* BatchNorm runs once over a ``(rows, K·C)`` view, i.e. batch statistics and running
  statistics per client and channel, with torch's own kernel;
* dropout masks are drawn per client by :func:`~fedsim.models.dropout.dropout_mask`
  from the generator the sequential path hands its
  :class:`~fedsim.models.dropout.SeededDropout` layers (``torch_generator(seed,
  "dropout", step)``), layer by layer in forward order on identically shaped tensors
  (checked bit for bit in the tests);
* Adam is torch's single-tensor update, op for op, on the stacks
  (:mod:`fedsim.train.stacks`).

Clients need not share a batch schedule: at every step the active clients are split
by their batch size (the last batch of an epoch differs when row counts differ), and
each subset steps on its own gathered slice of the stacks. Jobs in one call share the
start step; each may stop at its own step and ask for snapshots (checkpoints) at any
steps in between.

Only plain MLP classifiers are stacked exactly (see :func:`stack_support`): a
``nn.Sequential`` ``net`` of Linear, BatchNorm1d, ReLU/Tanh/Sigmoid and Dropout with
:class:`~fedsim.models.dnn.AnomalyDNN`'s forward and loss. Both paths draw dropout
masks on the CPU, so they are the same masks on CUDA too.

Under ``bf16-mixed`` (:mod:`fedsim.train.precision`) each stacked linear casts its
input, weight and bias to bfloat16 as autocast does in ``F.linear`` and returns the
gradients in the masters' float32; BatchNorm, dropout and activations run on the
bfloat16 activations as they do under autocast, the logits go to the loss in float32,
and Adam stays float32. On CPU the stacked and sequential bf16 results were bitwise
equal in every case measured (exact mode runs the same per-client bfloat16 kernels;
``bmm`` rounds its float32 accumulator once to bfloat16, which hides blocking order).

:func:`train_stacked` drives any :class:`Stacker`: :class:`StackedMLP` here, or
:class:`fedsim.train.functional.FunctionalStack` (any functional model, ``vmap``, equal
within float32 rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedsim.models.dnn import AnomalyDNN
from fedsim.models.dropout import dropout_mask
from fedsim.seeding import torch_generator
from fedsim.tasks import BinaryAnomalyDetection
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainResult, TrainState, batch_bounds, first_divergence, samples_in_steps
from fedsim.train.precision import compute_dtype
from fedsim.train.stacked_ops import StackedBCE, StackedLinear, rowwise
from fedsim.train.stacks import Stacks, entries, export_state, optimizer_step, proximal, stack_state

_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid}


def stack_support(model: nn.Module, spec: LocalSpec) -> str | None:
    """``None`` when ``model`` can be trained stacked exactly under ``spec``, else the reason it cannot."""
    if not isinstance(spec.task, BinaryAnomalyDetection):
        return f"the exact stacked path trains binary anomaly detection only (task={spec.task.name})"
    if spec.optimizer != "adam":
        return f"the exact stacked path steps Adam only (strategy.optimizer={spec.optimizer})"
    return mlp_support(model)


def mlp_support(model: nn.Module) -> str | None:
    """``None`` when ``model`` is a plain MLP classifier with :class:`~fedsim.models.dnn.AnomalyDNN`'s forward and loss, else why not."""
    cls = type(model)
    if cls.forward is not AnomalyDNN.forward or cls.loss is not AnomalyDNN.loss:
        return f"{cls.__name__} has its own forward or loss (only AnomalyDNN-style MLP classifiers stack)"
    net = getattr(model, "net", None)
    if not isinstance(net, nn.Sequential):
        return f"{cls.__name__}.net is not an nn.Sequential"
    for layer in net:
        if isinstance(layer, nn.BatchNorm1d):
            if not (layer.affine and layer.track_running_stats and layer.momentum is not None):
                return "BatchNorm1d without affine, running stats or momentum"
        elif isinstance(layer, nn.Dropout):
            if layer.inplace:
                return "in-place Dropout"
        elif not isinstance(layer, (nn.Linear, *_ACTIVATIONS)):
            return f"layer {type(layer).__name__} is not stackable"
    return None


@dataclass(frozen=True)
class Job:
    """One client's training request: data, start state, seed, stop step and snapshot steps."""

    x: torch.Tensor
    y: torch.Tensor
    start: TrainState
    seed: int
    stop_step: int
    snapshots: tuple[int, ...] = ()  # steps in (start.step, stop_step) whose states are also kept
    anchor: torch.Tensor | None = None  # FedProx: the global state of the proximal term
    prox_mu: float = 0.0


@dataclass
class Trajectory:
    """A job's states at its snapshot steps and stop step, and the loss of every step run."""

    start: TrainState
    states: dict[int, TrainState]
    losses: np.ndarray  # float32, one per step from start.step
    n_rows: int
    batch_size: int
    served: set[int] = field(default_factory=set)

    def result(self, start_step: int, stop_step: int) -> TrainResult:
        """The :class:`TrainResult` of training from the state at ``start_step`` to ``stop_step``."""
        losses = self.losses[start_step - self.start.step : stop_step - self.start.step]
        total = np.float32(0.0)
        for v in losses:
            total = np.float32(total + v)  # float32, in step order, as local_train sums
        steps = stop_step - start_step
        state = self.states[stop_step]
        return TrainResult(
            state=state,
            loss=float(total) / steps if steps else float("nan"),
            samples=samples_in_steps(self.n_rows, self.batch_size, start_step, stop_step),
            diverged_step=first_divergence(torch.from_numpy(losses), start_step, state.flat),
        )


class Stacker(Protocol):
    """What :func:`train_stacked` drives: stacks K start states, steps them, hands states back."""

    counter_names: list[str]  # integer buffers counted up by one per step (BatchNorm's num_batches_tracked), not stacked

    def stack(self, starts: Sequence[TrainState], anchors: Sequence[torch.Tensor] = ()) -> Stacks: ...  # noqa: D102

    def step(self, st: Stacks, xb: torch.Tensor, yb: torch.Tensor, seeds: Sequence[int], step: int, opt_step: int, prox_mu: float = 0.0) -> torch.Tensor: ...  # noqa: D102

    def unstack(self, st: Stacks, steps: int, which: Sequence[int], n_counted: Sequence[int]) -> list[TrainState]: ...  # noqa: D102


class StackedMLP:
    """A stackable model's layers, read once; runs stacked steps of K clients."""

    def __init__(self, model: nn.Module, layout: FlatLayout, spec: LocalSpec) -> None:
        reason = stack_support(model, spec)
        if reason is not None:
            raise ValueError(reason)
        self.layout, self.spec = layout, spec
        self.layers = list(model.net)
        prefix = {id(m): f"net.{i}." for i, m in enumerate(model.net)}
        self.param_names = [n for n, _ in model.named_parameters()]
        self.buffer_names = [n for n, b in model.named_buffers() if b.dtype.is_floating_point]
        self.counter_names = [n for n, b in model.named_buffers() if not b.dtype.is_floating_point]
        self.prefix = prefix
        self.exact = any(isinstance(m, nn.BatchNorm1d) for m in self.layers)  # see fedsim.train.stacked_ops.StackedLinear
        self.dtype = compute_dtype(spec.precision)  # gemm dtype under bf16-mixed; None: float32 throughout

    # --- states in and out --------------------------------------------------------
    def stack(self, starts: Sequence[TrainState], anchors: Sequence[torch.Tensor] = ()) -> Stacks:
        """Stacks from each job's start state (flat vector and optional Adam state) and proximal anchor."""
        flats = torch.stack([s.flat for s in starts]).to(torch.float32)
        params = [rowwise(p).requires_grad_(True) for p in entries(self.layout, flats, self.param_names)]
        buffers = entries(self.layout, flats, self.buffer_names)
        stacked = torch.stack(list(anchors)).to(torch.float32) if anchors else None
        anchored = [rowwise(a) for a in entries(self.layout, stacked, self.param_names)] if anchors else None
        return Stacks(params, buffers, stack_state(self.spec, starts, params), anchored)

    def unstack(self, st: Stacks, steps: int, which: Sequence[int], n_counted: Sequence[int]) -> list[TrainState]:
        """Clients ``which``'s states as their own tensors (a checkpoint must not share storage)."""
        by_name = dict(zip(self.param_names, st.params)) | dict(zip(self.buffer_names, st.buffers))
        k = len(which)
        idx = torch.as_tensor(list(which), device=st.params[0].device)
        cols = []
        for name in self.layout.names:
            if name in by_name:
                cols.append(by_name[name].detach().index_select(0, idx).reshape(k, -1))
            else:  # num_batches_tracked: the start value plus the steps run
                cols.append(torch.as_tensor([n_counted[j] for j in which], dtype=torch.float32, device=idx.device)[:, None])
        flats = torch.cat(cols, dim=1)
        return [TrainState(flat=flats[i].clone(), step=steps, optimizer=export_state(self.spec, st, j, steps)) for i, j in enumerate(which)]

    # --- one stacked step -------------------------------------------------------------
    def step(
        self, st: Stacks, xb: torch.Tensor, yb: torch.Tensor, seeds: Sequence[int], step: int, adam_step: int, prox_mu: float = 0.0
    ) -> torch.Tensor:
        """One local step of every stacked client on its batch ``xb[k]``; returns per-client losses."""
        gens = None
        h = xb
        params = iter(st.params)
        buffers = iter(st.buffers)
        k, rows = xb.shape[0], xb.shape[1]
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                w, b = next(params), next(params)
                h = StackedLinear.apply(h, w, b, self.exact, self.dtype)
            elif isinstance(layer, nn.BatchNorm1d):
                w, b = next(params), next(params)
                rm, rv = next(buffers), next(buffers)
                c = h.shape[2]
                flat = h.transpose(0, 1).reshape(rows, k * c)
                out = F.batch_norm(flat, rm.view(-1), rv.view(-1), w.reshape(-1), b.reshape(-1), True, layer.momentum, layer.eps)
                h = out.view(rows, k, c).transpose(0, 1).contiguous()  # gemm rounding depends on layout
            elif isinstance(layer, nn.Dropout):
                if layer.p > 0:
                    if gens is None:
                        gens = [torch_generator(s, "dropout", step) for s in seeds]
                    noise = torch.stack([dropout_mask(h.shape[1:], layer.p, h.dtype, g) for g in gens])
                    h = h * noise.to(h.device)
            else:
                h = _ACTIVATIONS[type(layer)](h)
        logits = h.squeeze(-1).to(xb.dtype)  # float32 into the loss, as AnomalyDNN.forward
        losses = StackedBCE.apply(logits, yb.to(logits.dtype))
        for p in st.params:
            p.grad = None
        losses.sum().backward()
        grads = [p.grad for p in st.params]
        optimizer_step(self.spec, st, proximal(grads, st, prox_mu) if st.anchors else grads, adam_step)
        return losses.detach()


def train_stacked(model: nn.Module, layout: FlatLayout, jobs: Sequence[Job], *, spec: LocalSpec, stacked: Stacker | None = None) -> list[Trajectory]:
    """Train every job from its start to its stop step as one stacked computation.

    All jobs must share ``start.step``. Returns one :class:`Trajectory` per job, holding
    its state at each snapshot step and at its stop step. ``stacked``: the trainer
    (default: a new :class:`StackedMLP`, the exact path).
    """
    if not jobs:
        return []
    net = stacked or StackedMLP(model, layout, spec)
    first = jobs[0].start.step
    if any(j.start.step != first for j in jobs):
        raise ValueError("train_stacked: all jobs must start at the same step")
    if any(j.start.optimizer is not None and j.start.optimizer["state"] and "step" in j.start.optimizer["state"][0] and int(j.start.optimizer["state"][0]["step"]) != first for j in jobs):
        raise ValueError("train_stacked: optimizer step count differs from the start step")
    mu = jobs[0].prox_mu
    if any(j.prox_mu != mu for j in jobs):
        raise ValueError("train_stacked: all jobs must share the proximal weight μ")
    device = jobs[0].x.device
    k = len(jobs)
    st = net.stack([j.start for j in jobs], [j.anchor for j in jobs] if mu else ())
    counted0 = _counters(net, layout, jobs)
    bounds = [batch_bounds(len(j.x), spec.batch_size) for j in jobs]
    spe = [len(b) - 1 for b in bounds]
    stop = [j.stop_step for j in jobs]
    keep = [set(j.snapshots) | {j.stop_step} for j in jobs]
    losses = np.zeros((k, max(stop) - first), dtype=np.float32)
    states: list[dict[int, TrainState]] = [{} for _ in jobs]
    perm_epoch = [-1] * k
    xperm: list[torch.Tensor | None] = [None] * k
    yperm: list[torch.Tensor | None] = [None] * k
    rows = list(range(k))  # the job in each row of the stacks; a job that has stopped leaves them
    for step in range(first, max(stop)):
        if any(step >= stop[j] for j in rows):  # drop finished jobs once, rather than gather the rest every step
            keep_rows = [r for r, j in enumerate(rows) if step < stop[j]]
            st, rows = st.take(torch.tensor(keep_rows, device=device)), [rows[r] for r in keep_rows]
        groups: dict[tuple[int, int], list[int]] = {}  # batch bounds -> rows of the stacks
        for r, j in enumerate(rows):
            epoch, i = divmod(step, spe[j])
            if epoch != perm_epoch[j]:
                perm = torch.randperm(len(jobs[j].x), generator=torch_generator(jobs[j].seed, "batches", epoch)).to(device)
                xperm[j], yperm[j] = jobs[j].x[perm], jobs[j].y[perm]
                perm_epoch[j] = epoch
            groups.setdefault((bounds[j][i], bounds[j][i + 1]), []).append(r)
        for (lo, hi), members in groups.items():
            ids = [rows[r] for r in members]
            xb = torch.stack([xperm[j][lo:hi] for j in ids])
            yb = torch.stack([yperm[j][lo:hi] for j in ids])
            seeds = [jobs[j].seed for j in ids]
            if len(members) == len(rows):
                losses[ids, step - first] = net.step(st, xb, yb, seeds, step, step + 1, mu).cpu().numpy()
            else:
                idx = torch.tensor(members, device=device)
                sub = st.take(idx)
                losses[ids, step - first] = net.step(sub, xb, yb, seeds, step, step + 1, mu).cpu().numpy()
                st.put(idx, sub)
        done = [r for r, j in enumerate(rows) if step + 1 in keep[j]]
        if done:
            snap = net.unstack(st, step + 1, done, [counted0[j] + step + 1 - first for j in rows])
            for r, state in zip(done, snap):
                states[rows[r]][step + 1] = state
    return [
        Trajectory(start=j.start, states=states[i], losses=losses[i, : j.stop_step - first], n_rows=len(j.x), batch_size=spec.batch_size)
        for i, j in enumerate(jobs)
    ]


def _counters(net: Stacker, layout: FlatLayout, jobs: Sequence[Job]) -> list[int]:
    """Each job's BatchNorm ``num_batches_tracked`` at its start (all BN layers count alike)."""
    if not net.counter_names:
        return [0] * len(jobs)
    lo = sum(layout.numels[: layout.names.index(net.counter_names[0])])
    return [int(round(float(j.start.flat[lo]))) for j in jobs]
