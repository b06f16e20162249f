"""The local optimisers, Adam and SGD, as torch's single-tensor implementations (the CPU default), op for op.

``torch.optim`` would give the same numbers, but its first use imports ``torch._dynamo``
(2.7 s in a fresh process on a 2-core AMD EPYC), which every run, sweep job and worker
would pay for an optimiser it never compiles. The state is read and written in torch's
``state_dict`` format, so checkpoints are what ``torch.optim`` writes and move freely
between the sequential and the stacked trainers (:mod:`fedsim.train.stacks`).
"""

from __future__ import annotations

from typing import Protocol

import torch

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults


class Settings(Protocol):
    """What an optimiser reads of :class:`~fedsim.train.local.LocalSpec` (read-only: the spec is frozen)."""

    @property
    def optimizer(self) -> str: ...  # adam | sgd

    @property
    def lr(self) -> float: ...

    @property
    def momentum(self) -> float: ...  # sgd


def state_keys(spec: Settings) -> tuple[str, ...]:
    """The per-parameter tensors torch's optimiser of ``spec`` keeps."""
    if spec.optimizer == "adam":
        return ("exp_avg", "exp_avg_sq")
    return ("momentum_buffer",) if spec.momentum else ()


def param_groups(spec: Settings, n_params: int) -> list[dict]:
    """What ``torch.optim``'s ``state_dict()["param_groups"]`` holds for ``spec`` over ``n_params`` parameters."""
    if spec.optimizer == "adam":
        group = {"lr": spec.lr, "betas": (BETA1, BETA2), "eps": EPS, "weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None,
                 "capturable": False, "differentiable": False, "fused": None, "decoupled_weight_decay": False}  # fmt: skip
    else:
        group = {"lr": spec.lr, "momentum": spec.momentum, "dampening": 0, "weight_decay": 0, "nesterov": False, "maximize": False,
                 "foreach": None, "differentiable": False, "fused": None}  # fmt: skip
    return [{**group, "params": list(range(n_params))}]


def torch_state(spec: Settings, buffers: dict[int, dict[str, torch.Tensor]], steps: dict[int, int], n_params: int) -> dict:
    """``buffers`` (by parameter index, then torch's key) after ``steps`` steps, as ``torch.optim``'s ``state_dict()``."""
    def entry(i: int) -> dict:
        return ({"step": torch.tensor(float(steps[i]))} if spec.optimizer == "adam" else {}) | buffers[i]

    return {"state": {i: entry(i) for i in buffers}, "param_groups": param_groups(spec, n_params)}  # in the order states began, as torch


def adam_(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avg: list[torch.Tensor], exp_avg_sq: list[torch.Tensor], *, lr: float, step: int) -> None:
    """torch's single-tensor Adam, op for op (CPU ``_foreach`` ops loop over the tensors)."""
    bias_correction1 = 1 - BETA1**step
    bias_correction2 = 1 - BETA2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    torch._foreach_lerp_(exp_avg, grads, 1 - BETA1)
    torch._foreach_mul_(exp_avg_sq, BETA2)
    torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - BETA2)
    denom = torch._foreach_sqrt(exp_avg_sq)
    torch._foreach_div_(denom, bias_correction2_sqrt)
    torch._foreach_add_(denom, EPS)
    torch._foreach_addcdiv_(params, exp_avg, denom, value=-step_size)


def sgd_(params: list[torch.Tensor], grads: list[torch.Tensor], momentum_buffers: list[torch.Tensor], *, lr: float, momentum: float) -> None:
    """torch's single-tensor SGD (no dampening, weight decay or Nesterov), op for op, on existing momentum buffers."""
    if not params:  # _foreach ops refuse empty lists
        return
    if momentum:
        torch._foreach_mul_(momentum_buffers, momentum)
        torch._foreach_add_(momentum_buffers, grads, alpha=1)
        grads = momentum_buffers
    torch._foreach_add_(params, grads, alpha=-lr)


class LocalOptimizer:
    """``spec``'s optimiser over one client's ``params``, fresh or from ``state`` (torch's ``state_dict`` format,
    copied: the caller's tensors are never modified). As in torch, a parameter without a gradient is skipped and
    gets its state at its first step."""

    def __init__(self, spec: Settings, params: list[torch.Tensor], state: dict | None = None) -> None:
        self.spec, self.params = spec, params
        self.steps: dict[int, int] = {}  # Adam's step count of each parameter
        self.buffers: dict[int, dict[str, torch.Tensor]] = {}
        if state is not None and (n := sum(len(g["params"]) for g in state["param_groups"])) != len(params):
            raise ValueError(f"the optimiser state is for {n} parameters, the model has {len(params)}: a checkpoint of another model")
        for i, saved in (state or {}).get("state", {}).items():
            p = params[i]
            if "step" in saved:  # Adam's
                self.steps[i] = int(saved["step"])
            self.buffers[i] = {key: saved[key].to(p, copy=True) for key in state_keys(spec)}

    def zero_grad(self) -> None:
        """Forget the gradients (``set_to_none``, torch's default)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One step on the gradients the parameters hold."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        with torch.no_grad():
            if self.spec.optimizer == "adam":
                self._adam(live)
            else:
                self._sgd(live)

    def state_dict(self) -> dict:
        """The state in torch's format (the optimiser's own tensors, as torch gives them)."""
        return torch_state(self.spec, self.buffers, self.steps, len(self.params))

    def _adam(self, live: list[int]) -> None:
        for i in live:
            if i not in self.buffers:
                self.steps[i], self.buffers[i] = 0, {key: torch.zeros_like(self.params[i]) for key in state_keys(self.spec)}
            self.steps[i] += 1
        for step in sorted({self.steps[i] for i in live}):  # one group in practice: every parameter has a gradient
            group = [i for i in live if self.steps[i] == step]
            adam_([self.params[i] for i in group], [self.params[i].grad for i in group], [self.buffers[i]["exp_avg"] for i in group],
                  [self.buffers[i]["exp_avg_sq"] for i in group], lr=self.spec.lr, step=step)  # fmt: skip

    def _sgd(self, live: list[int]) -> None:
        lr, momentum = self.spec.lr, self.spec.momentum
        if not momentum:
            sgd_([self.params[i] for i in live], [self.params[i].grad for i in live], [], lr=lr, momentum=0.0)
            return
        old = [i for i in live if i in self.buffers]
        sgd_([self.params[i] for i in old], [self.params[i].grad for i in old], [self.buffers[i]["momentum_buffer"] for i in old], lr=lr, momentum=momentum)
        new = [i for i in live if i not in self.buffers]
        for i in new:  # torch's first buffer is a copy of the gradient, not 0·m + g
            self.buffers[i] = {"momentum_buffer": self.params[i].grad.detach().clone()}
        sgd_([self.params[i] for i in new], [self.buffers[i]["momentum_buffer"] for i in new], [], lr=lr, momentum=0.0)
