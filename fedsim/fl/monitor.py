"""After every aggregation: score the global model, keep early stopping's record, write the round's row.

Shared by the synchronous protocol (a row per round) and the asynchronous one (a row per
model version). A resumed run reads the recorded rows back instead of evaluating, so
early stopping decides as it did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedsim.fl.messages import Update
from fedsim.fl.replay import Replay
from fedsim.sim.recorder import Recorder

Evaluator = Callable[[torch.Tensor], dict[str, float]]


@dataclass(frozen=True)
class Stopping:
    """Stop after ``max_rounds``, at ``max_time_s`` virtual seconds (a budget that compares protocols whose
    rounds differ; a round still open then is not recorded), or when the metric ``monitor`` (lower is
    better) fails to improve by ``min_delta`` for ``patience`` rounds."""

    max_rounds: int = 10
    patience: int = 0  # 0 disables early stopping
    min_delta: float = 0.0
    monitor: str = "val_loss"  # a key of the evaluation's metrics (simulate sets the task's)
    max_time_s: float = math.inf  # virtual seconds: the run ends at this instant (simulate enforces it)


@dataclass
class Record:
    """Early stopping's record: the best monitored value so far and the rounds since it improved."""

    best: float = math.inf
    stale: int = 0


@dataclass(frozen=True)
class Evaluation:
    """How the global model is scored: ``evaluate`` it; ``evaluate_clients`` scores each client's own model on its
    own test rows, summarised as ``client_<metric>`` means of ``client_metrics``; ``wall_clock`` is the real
    seconds of torch work so far."""

    evaluate: Evaluator
    wall_clock: Callable[[], float]
    evaluate_clients: Callable[[torch.Tensor], list[dict[str, float]]] | None = None
    client_metrics: tuple[str, ...] = ("loss",)


def _mean_defined(values: list[float]) -> float:
    """Mean of the values that are defined (a client whose test rows hold one class has no AUC)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


class Monitor:
    """Scores each new global model and records the row of its round (or version)."""

    def __init__(
        self,
        evaluation: Evaluation,
        stopping: Stopping,
        recorder: Recorder,
        record: Record,
        *,
        replay: Replay | None = None,
        on_round: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.evaluation, self.stopping, self.recorder = evaluation, stopping, recorder
        self.record = record  # part of the server's state: a restart restores it
        self.replay = replay
        self.on_round = on_round  # sees each row as it is recorded (progress bars)

    def score(self, number: int, flat: torch.Tensor, start: float, counts: dict[str, int], updates: Sequence[Update], staleness: Sequence[int]) -> None:
        """Evaluate model ``number`` and record its row; ``counts`` are the row's selected/participants/dropouts/failures."""
        if self.replay is not None and self.replay.active:
            metrics = self.replay.metrics()
        else:
            metrics = self.evaluation.evaluate(flat)
            if self.evaluation.evaluate_clients is not None:
                metrics.update(self.client_means(number, self.evaluation.evaluate_clients(flat)))
        watched = metrics[self.stopping.monitor]
        improved = watched < self.record.best - self.stopping.min_delta
        self.record.best, self.record.stale = (watched, 0) if improved else (self.record.best, self.record.stale + 1)
        env_now = self.recorder.env.now
        row = {
            "round": number,
            "time_s": env_now,
            "round_time_s": env_now - start,
            "wall_s": self.evaluation.wall_clock(),
            **counts,
            "train_loss": float(np.mean([u.loss for u in updates])) if updates else float("nan"),
            **metrics,
        }
        self.recorder.rounds.append(row)
        self.recorder.clients.extend(number, [u.client for u in updates], [u.origin for u in updates], [u.num_samples for u in updates],
                                     [u.loss for u in updates], [u.version for u in updates], staleness)  # fmt: skip
        if self.on_round is not None:
            self.on_round(row)

    @property
    def exhausted(self) -> bool:
        """Whether the monitored metric has not improved for ``patience`` rounds."""
        return bool(self.stopping.patience) and self.record.stale >= self.stopping.patience

    def client_means(self, number: int, rows: list[dict[str, float]]) -> dict[str, float]:
        """Record the per-client scores of round ``number``; the round's row gets their means."""
        self.recorder.client_evals.extend({"round": number, **r} for r in rows)
        return {f"client_{key}": _mean_defined([r[key] for r in rows]) for key in self.evaluation.client_metrics}
