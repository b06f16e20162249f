"""Local training of K clients of any functional model at once, with ``torch.func.vmap``.

The exact stacked path (:mod:`fedsim.train.batched`) knows one architecture; this one
takes any ``nn.Module`` whose training step is a pure function of its tensors: per
step, one ``vmap(grad_and_value(loss))`` over the stacked parameters and buffers
(``functional_call`` of ``spec.task.loss(model, x, y)``, the loss
:func:`~fedsim.train.local.local_train` differentiates), then FedProx's proximal term
and the optimiser of ``spec`` (torch's single-tensor Adam or SGD, op for op) on the
stacks (:mod:`fedsim.train.stacks`). Batch order, batch bounds, snapshots and
optimiser-state export are :func:`~fedsim.train.batched.train_stacked`'s, so a state
either path produced resumes on the other.

It is the sequential path's arithmetic up to float32 rounding: vmap runs a batched
kernel (``bmm`` for a linear layer, a grouped convolution for a convolution) where
the sequential path runs one ``mm``/convolution per client, and CPU kernels block
their sums by shape, so a client's gradients differ in the last bits (≈1e-7
relative). The optimiser updates themselves round as alone (:func:`~fedsim.train.stacked_ops.rowwise`).
The tests bound the difference after some tens of steps (see
``tests/train/test_functional.py``).

BatchNorm trains as in the sequential path under SGD: its running statistics and step
counter are stacked buffers that vmap updates in place per client. Not supported, each
with its reason from :func:`functional_support`:

* random layers: vmap would draw other masks than the sequential path's seeded ones;
* per-channel normalisation (BatchNorm, InstanceNorm, GroupNorm of one channel per
  group) under Adam: a bias before it has gradient 0 up to rounding, which Adam scales
  into steps of up to ``lr``, so the two paths' rounding moves it apart (measured:
  0.03 after 30 steps of a small CNN; under SGD such a bias moves by rounding only);
* ``bf16-mixed``: bfloat16 rounds vmap's batched kernels and the sequential ones
  apart (measured: 1e-3 to 1e-1 after 30 steps);
* BatchNorm with ``momentum=None`` (its cumulative average reads a Python number);
* state_dict entries that are not the module's own tensors (tied weights);
* whatever fails when one step is tried under vmap (data-dependent control flow,
  ``.item()``, random ops inside ``forward``, in-place updates of tensors the step does
  not own).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap
from torch.nn.modules.batchnorm import _BatchNorm, _NormBase
from torch.nn.modules.dropout import _DropoutNd

from fedsim.tasks import Task
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState
from fedsim.train.stacked_ops import rowwise
from fedsim.train.stacks import Stacks, entries, export_state, optimizer_step, proximal, stack_state


class _TaskLoss(nn.Module):
    """``task.loss(model, x, y)`` as a module, so ``functional_call`` can swap in one client's tensors."""

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.task.loss(self.model, x, y)


def functional_support(model: nn.Module, spec: LocalSpec, sample: tuple[torch.Tensor, torch.Tensor] | None = None) -> str | None:
    """``None`` when ``model`` can be trained under ``spec`` by :class:`FunctionalStack`, else why not (one line).

    With ``sample`` (a client's rows) one step of two stacked clients is also tried,
    which finds what only running reveals (data-dependent control flow, random ops).
    """
    for name, m in model.named_modules():
        where = f"{name or type(model).__name__}: {type(m).__name__}"
        if isinstance(m, _DropoutNd) and m.p > 0:
            return f"model has dropout ({where}(p={m.p})); vmap would draw other masks than the sequential path's seeded ones"
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.momentum is None:
            return f"model has BatchNorm with momentum=None ({where}), whose cumulative average reads its step count as a Python number"
        per_channel = isinstance(m, _NormBase) or (isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels)
        if per_channel and spec.optimizer == "adam":
            return f"model has per-channel normalisation ({where}) under Adam, which scales the rounding noise of the bias before it into steps of up to lr"
    if spec.precision != "32":
        return f"compute.precision={spec.precision}: bfloat16 rounds vmap's batched kernels and the sequential ones apart (1e-3 to 1e-1 after 30 steps)"
    own = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
    foreign = [n for n in model.state_dict() if n not in own]
    if foreign:
        return f"state_dict entry {foreign[0]} is not one of the model's own parameters or buffers (tied weights?)"
    return None if sample is None else _try_step(model, spec, *sample)


def _try_step(model: nn.Module, spec: LocalSpec, x: torch.Tensor, y: torch.Tensor) -> str | None:
    """Why one vmapped step of two clients on the first batch of ``(x, y)`` fails, or None."""
    layout = FlatLayout.of(model)
    rows = slice(0, min(len(x), spec.batch_size))
    try:
        net = FunctionalStack(model, layout, spec)
        st = net.stack([TrainState(layout.flatten(model))] * 2)
        net.step(st, torch.stack([x[rows]] * 2), torch.stack([y[rows]] * 2), (0, 0), 0, 1)
    except Exception as e:  # noqa: BLE001 - any failure means: not this path
        first = (str(e).strip().splitlines() or [""])[0][:160]
        return f"{type(model).__name__} fails under vmap ({type(e).__name__}: {first})"
    return None


def _as(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A flat vector's float32 entry in its own dtype (integers rounded, as FlatLayout.load does)."""
    return t.to(dtype) if dtype.is_floating_point else t.round().to(dtype)


class FunctionalStack:
    """Steps K clients of one functional model as one vmapped gradient and one optimiser update over the stacks.

    The interface :func:`~fedsim.train.batched.train_stacked` drives. Every buffer in
    the state_dict, integer counters included, is stacked and carried through the steps
    (a user's integer buffer need not count steps), so ``counter_names`` is empty.
    """

    counter_names: list[str] = []

    def __init__(self, model: nn.Module, layout: FlatLayout, spec: LocalSpec) -> None:
        reason = functional_support(model, spec)
        if reason is not None:
            raise ValueError(reason)
        self.layout, self.spec = layout, spec
        self.loss = _TaskLoss(model, spec.task)
        self.param_names = [n for n, _ in model.named_parameters()]
        params = set(self.param_names)
        self.buffer_names = [n for n in layout.names if n not in params]
        self.dtypes = dict(zip(layout.names, layout.dtypes))
        self.param_keys = [f"model.{n}" for n in self.param_names]  # names inside _TaskLoss
        self.buffer_keys = [f"model.{n}" for n in self.buffer_names]
        self._grad = vmap(grad_and_value(self._loss))  # randomness="error": a random op inside fails loudly

    def _loss(self, params: tuple[torch.Tensor, ...], buffers: tuple[torch.Tensor, ...], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One client's mean batch loss as a function of its tensors."""
        return functional_call(self.loss, (dict(zip(self.param_keys, params)), dict(zip(self.buffer_keys, buffers))), (x, y))

    def stack(self, starts: Sequence[TrainState], anchors: Sequence[torch.Tensor] = ()) -> Stacks:
        """Stacks from each job's start state (flat vector and optional optimiser state) and proximal anchor."""
        flats = torch.stack([s.flat for s in starts]).to(torch.float32)
        params = [rowwise(_as(p, self.dtypes[n])) for n, p in zip(self.param_names, entries(self.layout, flats, self.param_names))]
        buffers = [_as(b, self.dtypes[n]) for n, b in zip(self.buffer_names, entries(self.layout, flats, self.buffer_names))]
        stacked = torch.stack(list(anchors)).to(torch.float32) if anchors else None
        anchored = [rowwise(a.to(p)) for a, p in zip(entries(self.layout, stacked, self.param_names), params)] if anchors else None
        return Stacks(params, buffers, stack_state(self.spec, starts, params), anchored)

    def unstack(self, st: Stacks, steps: int, which: Sequence[int], n_counted: Sequence[int] = ()) -> list[TrainState]:
        """Clients ``which``'s states as their own tensors (``n_counted`` is unused: counters are stacked)."""
        by_name = dict(zip(self.param_names, st.params)) | dict(zip(self.buffer_names, st.buffers))
        idx = torch.as_tensor(list(which), device=st.params[0].device)
        flats = torch.cat([by_name[n].detach().index_select(0, idx).reshape(len(which), -1).to(torch.float32) for n in self.layout.names], dim=1)
        return [TrainState(flat=flats[i].clone(), step=steps, optimizer=export_state(self.spec, st, j, steps)) for i, j in enumerate(which)]

    def step(
        self, st: Stacks, xb: torch.Tensor, yb: torch.Tensor, seeds: Sequence[int], step: int, opt_step: int, prox_mu: float = 0.0
    ) -> torch.Tensor:
        """One local step of every stacked client on its batch ``xb[k]``; returns per-client losses.

        ``seeds`` and ``step`` are unused: nothing random runs (see :func:`functional_support`).
        """
        self.loss.train()
        grads, losses = self._grad(tuple(st.params), tuple(st.buffers), xb, yb)
        grads = list(grads)
        optimizer_step(self.spec, st, proximal(grads, st, prox_mu) if st.anchors else grads, opt_step)
        return losses.detach()
