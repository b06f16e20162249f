"""The task interface: what a federation learns and how a model of it is scored.

The engine sees only this: a training loss of a batch, a validation pass that may
calibrate evaluation (an anomaly detector's threshold), and evaluation into a dict of
metrics. Which metric a target reads (``run.target_accuracy``) and which one early
stopping watches are the task's too. A user's task subclasses :class:`Task` and is
named by ``task._target_``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.models.base import AnomalyModel

EVAL_CHUNK = 8192  # rows per forward pass when evaluating; bounds memory on large test sets


def chunks(x: torch.Tensor, y: torch.Tensor, size: int = EVAL_CHUNK) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` in row blocks of ``size``."""
    for start in range(0, len(x), size):
        yield x[start : start + size], y[start : start + size]


@torch.no_grad()
def outputs(model: nn.Module, x: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The model's output (or ``score`` of the input) on every row, in eval mode and in chunks, as float32 on the CPU."""
    model.eval()
    fn = score if score is not None else model
    return torch.cat([fn(xb).float().cpu() for xb, _ in chunks(x, x)]) if len(x) else torch.zeros(0)


class Task:
    """Base class: the training loss is :meth:`criterion` of the model's output; subclasses score."""

    name = "task"
    target_metric = "accuracy"  # what run.target_accuracy and time_to_target_s read (higher is better)
    monitor = "val_loss"  # what early stopping watches (lower is better)
    headline: tuple[str, ...] = ("accuracy",)  # metrics a progress line shows; with the loss, the client_<name> means of run.client_eval

    def prepare(self, data: Dataset) -> Task:
        """This task fitted to ``data`` (class count, anomaly share); a one-line error when the data does not fit it."""
        return self

    @property
    def num_outputs(self) -> int | None:
        """Width of the model's output the task expects per row (offered to the model as ``num_outputs``); None = any."""
        return None

    def check_model(self, model: nn.Module, x: torch.Tensor) -> None:
        """Raise a one-line error when ``model``'s output on the rows ``x`` does not fit the task."""
        want = self.num_outputs
        if want is None or isinstance(model, AnomalyModel):
            return
        with torch.no_grad():
            was = model.training
            model.eval()
            shape = tuple(model(x).shape)
            model.train(was)
        got = 1 if len(shape) == 1 else (shape[1] if len(shape) == 2 else None)
        if got != want:
            raise FedsimError(
                f"model={type(model).__name__} gives output shape {shape} for {len(x)} rows, but task={self.name} needs "
                f"({len(x)}, {want}); set the model's output width (num_outputs/num_classes) to {want}"
            )

    def criterion(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch from the model's output (what a functional or stacked trainer differentiates)."""
        raise NotImplementedError

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean training loss of a batch: :meth:`criterion` of ``model(x)``."""
        return self.criterion(model(x), y)

    def calibrate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, Any]:
        """Validation loss on ``(x, y)``, and whatever :meth:`evaluate` needs from the validation rows (None here)."""
        return self.mean_loss(model, x, y), None

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, calibration: Any = None) -> dict[str, float]:
        """Metrics of ``model`` on ``(x, y)``: ``loss`` and the task's scores."""
        raise NotImplementedError

    def metric_names(self) -> tuple[str, ...]:
        """The keys :meth:`evaluate` returns (a sweep objective or a target must name one of them)."""
        raise NotImplementedError

    @torch.no_grad()
    def mean_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        """Mean of :meth:`loss` over every row, in eval mode and in chunks."""
        model.eval()
        total = sum(float(self.loss(model, xb, yb)) * len(xb) for xb, yb in chunks(x, y))
        return total / max(len(x), 1)
