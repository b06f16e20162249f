"""Regression: float targets, mean squared error; reports MSE, MAE and R²."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.tasks.base import Task, outputs


@dataclass(frozen=True)
class Regression(Task):
    """Float targets, one (``(n,)``) or several (``(n, k)``) per row; the model outputs as many.

    Its target metric is R² (1 − MSE / variance of the targets), so ``run.target_accuracy``
    reads a share of variance explained, like an accuracy in (0, 1].
    """

    outputs_per_row: int | None = None  # k; None: from the data
    name = "regression"
    target_metric = "r2"
    headline = ("r2", "mse")

    def prepare(self, data: Dataset) -> Regression:
        """Check the targets are finite numbers; take their width from them."""
        for part, y in (("training", data.y_train), ("test", data.y_test)):
            y = np.asarray(y)
            if y.dtype.kind not in "iuf" or y.ndim > 2 or not np.isfinite(y).all():
                raise FedsimError(f"the {part} targets of {data.name} must be finite numbers, one or a row of them per sample; task=regression cannot use them")
        k = 1 if np.ndim(data.y_train) == 1 else int(np.shape(data.y_train)[1])
        if self.outputs_per_row is not None and self.outputs_per_row != k:
            raise FedsimError(f"the targets of {data.name} have {k} values per row, but task.outputs_per_row={self.outputs_per_row}; set it to {k} or null")
        return replace(self, outputs_per_row=k)

    @property
    def num_outputs(self) -> int | None:
        """One output per target value."""
        return self.outputs_per_row

    def criterion(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error (a single target compares with the output's one column)."""
        return F.mse_loss(output.reshape(y.shape), y.to(output.dtype))

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, calibration: object = None) -> dict[str, float]:
        """MSE (also as ``loss``), MAE and R² on ``(x, y)``."""
        pred = outputs(model, x).reshape(y.shape).double()
        target = y.cpu().double()
        mse = float(((pred - target) ** 2).mean()) if len(target) else float("nan")
        variance = float(((target - target.mean(0)) ** 2).mean()) if len(target) else float("nan")
        return {
            "loss": mse,
            "mse": mse,
            "mae": float((pred - target).abs().mean()) if len(target) else float("nan"),
            "r2": 1.0 - mse / variance if variance > 0 else float("nan"),
        }

    def metric_names(self) -> tuple[str, ...]:
        """MSE, MAE, R²."""
        return ("loss", "mse", "mae", "r2")
