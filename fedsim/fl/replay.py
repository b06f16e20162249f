"""Resuming a run: a snapshot at a round boundary, and a replay of the timeline up to it.

What a run does on the simulated clock (every failure, repair, dropout, message,
checkpoint and refit) depends on the seed and the config, never on the values the
torch work produces, except through a few recorded decisions: the metrics that drive
early stopping, and the updates dropped as divergent. So a snapshot need not freeze
SimPy's generators. It keeps what the clock cannot regenerate: the global state and
the strategy's state at the end of a round, the table rows recorded so far, and those
decisions. Resuming plays the timeline again from time zero with a *ghost* executor
(no torch work: every result is a placeholder of the right shape) and the recorded rows
instead of evaluations, so the event log, the ledgers and every RNG stream come out
exactly as they were; at the snapshot's round boundary the real state is put back and
the executor goes live. A replay costs event-loop time only (the system-only mode's
speed), and the resumed run's tables equal an uninterrupted run's.

An asynchronous run is never idle at a version boundary: some clients are still
training. The snapshot keeps the models those tasks train from (by version) and their
training seeds; the replay dispatches them with the real models and trains exactly those
tasks for real, so they deliver what they delivered in the uninterrupted run.

The replayed events are checked against the snapshot's count and digest; a mismatch
(another fedsim version, a changed config) stops the run rather than continue a
different history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedsim.errors import FedsimError
from fedsim.fl.messages import META_STEP, FitIns
from fedsim.sim.recorder import EVENT_COLUMNS, EventLog
from fedsim.train.local import TrainResult, TrainState, samples_in_steps

Row = dict[str, Any]


FORMAT = 2  # of a snapshot's payload; 2: the update log and the events' digest as column bytes


@dataclass
class Snapshot:
    """A run's state at the end of round ``round`` (see the module docstring)."""

    round: int
    global_flat: torch.Tensor
    strategy: dict[str, torch.Tensor]
    rounds: list[Row]  # recorder rows so far
    clients: dict[str, np.ndarray]  # the update log's columns (:meth:`fedsim.sim.recorder.UpdateLog.arrays`)
    client_evals: list[Row]
    wall_train_s: float
    wall_eval_s: float
    events: int  # events logged up to the boundary
    digest: str  # of those events
    diverged: list[tuple[int, int]] = field(default_factory=list)  # (training seed, step) of updates dropped as divergent
    aggregations: list[float] = field(default_factory=list)  # each aggregation's variable cost (virtual s; measured ones vary)
    models: dict[int, torch.Tensor] = field(default_factory=dict)  # asynchronous: version -> model that tasks still in flight train from
    live: list[int] = field(default_factory=list)  # asynchronous: training seeds of the tasks in flight at the boundary

    def payload(self) -> dict[str, Any]:
        """A plain dict of tensors, numbers and strings (what ``torch.load(weights_only=True)`` reads back)."""
        tables = {
            "rounds": self.rounds,
            "client_evals": self.client_evals,
            "diverged": self.diverged,
            "aggregations": self.aggregations,
        }
        return {
            "format": FORMAT,
            "round": self.round,
            "global": self.global_flat,
            "strategy": self.strategy,
            "tables": _to_json(tables),
            "clients": {name: torch.from_numpy(column) for name, column in self.clients.items()},
            "wall": [self.wall_train_s, self.wall_eval_s],
            "events": self.events,
            "digest": self.digest,
            "models": self.models,
            "live": self.live,
        }

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> Snapshot:
        """The inverse of :meth:`payload`."""
        import json

        tables = json.loads(p["tables"])
        return cls(
            round=int(p["round"]),
            global_flat=p["global"],
            strategy=dict(p["strategy"]),
            rounds=tables["rounds"],
            clients={str(name): column.numpy() for name, column in p["clients"].items()},
            client_evals=tables["client_evals"],
            diverged=[tuple(d) for d in tables["diverged"]],
            aggregations=[float(a) for a in tables["aggregations"]],
            wall_train_s=float(p["wall"][0]),
            wall_eval_s=float(p["wall"][1]),
            events=int(p["events"]),
            digest=str(p["digest"]),
            models={int(k): v for k, v in p.get("models", {}).items()},
            live=[int(seed) for seed in p.get("live", [])],
        )


def _to_json(obj: object) -> str:
    import json

    return json.dumps(obj, default=float)  # numpy scalars → float; NaN stays NaN (json's extension)


class EventDigest:
    """A running SHA-256 of the event log, fed only the rows added since the last call.

    Each column's bytes have a hash of their own, so the digest does not depend on where
    the calls fell (a run snapshots at several boundaries, its replay checks at one); the
    kinds' names are folded in at the end. Bytes, not the rows' text: a million-client
    run logs tens of millions of rows.
    """

    def __init__(self) -> None:
        self._hashes = [hashlib.sha256() for _ in EVENT_COLUMNS]
        self._seen = 0

    def update(self, log: EventLog) -> str:
        """Fold in the rows logged since the last call; returns the digest of all events so far."""
        n = len(log)
        for column, buffer in zip(self._hashes, log.buffers):
            column.update(memoryview(buffer)[self._seen : n])
        self._seen = n
        whole = hashlib.sha256("\0".join(log.names).encode())
        for column in self._hashes:
            whole.update(column.digest())
        return whole.hexdigest()


class GhostExecutor:
    """The real executor's interface without its torch work, until :meth:`go_live`.

    Sizes, splits and schedules come from the real executor, so the timeline is the
    real one; training returns its start state, a meta step zeros of the real size.
    Updates recorded as divergent come back divergent again.
    """

    def __init__(self, real: Any, diverged: Sequence[tuple[int, int]] = (), real_seeds: Sequence[int] = ()) -> None:
        self.real = real
        self.live = False
        self.diverged = dict(diverged)  # training seed -> step
        self.real_seeds = set(real_seeds)  # tasks trained for real even in the replay (in flight at the boundary)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def go_live(self) -> None:
        """From now on, every call is the real executor's."""
        self.live = True

    def plan(self, *args: Any, **kwargs: Any) -> None:
        """Planning only matters to a real (batched) executor."""
        if (self.live or kwargs.get("seed") in self.real_seeds) and hasattr(self.real, "plan"):
            self.real.plan(*args, **kwargs)

    def plan_meta(self, *args: Any, **kwargs: Any) -> None:
        """As :meth:`plan`, for FedL2P's meta steps."""
        if self.live and hasattr(self.real, "plan_meta"):
            self.real.plan_meta(*args, **kwargs)

    def train(self, client: int, start: TrainState, *, seed: int, stop_step: int, fit: FitIns | None = None) -> TrainResult:
        """Live (or a task in flight at the boundary): the real training. Ghost: the start state, advanced in step count only."""
        if self.live or seed in self.real_seeds:
            return self.real.train(client, start, seed=seed, stop_step=stop_step, fit=fit)
        samples = samples_in_steps(self.real.num_samples(client), self.real.spec.batch_size, start.step, stop_step)
        bad = self.diverged.get(seed)
        bad = bad if bad is not None and start.step <= bad < stop_step else None
        return TrainResult(state=TrainState(flat=start.flat, step=stop_step), loss=0.0, samples=samples, diverged_step=bad)

    def meta_gradient(self, client: int, fit: FitIns, *, seed: int) -> dict[str, torch.Tensor]:
        """Live: the real meta step. Ghost: zeros of the real size (the upload's bytes are what count)."""
        if self.live:
            return self.real.meta_gradient(client, fit, seed=seed)
        assert fit.personalize is not None
        grad = torch.zeros_like(fit.personalize.meta)
        if self.diverged.get(seed) == META_STEP:
            grad[0] = float("nan")
        return {"meta_grad": grad, "meta_loss": torch.tensor(0.0)}


class Replay:
    """Stands in for evaluation while the server replays the snapshot's rounds; knows when the boundary is reached."""

    def __init__(self, snapshot: Snapshot, executor: GhostExecutor) -> None:
        self.snapshot = snapshot
        self.executor = executor
        self.done = 0  # rounds completed in the replay so far

    @property
    def active(self) -> bool:
        """Whether the run is still before the boundary."""
        return not self.executor.live

    def metrics(self) -> Row:
        """The recorded row of the next round to complete: early stopping reads its validation loss as it did."""
        return dict(self.snapshot.rounds[self.done])

    def model(self, version: int, ghost: torch.Tensor) -> torch.Tensor:
        """The global model of ``version`` for a task dispatched in the replay: the real one if the task may still be
        in flight at the boundary, else the ``ghost`` the replay holds."""
        return self.snapshot.models.get(version, ghost) if self.active else ghost

    def aggregation_extra(self, index: int) -> float:
        """The recorded variable cost of aggregation number ``index`` (0-based)."""
        return self.snapshot.aggregations[index]

    def round_done(self) -> bool:
        """Count a completed round; true when it is the snapshot's last."""
        self.done += 1
        return self.done == len(self.snapshot.rounds)

    def check(self, events: int, digest: str) -> None:
        """At the boundary: the replayed history must be the recorded one."""
        s = self.snapshot
        if events != s.events or digest != s.digest:
            raise FedsimError(
                f"the replay up to round {s.round} did not reproduce the snapshot's {s.events} events "
                f"(got {events}); the snapshot is from another fedsim version or config; rerun without run.resume"
            )

