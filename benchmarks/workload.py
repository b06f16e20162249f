"""The shared benchmark workload (issue #9): data, models and the fedsim call.

43 synthetic features, 2,000 rows per client, 5 rounds, 1 local epoch, batch 256,
Adam 1e-3, every client every round; two models: the checkpointing paper's DNN
(~1.4M parameters, BatchNorm, dropout) and a small DAGMM-sized MLP (43-60-30-10-1, tanh).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from fedsim.data.synthetic import make_synthetic
from fedsim.models.base import AnomalyModel
from fedsim.models.dnn import AnomalyDNN
from fedsim.seeding import torch_seed
from fedsim.train.local import LocalSpec

FEATURES, ROWS, ROUNDS, BATCH, LR = 43, 2000, 5, 256, 1e-3
SPEC = LocalSpec(batch_size=BATCH, lr=LR, epochs=1)


class SmallMLP(AnomalyDNN):
    """43-60-30-10-1 with tanh (the DAGMM compression network's widths) as a BCE classifier."""

    def __init__(self, num_features: int = FEATURES, hidden: tuple[int, ...] = (60, 30, 10)) -> None:
        AnomalyModel.__init__(self)
        layers: list[nn.Module] = []
        width = num_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)


MODELS: dict[str, Callable[[], AnomalyModel]] = {"dnn": lambda: AnomalyDNN(FEATURES), "mlp": lambda: SmallMLP(FEATURES)}


def make_model(name: str, seed: int = 0) -> AnomalyModel:
    """The named model with seeded initial weights (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(seed, "init"))
        return MODELS[name]()


def make_clients(n: int, rows: int = ROWS, seed: int = 0) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]:
    """``n`` clients of ``rows`` synthetic rows each (resampled from one 43-feature set), plus a test set."""
    data = make_synthetic(n_samples=4000, seed=seed)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    g = np.random.default_rng(seed)
    clients = []
    for _ in range(n):
        idx = torch.from_numpy(g.integers(0, len(x), rows))
        clients.append((x[idx].contiguous(), y[idx].contiguous()))
    return clients, (torch.from_numpy(data.x_test), torch.from_numpy(data.y_test))


@contextmanager
def timer(out: dict[str, float], key: str):
    """Adds the wall seconds of the block to ``out[key]``."""
    t0 = time.perf_counter()
    yield
    out[key] = out.get(key, 0.0) + time.perf_counter() - t0


def machine() -> str:
    """One line: CPU, cores, torch threads and versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}; {torch.get_num_threads()} torch threads; python {platform.python_version()}; torch {torch.__version__}"


def best_of(fn: Callable[[], float], repeats: int) -> float:
    """Smallest of ``repeats`` timings (the machine is shared; the minimum is the least disturbed)."""
    return min(fn() for _ in range(repeats))
