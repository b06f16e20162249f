"""What all clients of a run share, kept once rather than per client (a million clients hold one copy)."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fedsim.sim.compute import ComputeModel
from fedsim.sim.sleeping_clocks import Sleepers
from fedsim.train.local import batch_bounds

if TYPE_CHECKING:
    from fedsim.fl.executor import SequentialExecutor


class Gathering(Protocol):
    """Where a burst of starts gathers its clean first attempts, to finish them together (:class:`~fedsim.fl.cohort.Cohort`)."""

    open: bool  # within a burst's calls

    def takes(self, client: Any) -> bool:
        """Whether it took ``client``'s start (a clean first attempt), logging what the start would log now."""


class ClientShared:
    """What all clients of a run share, kept once rather than per client.

    ``costs(data)`` is the virtual seconds of each local step of a round on a speed-1
    client, computed once per row count (clients mostly share a few); a client divides
    by its speed. Also the model's byte size, whether the executor uses seeds, and
    whether it is pure (results depend only on the call: the surrogate), every lifetime
    the client failure clocks drew, those clocks when they sleep,
    whether work that only a cancel can cut may wait for one event (``closed_form``),
    which clients may (``alone``: see :func:`lone_speeds`), each client's seconds for a
    whole round of its own data, summed for the fleet at once (``round_s``:
    :meth:`whole_rounds`), and where a burst of starts takes its clean first attempts, to
    finish them together (``cohort``).
    """

    __slots__ = ("executor", "cost_per_sample_s", "model_bytes", "seeded", "pure", "lifetimes", "sleepers", "closed_form", "alone",
                 "round_s", "cohort", "_by_rows")  # fmt: skip

    def __init__(self, executor: SequentialExecutor, compute: ComputeModel) -> None:
        self.executor = executor
        self.cost_per_sample_s = compute.cost_per_sample_s
        self.model_bytes = executor.layout.nbytes()
        self.seeded = getattr(executor, "seeded", True)  # the surrogate draws nothing: no seeds to derive
        self.pure = getattr(executor, "pure", False)  # the surrogate: training may run late, checkpoints be saved when read
        self.lifetimes = array("d")  # 8 bytes a lifetime: a million clients draw tens of millions
        self.sleepers: Sleepers | None = None  # the client failure clocks, when they sleep through idle time
        self.closed_form = False  # set by simulate: clocks sleep, links cannot fail, the executor is pure
        self.alone = bytearray()  # set by simulate with closed_form: 1 for a client whose speed no other client has
        self.round_s: array | None = None  # set by simulate with closed_form and no checkpoints (:meth:`whole_rounds`)
        self.cohort: Gathering | None = None  # set by simulate with round_s: takes a burst's clean first attempts, finishes them together
        self._by_rows: dict[int, np.ndarray] = {}

    def costs(self, data: int) -> np.ndarray:
        """Rows of each step of one round on dataset ``data`` × seconds per row (read-only, shared)."""
        n = self.executor.num_samples(data)
        out = self._by_rows.get(n)
        if out is None:
            spec = self.executor.spec
            rows = np.tile(np.diff(np.asarray(batch_bounds(n, spec.batch_size))), spec.epochs)
            out = self._by_rows[n] = rows * self.cost_per_sample_s
            out.flags.writeable = False
        return out

    def whole_rounds(self, speeds: np.ndarray, chunk: int = 1 << 14) -> array:
        """Each client's compute seconds for one whole round on its own data (client ``c``: the sum of
        ``costs(c) / speeds[c]``), for the fleet at once.

        A client would make this sum at every round (a division and a sum a client, the
        most of its arithmetic in a system-only round); numpy sums each row of a matrix as
        it sums a vector, so these are its sums, bit for bit."""
        speeds = np.asarray(speeds, dtype=np.float64)
        rows = np.fromiter(map(self.executor.num_samples, range(len(speeds))), dtype=np.int64, count=len(speeds))
        order = np.argsort(rows, kind="stable")
        out = np.empty(len(speeds))
        for group in np.split(order, np.flatnonzero(np.diff(rows[order])) + 1) if len(order) else []:  # clients of one row count
            costs = self.costs(int(group[0]))
            for i in range(0, len(group), chunk):
                part = group[i : i + chunk]
                out[part] = np.add.reduce(costs[None, :] / speeds[part, None], axis=1)
        return array("d", out.tobytes())


def lone_speeds(speeds: np.ndarray) -> bytearray:
    """1 for each client whose speed no other client of the fleet has, else 0 (a byte a client).

    Clients of one speed that start together make the same instants, and at an instant
    that several share, the phase-by-phase path logs their rows in the order the clients
    started. Work played as one event, or ahead, logs its rows at another time, so only a
    client that shares its speed with no one waits for its work that way."""
    _, inverse, counts = np.unique(np.asarray(speeds, dtype=np.float64), return_inverse=True, return_counts=True)
    return bytearray((counts[inverse] == 1).astype(np.uint8).tobytes())
