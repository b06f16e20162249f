"""System-only mode: a surrogate learner, so failure, dropout and τ studies run at event-loop speed.

No torch training happens. The "model" is one number, the useful work it embodies in
local epochs: a client that trains from global state ``w`` for ``s`` steps returns
``w + s / steps_per_epoch`` (its epochs of local work), FedAvg averages those, and an
accuracy and a loss are modelled as saturating functions of ``w``:

    surrogate_accuracy(w) = final − (final − initial) · exp(−w / scale_epochs)

with ``final`` and ``scale_epochs`` from ``compute.surrogate_final_accuracy`` and
``compute.surrogate_scale_epochs`` (stated by the user, not measured). They are the only
metrics a system-only run reports (:class:`SurrogateTask`): no AUC, precision or
training loss is made up. So a round that aggregates nothing adds nothing, lost work
never reaches the global state, and every timing (messages keep the real model's byte
size, compute the per-row cost model) is exactly the one the torch run would have. Use with
:func:`fedsim.fl.simulation.simulate`: ``initial=surrogate_initial()``,
``executor=SurrogateExecutor.factory(curve)``, ``evaluator=curve.evaluate``, and
``clients`` given as row counts (ints) instead of tensors; :func:`system_only` bundles these.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from fedsim.tasks import Task
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainResult, TrainState, samples_in_steps, steps_per_epoch


@dataclass(frozen=True)
class LearningCurve:
    """Accuracy and loss as functions of useful work ``w`` (in federation-averaged local epochs)."""

    initial: float = 0.5  # accuracy of the untrained model
    final: float = 0.95  # accuracy approached as work grows
    scale_epochs: float = 3.0  # work (epochs) that closes 63 % of the gap
    loss_initial: float = 0.7  # training/validation loss of the untrained model
    loss_final: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.initial <= self.final <= 1:
            raise ValueError(f"need 0 ≤ initial ≤ final ≤ 1 (got {self.initial}, {self.final})")
        if self.scale_epochs <= 0:
            raise ValueError(f"scale_epochs must be > 0 (got {self.scale_epochs})")

    def progress(self, work: float) -> float:
        """Share of the gap closed: 1 − exp(−w / scale)."""
        return 1.0 - math.exp(-max(work, 0.0) / self.scale_epochs)

    def accuracy(self, work: float) -> float:
        """Accuracy after ``work`` epochs."""
        return self.initial + (self.final - self.initial) * self.progress(work)

    def rounds_to(self, target: float, epochs_per_round: float) -> int:
        """Failure-free rounds to reach ``target`` accuracy when each round adds ``epochs_per_round`` of work."""
        if not self.initial < target < self.final:
            raise ValueError(f"target {target} must lie between the curve's initial {self.initial} and final {self.final} accuracy")
        work = -self.scale_epochs * math.log(1 - (target - self.initial) / (self.final - self.initial))
        return math.ceil(work / epochs_per_round - 1e-12)  # a round that lands on the target exactly counts

    def loss(self, work: float) -> float:
        """Loss after ``work`` epochs."""
        return self.loss_initial + (self.loss_final - self.loss_initial) * self.progress(work)

    def evaluate(self, flat: torch.Tensor) -> dict[str, float]:
        """The two modelled quantities of the surrogate state (what :class:`SurrogateTask` reports)."""
        w = float(flat[0])
        return {"surrogate_accuracy": self.accuracy(w), "surrogate_loss": self.loss(w)}


@dataclass(frozen=True)
class SurrogateTask(Task):
    """What a system-only run reports: the learning curve's modelled accuracy and loss, and nothing measured.

    Its target metric (``run.target_accuracy``) is the modelled accuracy; early stopping
    watches the modelled loss. It is never trained or evaluated with torch.
    """

    name = "surrogate"
    target_metric = "surrogate_accuracy"
    monitor = "surrogate_loss"
    headline = ("surrogate_accuracy",)

    def metric_names(self) -> tuple[str, ...]:
        """The modelled accuracy and loss."""
        return ("surrogate_accuracy", "surrogate_loss")


class _SizedLayout:
    """A :class:`FlatLayout` stand-in whose ``nbytes`` is computed once (clients ask per message)."""

    def __init__(self, layout: FlatLayout) -> None:
        self._layout, self._nbytes = layout, layout.nbytes()

    def nbytes(self) -> int:
        """Bytes of the real model's state on the wire."""
        return self._nbytes

    def __getattr__(self, name: str):
        return getattr(self._layout, name)


def surrogate_initial() -> torch.Tensor:
    """The untrained surrogate state: no work done."""
    return torch.zeros(1, dtype=torch.float32)


def system_only(curve: LearningCurve, spec: LocalSpec, **executor_kw: Any) -> dict[str, Any]:
    """The :func:`~fedsim.fl.simulation.simulate` arguments that make a run system-only: the surrogate's
    initial state, executor and evaluator, and ``spec`` with the :class:`SurrogateTask` (what is reported)."""
    return {
        "initial": surrogate_initial(),
        "executor": SurrogateExecutor.factory(curve, **executor_kw),
        "evaluator": curve.evaluate,
        "spec": replace(spec, task=SurrogateTask()),
    }


class SurrogateExecutor:
    """The executor interface with no training: results follow the learning curve."""

    seeded = False  # draws nothing: clients need not derive training seeds for it
    pure = True  # a result depends only on the call, and no state changes in place: it may be computed late, kept unsaved

    def __init__(
        self,
        model: object,
        layout: FlatLayout,
        data: Sequence[int | tuple[torch.Tensor, torch.Tensor]],
        spec: LocalSpec,
        *,
        curve: LearningCurve = LearningCurve(),
        row_bytes: int = 43 * 4 + 8,
    ) -> None:
        self.model = model
        self.layout = _SizedLayout(layout)  # the real model's sizes, messages stay real; nbytes computed once
        self.spec = spec
        self.curve = curve
        self.row_bytes = row_bytes  # bytes per training row when data is redistributed
        self.rows = [int(d) if isinstance(d, (int, np.integer)) else len(d[0]) for d in data]  # Python ints: read per client-round
        self._parts: dict[tuple[int, int, int], int] = {}
        self._results: dict[tuple[int, int, int, float], TrainResult] = {}
        self.wall_s = 0.0

    @classmethod
    def factory(cls, curve: LearningCurve = LearningCurve(), **kw) -> Callable[..., SurrogateExecutor]:
        """A ``simulate(executor=...)`` factory using ``curve``."""
        return lambda model, layout, data, spec: cls(model, layout, data, spec, curve=curve, **kw)

    def num_samples(self, client: int) -> int:
        """Training rows held by ``client``."""
        return self.rows[client]

    def round_steps(self, client: int) -> int:
        """Local steps in one round."""
        return self.spec.epochs * steps_per_epoch(self.num_samples(client), self.spec.batch_size)

    def split(self, origin: int, parts: int, index: int) -> tuple[int, int]:
        """Dataset id and byte size of the ``index``-th of ``parts`` shares of ``origin``'s rows."""
        key = (origin, parts, index)
        if key not in self._parts:
            self._parts[key] = len(self.rows)
            self.rows.append(len(np.array_split(np.arange(self.num_samples(origin)), parts)[index]))
        did = self._parts[key]
        return did, self.num_samples(did) * self.row_bytes

    def train(self, client: int, start: TrainState, *, seed: int, stop_step: int, fit: object = None) -> TrainResult:
        """Advance the surrogate state by the epochs of local work done."""
        t0 = time.perf_counter()
        n = self.num_samples(client)
        w = start.flat.item()
        key = (n, start.step, stop_step, w)
        result = self._results.get(key)  # a round's clients mostly start from one state and train one epoch
        if result is None:
            samples = samples_in_steps(n, self.spec.batch_size, start.step, stop_step)
            flat = torch.tensor([w + samples / n], dtype=torch.float32)
            result = TrainResult(state=TrainState(flat=flat, step=stop_step), loss=float("nan"), samples=samples)  # no loss is modelled
            if len(self._results) >= 4096:
                self._results.clear()
            self._results[key] = result  # shared by the clients that hit it: nothing changes a result or a state in place
        self.wall_s += time.perf_counter() - t0
        return result

    def meta_gradient(self, client: int, fit: object, *, seed: int) -> dict[str, torch.Tensor]:
        """No personalisation in the surrogate: a zero hypergradient of the real size (FedL2P's timing and bytes stay exact)."""
        meta = fit.personalize.meta  # type: ignore[attr-defined]
        return {"meta_grad": torch.zeros_like(meta), "meta_loss": torch.tensor(float("nan"))}
